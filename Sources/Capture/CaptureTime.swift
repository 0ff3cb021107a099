#if canImport(Glibc)
import Glibc
#endif

/// The span of times tlsreuse accepts, from captures, saved records and options, as
/// nanoseconds since the Unix epoch.
///
/// pcapng timestamps are 64-bit counts with a 64-bit offset (draft-ietf-opsawg-pcapng 4.2,
/// if_tsoffset), so a file can claim any instant; Int64 nanoseconds end in 2262. Inside this
/// span the difference of any two times, plus any duration up to `maximumDurationSeconds`,
/// fits in an Int64, so the arithmetic downstream cannot overflow. Classic pcap's unsigned
/// 32-bit seconds (1970 to 2106) fit whole.
package enum CaptureTime {
    /// 1900-01-01 00:00:00 UTC.
    package static let earliestNanos: Int64 = -2_208_988_800 * 1_000_000_000
    /// 2150-01-01 00:00:00 UTC, exclusive.
    package static let endNanos: Int64 = 5_680_281_600 * 1_000_000_000
    /// The longest duration an option may give (--session-horizon, --duration, --interval):
    /// ten years.
    package static let maximumDurationSeconds: Double = 10 * 365.25 * 86_400

    /// True for a time inside the accepted span.
    @inline(__always)
    package static func contains(_ nanos: Int64) -> Bool { nanos >= earliestNanos && nanos < endNanos }

    /// `seconds` since the epoch as nanoseconds, or nil when it is not finite or outside the span.
    package static func nanos(epochSeconds seconds: Double) -> Int64? {
        guard seconds.isFinite, seconds >= Double(earliestNanos) / 1e9, seconds < Double(endNanos) / 1e9 else {
            return nil
        }
        let nanos = Int64((seconds * 1e9).rounded())
        return contains(nanos) ? nanos : nil
    }

    /// Whole seconds and a fraction in nanoseconds as one time, or nil outside the span.
    package static func nanos(seconds: Int64, fractionNanos: Int64) -> Int64? {
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        let (nanos, carry) = scaled.addingReportingOverflow(fractionNanos)
        guard !carry, contains(nanos) else { return nil }
        return nanos
    }

    /// A duration option's value in nanoseconds, or nil when it is not finite, negative, or
    /// longer than `maximumDurationSeconds`.
    package static func durationNanos(seconds: Double) -> Int64? {
        guard seconds.isFinite, seconds >= 0, seconds <= maximumDurationSeconds else { return nil }
        return Int64((seconds * 1e9).rounded())
    }

    /// Seconds since the epoch of a UTC civil time, by the proleptic Gregorian calendar (H.
    /// Hinnant's days_from_civil). Nil when a field is out of range: years 0000 to 9999,
    /// days up to the month's length, seconds up to 60 (a leap second).
    package static func epochSeconds(
        year: Int,
        month: Int,
        day: Int,
        hour: Int = 0,
        minute: Int = 0,
        second: Int = 0
    ) -> Int64? {
        guard (0...9999).contains(year), (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute),
            (0...60).contains(second)
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...lengths[month - 1]).contains(day) else { return nil }
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Int64(((days * 24 + hour) * 60 + minute) * 60 + second)
    }
}

/// Nanoseconds since the epoch, from the system clock.
package func wallClockNanos() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}
