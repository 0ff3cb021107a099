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
        var covered = RangeSet<Int>()
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
            drop(key, count: true)
            return .dropped
        }
        expire(before: timestamp)
        if let entry = pending[key], timestamp - entry.firstSeen > Defragmenter.timeoutNanos {
            // A late fragment of an expired datagram starts it afresh.
            drop(key, count: true)
        }
        if pending[key] == nil {
            while pending.count >= Defragmenter.maximumPending, dropOldest() {}
            pending[key] = Pending(firstSeen: timestamp, serial: nextSerial)
            arrivals.append((key, nextSerial))
            nextSerial += 1
        }
        let outcome: Outcome? =
            pending.withValue(key) { entry -> Outcome? in
                entry.fragments += 1
                guard entry.fragments <= Defragmenter.maximumFragmentsPerDatagram else { return .dropped }
                if isLast {
                    if let known = entry.totalLength, known != end { return .dropped }
                    entry.totalLength = end
                }
                // Keep only the bytes no earlier fragment covered (first copy wins).
                var added = 0
                for range in RangeSet(offset..<end).subtracting(entry.covered).ranges {
                    entry.pieces.append(
                        (range.lowerBound, Array(fragment[(range.lowerBound - offset)..<(range.upperBound - offset)]))
                    )
                    added += range.count
                }
                entry.bytesHeld += added
                bytesHeld += added
                entry.covered.insert(contentsOf: offset..<end)
                return nil
            } ?? nil
        if let outcome {
            drop(key, count: false)
            return outcome
        }
        guard let entry = pending[key] else { return .dropped }
        if let total = entry.totalLength, entry.covered.ranges.count == 1, entry.covered.ranges.first == 0..<total {
            completed.removeAll(keepingCapacity: true)
            completed.append(contentsOf: repeatElement(0, count: total))
            for piece in entry.pieces where piece.offset < total {
                let length = min(piece.bytes.count, total - piece.offset)
                completed.replaceSubrange(piece.offset..<(piece.offset + length), with: piece.bytes[0..<length])
            }
            drop(key, count: false)
            return completed.withUnsafeBytes {
                .complete(UnsafeRawBufferPointer(start: $0.baseAddress, count: $0.count))
            }
        }
        while bytesHeld > Defragmenter.maximumBytesHeld, dropOldest() {}
        return pending[key] == nil ? .dropped : .incomplete
    }

    /// Drops datagrams whose first fragment is older than the timeout, oldest first.
    private func expire(before timestamp: Int64) {
        while head < arrivals.count {
            let (key, serial) = arrivals[head]
            guard let entry = pending[key], entry.serial == serial else {
                head += 1
                continue
            }
            guard timestamp - entry.firstSeen > Defragmenter.timeoutNanos else { break }
            drop(key, count: true)
            head += 1
        }
        compactArrivals()
    }

    /// Drops the oldest pending datagram; false when none is left.
    private func dropOldest() -> Bool {
        while head < arrivals.count {
            let (key, serial) = arrivals[head]
            head += 1
            if let entry = pending[key], entry.serial == serial {
                drop(key, count: true)
                compactArrivals()
                return true
            }
        }
        return false
    }

    private func drop(_ key: Key, count: Bool) {
        guard let entry = pending.removeValue(forKey: key) else { return }
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

extension Dictionary {
    /// Runs `body` on the value for `key` in place (no copy of its arrays).
    fileprivate mutating func withValue<R>(_ key: Key, _ body: (inout Value) -> R) -> R? {
        guard let index = index(forKey: key) else { return nil }
        return body(&values[index])
    }
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
