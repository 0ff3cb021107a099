/// Reassembles fragmented IPv4 (RFC 791 3.2) and IPv6 (RFC 8200 4.5) datagrams.
/// Overlapping fragments: the first copy of each byte wins, as in Zeek and Suricata.
///
/// Memory is what arrived: each fragment keeps only the bytes no earlier fragment covered,
/// and all pending datagrams together hold at most `maximumBytesHeld`. Datagrams are
/// queued by arrival, so expiry and eviction of the oldest cost O(1) each, however many are
/// pending. Fragments of datagrams dropped unfinished are counted (`takeDiscarded`).
final class Defragmenter {
    /// Datagrams reassembled at once; the oldest is dropped beyond this.
    static let maximumPending = 1024
    /// Bytes held for all pending datagrams; the oldest are dropped beyond this (Suricata's
    /// defrag memcap is of this order).
    static let maximumBytesHeld = 8 << 20
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
        var proto: IPProtocol

        /// Five words into the seeded hasher rather than eight fields, two of them single
        /// bytes: a flood of first fragments hashes a key about five times per packet.
        func hash(into hasher: inout Hasher) {
            hasher.combine(source.high)
            hasher.combine(source.low)
            hasher.combine(destination.high)
            hasher.combine(destination.low)
            hasher.combine(
                UInt64(identification) | UInt64(proto.rawValue) << 32 | (source.isIPv6 ? 1 << 40 : 0)
                    | (destination.isIPv6 ? 1 << 41 : 0)
            )
        }
    }

    enum Outcome {
        case incomplete
        case dropped
        /// The whole transport payload, valid until the next call to `add`.
        case complete(UnsafeRawBufferPointer)
    }

    private struct Pending {
        /// The bytes each fragment added, at their offsets, disjoint.
        var pieces: [(offset: Int, bytes: [UInt8])] = []
        /// Covered byte ranges.
        var covered = CoveredRanges()
        var totalLength: Int?
        var fragments = 0
        var bytesHeld = 0
        var firstSeen: Int64
        /// Position in `arrivals`, to tell a live queue entry from a stale one.
        var serial: Int
    }

    /// Keyed by Swift's seeded SipHash: crafted identifications cannot share a bucket chain.
    private var pending: [Key: Pending] = [:]
    /// Datagrams in order of their first fragment; entries whose datagram is gone are skipped.
    private var arrivals: [(key: Key, serial: Int)] = []
    private var head = 0
    private var nextSerial = 0
    private var bytesHeld = 0
    private var discarded = 0
    private var completed: [UInt8] = []

    var pendingCount: Int { pending.count }

    /// Fragments of datagrams dropped unfinished (expired or evicted) since the last call.
    func takeDiscarded() -> Int {
        defer { discarded = 0 }
        return discarded
    }

    func add(_ fragment: UnsafeRawBufferPointer, at offset: Int, isLast: Bool, key: Key, timestamp: Int64) -> Outcome {
        let end = offset + fragment.count
        guard end <= Defragmenter.maximumDatagramLength else {
            if let index = pending.index(forKey: key) { drop(at: index, count: true) }
            return .dropped
        }
        expire(before: timestamp)
        // The datagram's entry is looked up once and then reached by its index.
        var found = pending.index(forKey: key)
        if let index = found, timestamp - pending.values[index].firstSeen > Defragmenter.timeoutNanos {
            // A late fragment of an expired datagram starts it afresh.
            drop(at: index, count: true)
            found = nil
        }
        if found == nil {
            while pending.count >= Defragmenter.maximumPending, dropOldest() != nil {}
            pending[key] = Pending(firstSeen: timestamp, serial: nextSerial)
            arrivals.append((key, nextSerial))
            nextSerial += 1
            found = pending.index(forKey: key)
        }
        guard let index = found else { return .dropped }
        guard let added = Self.take(fragment, offset: offset, end: end, isLast: isLast, into: &pending.values[index])
        else {
            drop(at: index, count: false)
            return .dropped
        }
        bytesHeld += added
        if let total = pending.values[index].totalLength, pending.values[index].covered.isExactly(0..<total) {
            completed.removeAll(keepingCapacity: true)
            completed.append(contentsOf: repeatElement(0, count: total))
            completed.withUnsafeMutableBytes { whole in
                for piece in pending.values[index].pieces where piece.offset < total {
                    let length = min(piece.bytes.count, total - piece.offset)
                    piece.bytes.withUnsafeBytes { bytes in
                        UnsafeMutableRawBufferPointer(rebasing: whole[piece.offset..<(piece.offset + length)])
                            .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<length]))
                    }
                }
            }
            drop(at: index, count: false)
            return completed.withUnsafeBytes {
                .complete(UnsafeRawBufferPointer(start: $0.baseAddress, count: $0.count))
            }
        }
        var droppedItself = false
        while bytesHeld > Defragmenter.maximumBytesHeld, let dropped = dropOldest() {
            if dropped == key { droppedItself = true }
        }
        return droppedItself ? .dropped : .incomplete
    }

    /// Adds a fragment to its datagram's entry, keeping only the bytes no earlier fragment
    /// covered (the first copy wins): the bytes added, or nil when the datagram is to be
    /// dropped (too many fragments, or a second end that disagrees).
    private static func take(
        _ fragment: UnsafeRawBufferPointer,
        offset: Int,
        end: Int,
        isLast: Bool,
        into entry: inout Pending
    ) -> Int? {
        entry.fragments += 1
        guard entry.fragments <= Defragmenter.maximumFragmentsPerDatagram else { return nil }
        if isLast {
            if let known = entry.totalLength, known != end { return nil }
            entry.totalLength = end
        }
        let covered = entry.covered
        var added = 0
        covered.forEachGap(in: offset..<end) { gap in
            entry.pieces.append(
                (gap.lowerBound, Array(fragment[(gap.lowerBound - offset)..<(gap.upperBound - offset)]))
            )
            added += gap.count
        }
        entry.bytesHeld += added
        entry.covered.insert(offset..<end)
        return added
    }

    /// Drops datagrams whose first fragment is older than the timeout, oldest first.
    private func expire(before timestamp: Int64) {
        while head < arrivals.count {
            let (key, serial) = arrivals[head]
            guard let index = pending.index(forKey: key), pending.values[index].serial == serial else {
                head += 1
                continue
            }
            guard timestamp - pending.values[index].firstSeen > Defragmenter.timeoutNanos else { break }
            drop(at: index, count: true)
            head += 1
        }
        compactArrivals()
    }

    /// Drops the oldest pending datagram: its key, or nil when none is left.
    private func dropOldest() -> Key? {
        while head < arrivals.count {
            let (key, serial) = arrivals[head]
            head += 1
            if let index = pending.index(forKey: key), pending.values[index].serial == serial {
                drop(at: index, count: true)
                compactArrivals()
                return key
            }
        }
        return nil
    }

    private func drop(at index: Dictionary<Key, Pending>.Index, count: Bool) {
        let entry = pending.remove(at: index).value
        bytesHeld -= entry.bytesHeld
        if count { discarded += entry.fragments }
    }

    private func compactArrivals() {
        if head > 4096, head * 2 > arrivals.count {
            arrivals.removeFirst(head)
            head = 0
        }
    }
}

/// The byte ranges of a datagram covered so far: sorted, disjoint, and merged where they
/// touch. A datagram takes at most `maximumFragmentsPerDatagram` fragments, so the linear
/// passes here are bounded (the standard library's `RangeSet` did the same work through
/// unspecialised generic calls, 1.8 k instructions per fragment).
struct CoveredRanges {
    private(set) var ranges: [Range<Int>] = []

    /// Calls `body` with each part of `range` not yet covered, in order.
    func forEachGap(in range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = range.lowerBound
        for covered in ranges where covered.upperBound > start {
            if covered.lowerBound >= range.upperBound { break }
            if covered.lowerBound > start { body(start..<covered.lowerBound) }
            start = covered.upperBound
            if start >= range.upperBound { return }
        }
        if start < range.upperBound { body(start..<range.upperBound) }
    }

    mutating func insert(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        var first = 0
        while first < ranges.count, ranges[first].upperBound < range.lowerBound { first += 1 }
        var last = first
        var merged = range
        while last < ranges.count, ranges[last].lowerBound <= merged.upperBound {
            merged = min(merged.lowerBound, ranges[last].lowerBound)..<max(merged.upperBound, ranges[last].upperBound)
            last += 1
        }
        ranges.replaceSubrange(first..<last, with: CollectionOfOne(merged))
    }

    /// Whether exactly `range` is covered, in one piece.
    func isExactly(_ range: Range<Int>) -> Bool { ranges.count == 1 && ranges[0] == range }
}

extension PacketDecoder {
    /// A fragment of either IP version to the defragmenter; the transport header of the
    /// datagram once its last piece is in (counted either way).
    @inline(never)
    mutating func defragment(
        _ piece: UnsafeRawBufferPointer,
        at offset: Int,
        isLast: Bool,
        key: Defragmenter.Key,
        ttl: UInt8,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        let outcome = defragmenter.add(piece, at: offset, isLast: isLast, key: key, timestamp: timestamp)
        counters.droppedFragments += defragmenter.takeDiscarded()
        switch outcome {
        case .incomplete: return .skipped
        case .dropped:
            counters.droppedFragments += 1
            return .skipped
        case let .complete(datagram):
            counters.reassembledDatagrams += 1
            return transport(
                key.proto,
                datagram,
                wireLength: datagram.count,
                source: key.source,
                destination: key.destination,
                ttl: ttl,
                timestamp: timestamp,
                depth: depth
            )
        }
    }
}
