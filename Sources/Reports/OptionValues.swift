import Capture
import Packets

/// The values of options the user types, parsed without trapping on any text: each parser
/// returns nil for text it does not accept, and the command line turns that into a usage
/// error (exit 64). Fuzzed by fuzz/Sources/FuzzOptions.
public enum OptionValues {
    /// `--since`/`--until`: epoch seconds ("1732857976.5"), or UTC "YYYY-MM-DD",
    /// "YYYY-MM-DD HH:MM:SS[.ffffff]", "YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]". Nil
    /// outside `CaptureTime`'s span.
    public static func time(_ text: String) -> Int64? {
        if let seconds = Double(text) { return CaptureTime.nanos(epochSeconds: seconds) }
        let bytes = Array(text.utf8)
        guard bytes.count <= 40 else { return nil }
        var position = 0
        func number(_ digits: Int) -> Int? {
            guard position + digits <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[position..<(position + digits)] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            position += digits
            return value
        }
        func expect(_ character: Character) -> Bool {
            guard position < bytes.count, bytes[position] == character.asciiValue else { return false }
            position += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2) else {
            return nil
        }
        var hour = 0
        var minute = 0
        var second = 0
        var fractionNanos: Int64 = 0
        var offsetSeconds = 0
        if position < bytes.count {
            guard expect(" ") || expect("T"), let h = number(2), expect(":"), let m = number(2), expect(":"),
                let s = number(2)
            else { return nil }
            (hour, minute, second) = (h, m, s)
            if expect(".") {
                var digits = 0
                while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 {
                    if digits < 9 { fractionNanos = fractionNanos * 10 + Int64(bytes[position] - 0x30) }
                    digits += 1
                    position += 1
                }
                guard digits > 0 else { return nil }
                for _ in min(digits, 9)..<9 { fractionNanos *= 10 }
            }
            if expect("Z") {
            } else if position < bytes.count,
                bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")
            {
                let sign = bytes[position] == UInt8(ascii: "-") ? -1 : 1
                position += 1
                guard let h = number(2), expect(":"), let m = number(2), h <= 23, m <= 59 else { return nil }
                offsetSeconds = sign * (h * 3600 + m * 60)
            }
            guard position == bytes.count else { return nil }
        }
        guard
            let seconds = CaptureTime.epochSeconds(
                year: year,
                month: month,
                day: day,
                hour: hour,
                minute: minute,
                second: second
            )
        else {
            return nil
        }
        return CaptureTime.nanos(seconds: seconds - Int64(offsetSeconds), fractionNanos: fractionNanos)
    }

    /// `--memory-limit`: "256M", "2G", "512K" (powers of 1024) or bytes. Nil for other text
    /// and for sizes that do not fit.
    public static func size(_ text: String) -> Int? {
        var digits = Substring(text)
        var scale = 1
        if let last = digits.last, let shift = ["K": 10, "k": 10, "M": 20, "m": 20, "G": 30, "g": 30][last] {
            scale = 1 << shift
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.count <= 19, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let value = Int(digits)
        else {
            return nil
        }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : bytes
    }

    /// `--memory-limit` as a budget: the default when not given, nil for a size outside
    /// `MemoryBudget.minimumLimit...maximumLimit` or text `size` does not read.
    public static func memoryBudget(_ text: String?) -> MemoryBudget? {
        guard let text else { return MemoryBudget() }
        guard let bytes = size(text), bytes >= MemoryBudget.minimumLimit, bytes <= MemoryBudget.maximumLimit else {
            return nil
        }
        return MemoryBudget(limit: bytes)
    }

    /// A duration in seconds (`--session-horizon`, `--duration`, `--interval`): finite, 0 or
    /// more, at most `CaptureTime.maximumDurationSeconds`. Nil otherwise.
    public static func duration(_ seconds: Double) -> Double? {
        CaptureTime.durationNanos(seconds: seconds) == nil ? nil : seconds
    }

    /// `--age-buckets`: up to `maximumAgeBuckets` increasing positive durations, comma-separated.
    public static let maximumAgeBuckets = 32

    public static func ageBuckets(_ text: String) -> [Double]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.count <= maximumAgeBuckets else { return nil }
        var edges: [Double] = []
        for part in parts {
            guard let value = Double(part.trimmingSpaces), value > 0, duration(value) != nil, value > (edges.last ?? 0)
            else { return nil }
            edges.append(value)
        }
        return edges
    }

    /// `--server`: ADDRESS, ADDRESS:PORT or [IPv6]:PORT.
    public static func server(_ text: String) -> (address: IPAddress, port: UInt16?)? {
        if let address = IPAddress(text) { return (address, nil) }
        var host = Substring(text)
        var port: Substring?
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            port = text[close...].dropFirst().drop { $0 == ":" }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard let address = IPAddress(host), let portText = port, let number = UInt16(portText) else { return nil }
        return (address, number)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}
