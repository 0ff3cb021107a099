import Capture
import Handshakes
import Packets

/// Pairs each client-side connection with the back-side connection a TCP-mode balancer
/// opened for it. Such a balancer forwards the ClientHello unchanged, so both carry the
/// same ClientHello random (32 bytes chosen by the client, RFC 8446 4.1.2): the back-side
/// connection's server is the backend that served the client.
///
/// Records arrive in ClientHello order, so a front always comes before its back leg. Each
/// record is held for `windowNanos` (a balancer forwards the ClientHello within its connect
/// timeout) and released in order, in bursts (`burstNanos`). A back leg is marked `backsideOf`, its front gains
/// `backend` and `backendLeg`; the analysis leaves back legs out of services and links.
package struct LegPairer {
    /// How long after a front's ClientHello its back leg may appear.
    package static let defaultWindowNanos: Int64 = 5_000_000_000

    /// Records held at most. Their bytes (`HandshakeRecord.approximateBytes`, and the
    /// ring's empty slots) are bounded by `maximumHeldBytes`, the budget's part. Past
    /// either, the oldest is released before its window ends. A balancer's back leg follows
    /// its front within milliseconds, so only a burst of more handshakes than fit in the
    /// window loses pairings, and those are counted (`releasedEarly`).
    package static let maximumHeld = 16_384
    package let maximumHeldBytes: Int
    /// What one ring slot costs: a record is held inline, with its time and cost beside it.
    private static let slotBytes =
        MemoryLayout<HandshakeRecord?>.stride + MemoryLayout<Int64>.stride + MemoryLayout<Int>.stride
    /// What `byRandom` costs per held record: it keeps at most 2 entries per held record
    /// and 1024 more (then it is rebuilt), each an 8-byte tag and its value, with the table's
    /// slack (about 48 bytes).
    private static let randomIndexBytesPerRecord = 3 * 48

    package let windowNanos: Int64
    /// Records leave in bursts, so the stages after this one run over many records at a time
    /// with their code in the instruction cache (run one record at a time, between the
    /// parsing of packets, each evicted the other's code: a flood of one-packet connections
    /// took 16% more instruction cache misses). A record waits out its window and up to an
    /// eighth more, or leaves when the bounds are passed, taking the oldest eighth with it.
    /// Pairing checks the window itself, so holding longer pairs nothing more.
    private var burstNanos: Int64 { windowNanos / 8 }
    private var heldBytes = 0
    /// Records released before their window ended, to keep within the bounds.
    package private(set) var releasedEarly = 0
    /// Records waiting out their window, oldest first, in a ring whose size is a power of
    /// two: holding and releasing a record moves nothing else. Released slots are nil.
    private var ring: [HandshakeRecord?] = []
    /// The held records' times and costs, beside them: reading one does not copy the record.
    private var times: [Int64] = []
    private var costs: [Int] = []
    private var oldestSlot = 0
    private var heldCount = 0
    /// Sequence number of the oldest held record; each record gets the next number.
    private var oldestSequence = 0
    /// The sequence number of the newest record with each client random, by a keyed hash
    /// of the random (`RandomTag`: eight bytes, where the random as the key was forty and
    /// hashed through `Hasher`); a hit is checked against the held record's random. Entries
    /// of released records stay until the index is rebuilt (removing one rehashes its
    /// neighbours).
    private var byRandom: [RandomTag: Int] = [:]
    package private(set) var pairedLegs = 0

    package init(windowNanos: Int64 = LegPairer.defaultWindowNanos, maximumHeldBytes: Int = MemoryBudget().legPairing) {
        self.windowNanos = windowNanos
        self.maximumHeldBytes = maximumHeldBytes
    }

    /// Takes the next record; `release` receives those whose window has passed, in order.
    package mutating func add(_ record: consuming HandshakeRecord, release: (consuming HandshakeRecord) -> Void) {
        let sequence = oldestSequence + heldCount
        if LegPairer.isDistinctive(record.clientRandom),
            let earlier = byRandom.updateValue(sequence, forKey: RandomTag(record.clientRandom)),
            earlier >= oldestSequence
        {
            let slot = self.slot(of: earlier)
            if let front = ring[slot], front.clientRandom == record.clientRandom,
                record.timestampNanos - front.timestampNanos <= windowNanos,
                front.server != record.server || front.serverPort != record.serverPort
            {
                ring[slot]!.backend = record.server.endpoint(port: record.serverPort)
                ring[slot]!.backendLeg = record.uid
                record.backsideOf = front.uid
                pairedLegs += 1
            }
        }
        let windowStart = record.timestampNanos - windowNanos
        if heldCount > 0, times[oldestSlot] < windowStart - burstNanos {
            self.release(olderThan: windowStart, to: release)
        }
        // A full ring doubles, unless its slots alone would pass the bound.
        if heldCount > 0, heldCount == ring.count, 2 * ring.count * LegPairer.slotBytes > maximumHeldBytes {
            let keeping = heldCount - heldCount / 8 - 1
            while heldCount > keeping { releaseOldestEarly(windowStart: windowStart, to: release) }
        }
        let cost = LegPairer.cost(record)
        heldBytes += cost
        hold(record, cost: cost)
        if heldCount > 1, heldCount > LegPairer.maximumHeld || bytesInUse > maximumHeldBytes {
            while heldCount > 1, heldCount > LegPairer.maximumHeld * 7 / 8 || bytesInUse > maximumHeldBytes / 8 * 7 {
                releaseOldestEarly(windowStart: windowStart, to: release)
            }
        }
        trimIndex()
    }

    /// Releases the oldest record to keep within the bounds: counted, unless its window has
    /// passed (it waited for a burst).
    private mutating func releaseOldestEarly(windowStart: Int64, to release: (consuming HandshakeRecord) -> Void) {
        if times[oldestSlot] >= windowStart { releasedEarly += 1 }
        releaseOldest(to: release)
    }

    /// The held records with their part of the random index, and the ring's empty slots.
    private var bytesInUse: Int { heldBytes + (ring.count - heldCount) * LegPairer.slotBytes }

    private static func cost(_ record: borrowing HandshakeRecord) -> Int {
        record.approximateBytes + randomIndexBytesPerRecord
    }

    private mutating func releaseOldest(to release: (consuming HandshakeRecord) -> Void) {
        let record = ring[oldestSlot].take()!
        heldBytes -= costs[oldestSlot]
        oldestSlot = (oldestSlot + 1) & (ring.count - 1)
        oldestSequence += 1
        heldCount -= 1
        // The next to leave has waited out its window: cold by now, unless loading starts here.
        if heldCount > 0 { ring.withUnsafeBufferPointer { HandshakeRecord.prefetch($0, at: oldestSlot) } }
        release(record)
    }

    /// Releases everything still held (end of input).
    package mutating func finish(release: (consuming HandshakeRecord) -> Void) {
        self.release(olderThan: .max, to: release)
    }

    /// Releases records whose window has passed by `timestampNanos` (live capture, where
    /// time passes without records).
    package mutating func release(at timestampNanos: Int64, to release: (consuming HandshakeRecord) -> Void) {
        self.release(olderThan: timestampNanos - windowNanos, to: release)
    }

    private func slot(of sequence: Int) -> Int { (oldestSlot + sequence - oldestSequence) & (ring.count - 1) }

    private mutating func hold(_ record: consuming HandshakeRecord, cost: Int) {
        if heldCount == ring.count {
            // Full: a ring twice the size, oldest first.
            var grown = [HandshakeRecord?](repeating: nil, count: max(64, ring.count * 2))
            var grownTimes = [Int64](repeating: 0, count: grown.count)
            var grownCosts = [Int](repeating: 0, count: grown.count)
            for index in 0..<heldCount {
                let slot = (oldestSlot + index) & (ring.count - 1)
                grown[index] = ring[slot].take()
                grownTimes[index] = times[slot]
                grownCosts[index] = costs[slot]
            }
            ring = grown
            times = grownTimes
            costs = grownCosts
            oldestSlot = 0
        }
        let slot = (oldestSlot + heldCount) & (ring.count - 1)
        times[slot] = record.timestampNanos
        costs[slot] = cost
        ring[slot] = record
        heldCount += 1
    }

    private mutating func release(olderThan limit: Int64, to release: (consuming HandshakeRecord) -> Void) {
        while heldCount > 0, times[oldestSlot] < limit { releaseOldest(to: release) }
        trimIndex()
    }

    /// Rebuilds the random index when released records' entries outnumber the held ones:
    /// linear overall.
    private mutating func trimIndex() {
        if byRandom.count > 2 * heldCount + 1024 {
            // Sized for the whole cycle up to the next rebuild, so the index never grows
            // (a filtered copy was sized for the live entries, then resized as it refilled).
            var kept = [RandomTag: Int](minimumCapacity: 2 * heldCount + 1025)
            for (random, sequence) in byRandom where sequence >= oldestSequence { kept[random] = sequence }
            byRandom = kept
        }
    }

    /// A random worth pairing on: present and not constant (some broken clients send zeros).
    static func isDistinctive(_ random: ShortBytes) -> Bool {
        random.withBytes { bytes in
            guard bytes.count >= 16, let first = bytes.first else { return false }
            return bytes.contains { $0 != first }
        }
    }
}

/// A client random's index key: SipHash-1-3 of it under the process's random key
/// (`ShortBytes.keyedHash`), which a peer cannot steer into one bucket. Two randoms with one
/// tag (one in 2^64) only make the later overwrite the earlier's entry.
struct RandomTag: Hashable {
    let value: UInt64

    init(_ random: ShortBytes) { value = random.keyedHash(domain: 0, key: KeyedHash.key) }

    /// Already a keyed hash: the table's seed is mixed in, not hashed again.
    func _rawHashValue(seed: Int) -> Int { Int(truncatingIfNeeded: value ^ UInt64(UInt(bitPattern: seed))) }
}
