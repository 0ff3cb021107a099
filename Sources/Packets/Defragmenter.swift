/// Reassembles fragmented IPv4 (RFC 791 3.2) and IPv6 (RFC 8200 4.5) datagrams.
/// Overlapping fragments: the first copy of each byte wins, as in Zeek and Suricata.
/// Memory is bounded by the number of datagrams pending and the datagram size.
final class Defragmenter {
    /// Datagrams reassembled at once; the oldest is dropped beyond this.
    static let maximumPending = 1024
    /// An IP datagram is at most 65535 bytes (RFC 791; RFC 8200 4.5 without jumbograms).
    static let maximumDatagramLength = 65_535
    /// Fragments accepted per datagram (65535 / 8-byte minimum fragment, rounded down generously).
    static let maximumFragmentsPerDatagram = 512
    /// Unfinished datagrams expire after this long (Linux ipfrag_time is 30 s).
    static let timeoutNanos: Int64 = 30_000_000_000

    struct Key: Hashable {
        var source: IPAddress
        var destination: IPAddress
        var identification: UInt32
        var proto: UInt8
    }

    enum Outcome {
        case incomplete
        case dropped
        /// The whole transport payload, valid until the next call to `add`.
        case complete(UnsafeRawBufferPointer)
    }

    private struct Pending {
        var buffer: [UInt8]
        /// Covered byte ranges, sorted and disjoint.
        var covered: [Range<Int>] = []
        var totalLength: Int?
        var fragments = 0
        var firstSeen: Int64
    }

    private var pending: [Key: Pending] = [:]
    private var completed: [UInt8] = []

    var pendingCount: Int { pending.count }

    func add(_ fragment: UnsafeRawBufferPointer, at offset: Int, isLast: Bool, key: Key, timestamp: Int64) -> Outcome {
        let end = offset + fragment.count
        guard end <= Defragmenter.maximumDatagramLength else { pending[key] = nil; return .dropped }
        if pending.count >= Defragmenter.maximumPending, pending[key] == nil { expire(before: timestamp, force: true) }
        var entry = pending.removeValue(forKey: key) ?? Pending(buffer: [], firstSeen: timestamp)
        if timestamp - entry.firstSeen > Defragmenter.timeoutNanos {
            entry = Pending(buffer: [], firstSeen: timestamp)
        }
        entry.fragments += 1
        guard entry.fragments <= Defragmenter.maximumFragmentsPerDatagram else { return .dropped }
        if isLast {
            if let known = entry.totalLength, known != end { return .dropped }
            entry.totalLength = end
        }
        if entry.buffer.count < end { entry.buffer.append(contentsOf: repeatElement(0, count: end - entry.buffer.count)) }
        // Copy only the bytes no earlier fragment covered (first copy wins). `covered` is sorted.
        var cursor = offset
        for range in entry.covered where range.upperBound > offset && range.lowerBound < end {
            if cursor < range.lowerBound { copy(fragment, from: cursor, to: range.lowerBound, base: offset, into: &entry.buffer) }
            cursor = max(cursor, range.upperBound)
        }
        if cursor < end { copy(fragment, from: cursor, to: end, base: offset, into: &entry.buffer) }
        entry.covered = Defragmenter.normalise(entry.covered + [offset..<end])
        if let total = entry.totalLength, entry.covered.count == 1, entry.covered[0] == 0..<total {
            completed = entry.buffer
            completed.removeSubrange(total...)
            return completed.withUnsafeBytes { .complete(UnsafeRawBufferPointer(start: $0.baseAddress, count: $0.count)) }
        }
        pending[key] = entry
        return .incomplete
    }

    private func copy(_ fragment: UnsafeRawBufferPointer, from: Int, to: Int, base: Int, into buffer: inout [UInt8]) {
        for i in from..<to { buffer[i] = fragment[i - base] }
    }

    private static func normalise(_ ranges: [Range<Int>]) -> [Range<Int>] {
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        var out: [Range<Int>] = []
        for range in sorted {
            if let last = out.last, range.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                out.append(range)
            }
        }
        return out
    }

    /// Drops expired datagrams; with `force`, also the oldest one to make room.
    private func expire(before timestamp: Int64, force: Bool) {
        pending = pending.filter { timestamp - $0.value.firstSeen <= Defragmenter.timeoutNanos }
        if force, pending.count >= Defragmenter.maximumPending,
           let oldest = pending.min(by: { $0.value.firstSeen < $1.value.firstSeen })?.key {
            pending[oldest] = nil
        }
    }
}
