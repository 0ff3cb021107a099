import Capture
import Packets

/// A TCP connection's identity, with the two endpoints in a fixed order so both
/// directions find the same entry.
struct FlowKey: Equatable {
    var lowAddress: IPAddress
    var highAddress: IPAddress
    var lowPort: UInt16
    var highPort: UInt16

    /// The key for a segment, and whether the segment's source is the low endpoint.
    @inline(__always)
    static func of(_ segment: TCPSegment) -> (FlowKey, sourceIsLow: Bool) {
        let s = segment.source
        let d = segment.destination
        let sourceIsLow =
            s.high != d.high
            ? s.high < d.high
            : s.low != d.low
                ? s.low < d.low
                : segment.sourcePort <= segment.destinationPort
        return sourceIsLow
            ? (
                FlowKey(lowAddress: s, highAddress: d, lowPort: segment.sourcePort, highPort: segment.destinationPort),
                true
            )
            : (
                FlowKey(lowAddress: d, highAddress: s, lowPort: segment.destinationPort, highPort: segment.sourcePort),
                false
            )
    }

    /// SipHash-1-3 with the process's random key (`KeyedHash`), so a crafted capture cannot
    /// choose flows that share a probe chain: a multiply-xorshift mix, even seeded, let IPv6
    /// clients that differ only in the top bits of each half collide whatever the seed.
    /// Consecutive packets of one flow skip it (`cachedIndex`).
    @inline(__always)
    func hash() -> UInt64 {
        KeyedHash.hash(
            lowAddress.high,
            lowAddress.low,
            highAddress.high,
            highAddress.low,
            UInt64(lowPort) << 16 | UInt64(highPort)
        )
    }
}

/// Bytes that arrived ahead of the stream position, held until the hole before them fills.
struct PendingSegment {
    var sequence: UInt32
    /// Stream bytes this segment covers on the wire; `bytes` may be shorter (snaplen).
    var wireLength: Int
    var bytes: [UInt8]
    /// The acknowledgment the segment carried: its bytes follow the peer's bytes up to it.
    var acknowledgment: UInt32?
}

/// One direction of a connection.
struct StreamState {
    // Laid out widest first, so the optionals' tags share padding with the flags: the
    // entry's size bounds how many flows the memory budget holds.
    var pending: [PendingSegment] = []
    /// The last bytes delivered (a ring of `recentCapacity`), kept while the direction is
    /// wanted, to tell a retransmission whose bytes differ from what was delivered.
    var recent: [UInt8] = []
    var pendingBytes = 0
    /// Where the ring writes next, and how many of its bytes are valid (both at most
    /// `recentCapacity`; 32 bits keep the entry small enough for the budget's flow count).
    var recentWrite: Int32 = 0
    var recentCount: Int32 = 0
    /// Capture time since which the first held bytes wait for a reason that runs out
    /// (`ReassemblyLimits.maximumReorderWaitNanos`): a hole the peer acknowledged, or bytes that
    /// acknowledge peer bytes the capture has not shown yet. Nil while nothing waits so.
    var stalledSince: Int64?
    var synchronised = false
    var sawSYN = false
    var sawFIN = false
    var wanted = true
    var peerHasAcknowledged = false
    /// Some byte was passed on (or declared missing): the sequence space is settled.
    var delivered = false
    /// The first data byte's sequence number, when the peer's handshake acknowledgment named
    /// it before this direction's own SYN was seen (RFC 9293 3.5).
    var inferredStart: UInt32?
    /// The first data byte of another sequence space the handshake named while nothing was
    /// delivered this way: a second SYN-ACK with another initial sequence number (a SYN proxy,
    /// an answer to an earlier SYN), or a SYN-ACK acknowledging another SYN than the one seen.
    /// Taken when the other side confirms it (`adoptAlternateStart`), never on data alone.
    var alternateStart: UInt32?
    var nextSequence: UInt32 = 0
    var initialSequence: UInt32 = 0
    /// Highest acknowledgment the other side sent for this direction's bytes.
    var acknowledgedByPeer: UInt32 = 0
    /// Sequence number just past the last byte in `recent`.
    var recentEnd: UInt32 = 0

    static let recentCapacity = 4096

    /// Remembers delivered bytes ending just before `end`. The ring grows with what was
    /// delivered, up to `recentCapacity`: a flow that carried one byte holds one.
    mutating func remember(_ bytes: UnsafeRawBufferPointer, endingAt end: UInt32) {
        let capacity = StreamState.recentCapacity
        if recent.count < capacity {
            if recent.count + bytes.count <= capacity {
                // Still filling: the bytes go at the end, in order, as the ring reads them.
                recent.append(contentsOf: bytes)
                recentWrite = Int32(recent.count % capacity)
                recentCount = Int32(recent.count)
                recentEnd = end
                return
            }
            // Full size from here; the ring writes below overwrite the new room first.
            recent.append(contentsOf: repeatElement(0, count: capacity - recent.count))
        }
        var remaining = bytes.count > capacity ? UnsafeRawBufferPointer(rebasing: bytes.suffix(capacity)) : bytes
        recentCount = Int32(min(capacity, Int(recentCount) + remaining.count))
        var write = Int(recentWrite)
        recent.withUnsafeMutableBytes { ring in
            while !remaining.isEmpty {
                let n = min(remaining.count, capacity - write)
                (ring.baseAddress! + write).copyMemory(from: remaining.baseAddress!, byteCount: n)
                write = (write + n) % capacity
                remaining = UnsafeRawBufferPointer(rebasing: remaining[(remaining.startIndex + n)...])
            }
        }
        recentWrite = Int32(write)
        recentEnd = end
    }

    /// True when `bytes`, starting at `sequence`, differ from the remembered delivered bytes
    /// they overlap.
    func differs(_ bytes: UnsafeRawBufferPointer, at sequence: UInt32) -> Bool {
        guard recentCount > 0 else { return false }
        for (offset, byte) in bytes.enumerated() {
            let behind = Int(Int32(bitPattern: recentEnd &- (sequence &+ UInt32(truncatingIfNeeded: offset))))
            guard behind >= 1, behind <= Int(recentCount) else { continue }
            let index = (Int(recentWrite) - behind + StreamState.recentCapacity) % StreamState.recentCapacity
            if recent[index] != byte { return true }
        }
        return false
    }
}

struct FlowEntry<Consumer: StreamConsumer> {
    var key: FlowKey
    var hash: UInt64
    var originatorStream = StreamState()
    var responderStream = StreamState()
    var consumer: Consumer
    var lastSeen: Int64
    /// What the consumer and the rings held when last counted (`FlowTable.account`).
    var heldBytes = 0
    /// Capture time of a RST or the second FIN that arrived while bytes still wait for
    /// reordered ones: the close waits with them (at most `maximumReorderWaitNanos`).
    var closingSince: Int64?
    /// Least-recently-active list: `older` points toward the tail that expires first.
    var newer: Int32 = -1
    var older: Int32 = -1
    var originatorIsLow: Bool
    /// The consumer has finished; the entry only absorbs the rest of the connection.
    var decided = false

}

/// The flow entries in one manually managed buffer. Fields are read and written through the
/// pointer, in place: an Array of this generic struct copies whole entries on nested
/// accessors, which measured as the largest cost per packet.
final class EntryStorage<Consumer: StreamConsumer> {
    private(set) var base: UnsafeMutablePointer<FlowEntry<Consumer>>

    /// One direction's state of entry `index`, addressed in place: valid until the next entry
    /// is created (the storage may move). FlowEntry's subscript, a coroutine with a yield per
    /// direction, is not inlined; this is an address. Here, not on `FlowTable`: a method of the
    /// table called from its mutating ones copies the table in debug builds, and swiftc 6.3's
    /// ThreadSanitizer instrumentation of that copy does not compile ("Invalid bitcast").
    @inline(__always)
    func stream(_ index: Int, _ direction: FlowDirection) -> UnsafeMutablePointer<StreamState> {
        let offset =
            direction == .fromOriginator
            ? MemoryLayout<FlowEntry<Consumer>>.offset(of: \FlowEntry<Consumer>.originatorStream)!
            : MemoryLayout<FlowEntry<Consumer>>.offset(of: \FlowEntry<Consumer>.responderStream)!
        return (UnsafeMutableRawPointer(base + index) + offset).assumingMemoryBound(to: StreamState.self)
    }
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 1024) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    func append(_ entry: FlowEntry<Consumer>) {
        if count == capacity {
            let grown = UnsafeMutablePointer<FlowEntry<Consumer>>.allocate(capacity: capacity * 2)
            grown.moveInitialize(from: base, count: count)
            base.deallocate()
            base = grown
            capacity *= 2
        }
        (base + count).initialize(to: entry)
        count += 1
    }

    /// Moves the last entry into `index` (destroying what was there) and shrinks by one.
    func moveLast(into index: Int) {
        count -= 1
        if index == count {
            (base + index).deinitialize(count: 1)
        } else {
            (base + index).deinitialize(count: 1)
            (base + index).moveInitialize(from: base + count, count: 1)
        }
    }
}

/// Limits on what reassembly holds; defaults are documented in ARCHITECTURE.md.
public struct ReassemblyLimits: Sendable {
    /// Connections tracked at once; beyond this the least recently active is finished early.
    public var maximumFlows = 1 << 19
    /// A flow with no packet for this long is finished (capture time).
    public var idleTimeoutNanos: Int64 = 120_000_000_000
    /// Out-of-order bytes held per direction. A TLS server flight with a long chain is
    /// under 64 KiB; past this bound the hole is declared a gap.
    public var maximumPendingBytesPerDirection = 256 * 1024
    /// Out-of-order segments held per direction.
    public var maximumPendingSegmentsPerDirection = 512
    /// Out-of-order bytes held across all flows.
    public var maximumPendingBytesTotal: Int
    /// Capture time held bytes wait for what a reordering capture point showed late: the
    /// bytes of a hole the peer acknowledged, or the peer bytes a segment acknowledges. Two
    /// taps merged by timestamp, or two NIC queues, move packets by far less; past it the hole
    /// is a gap and held bytes go on (`reorderWaitsExpired`). RFC 6298's one-second minimum
    /// retransmission timeout is the same order: a receiver would have asked again by then.
    public var maximumReorderWaitNanos: Int64 = 1_000_000_000
    /// Segments further than this from the expected sequence number are ignored
    /// (half the 32-bit sequence space is the RFC 9293 3.4 comparison limit).
    public var maximumSequenceLead = 1 << 28
    /// Memory the table may hold in all: its entries, what their consumers buffer, the
    /// delivered-byte rings and the out-of-order bytes. Past it, the least recently active
    /// flows are finished early (counted as `flowsEvictedForMemory`).
    public var maximumHeldBytes: Int
    /// The same for the DTLS and QUIC flow tables together (`UDPHandshakeTable`).
    public var maximumUDPHeldBytes: Int
    /// Bytes of records held back for output order behind undecided connections (`RecordSink`).
    public var maximumRecordBytesWaiting: Int
    /// Bytes of key log secrets found in the input (pcapng Decryption Secrets Blocks).
    public var maximumKeyLogBytes: Int

    /// The limits of one worker of one under the default budget.
    public init() { self.init(budget: MemoryBudget(), workers: 1) }

    /// Limits for one of `workers` extraction workers, each with its own tables, sharing
    /// `budget`'s extraction parts equally.
    public init(budget: MemoryBudget, workers: Int) {
        let workers = max(workers, 1)
        maximumHeldBytes = budget.tcpFlows / workers
        maximumPendingBytesTotal = budget.outOfOrderBytes / workers
        maximumUDPHeldBytes = budget.udpFlows / workers
        maximumRecordBytesWaiting = budget.recordsAwaitingOrder / workers
        maximumKeyLogBytes = budget.keyLog / workers
    }
}

/// Tracks TCP connections and feeds each direction's in-order bytes to a per-flow consumer.
///
/// - Connections with or without a seen SYN; port reuse (a new SYN on a known 4-tuple starts
///   a new connection).
/// - Out-of-order and overlapping segments: held in order, the first copy of a byte wins
///   (as in Zeek and Suricata). A later copy whose bytes differ from the first is counted
///   as a conflicting overlap: against held segments, and against the last 4 KiB delivered
///   while the handshake still needs bytes. Sequence numbers compare modulo 2^32.
/// - Reordering capture points (two taps merged by timestamp, NIC queues): the peer's
///   acknowledgment above a hole does not declare it lost at once; the held bytes wait
///   `maximumReorderWaitNanos` of capture time for it. Bytes that acknowledge peer bytes not
///   shown yet wait the same for them, so the consumer reads both directions in the order
///   the endpoints did.
/// - Gaps are declared when the peer acknowledged bytes that did not appear within that
///   wait, when a buffer bound is hit, when the snaplen cut a segment, or at the end of the flow.
/// - Once the consumer wants nothing more from a direction, that direction is not buffered;
///   once it wants nothing at all, the entry stays as a cheap tombstone until close.
public struct FlowTable<Consumer: StreamConsumer>: ~Copyable {
    public let limits: ReassemblyLimits
    public private(set) var counters = ReassemblyCounters()
    /// When false, packets of flows not already in the table are ignored: a worker that has
    /// finished its own files follows its open flows into the next ones and nothing else.
    public var createsFlows = true

    private let storage = EntryStorage<Consumer>()
    private var slots: [Int32]
    private var mask: Int
    private var newest: Int32 = -1
    private var oldest: Int32 = -1
    private var bufferedBytes = 0
    /// The sum of the entries' `heldBytes`.
    private var heldBytes = 0
    /// What one entry costs in place: its storage and its slots (the table is at most half full).
    private static var entryBytes: Int { MemoryLayout<FlowEntry<Consumer>>.stride + 2 * MemoryLayout<Int32>.stride }
    private var now: Int64 = 0
    private var cachedIndex = 0

    public init(limits: ReassemblyLimits = ReassemblyLimits()) {
        self.limits = limits
        slots = [Int32](repeating: -1, count: 4096)
        mask = 4095
    }

    public var activeFlows: Int { storage.count }

    // MARK: segments

    /// Memory held now, by the account the budget is checked against.
    public var memoryHeld: Int { heldBytes + bufferedBytes + storage.count * Self.entryBytes }

    public mutating func handle(_ segment: TCPSegment, sink: inout Consumer.Sink) {
        now = segment.timestampNanos
        if oldest >= 0, now &- storage.base[Int(oldest)].lastSeen > limits.idleTimeoutNanos { expireIdle(sink: &sink) }
        let held = memoryHeld
        if held > limits.maximumHeldBytes { shed(sink: &sink) }
        counters.peakHeldBytes = max(counters.peakHeldBytes, held)
        let (key, sourceIsLow) = FlowKey.of(segment)
        let flags = segment.flags
        let isSYN = flags.contains(.syn)
        var index: Int
        if cachedIndex < storage.count, storage.base[cachedIndex].key == key {
            index = cachedIndex
        } else {
            let hash = key.hash()
            if let found = find(key, hash: hash) {
                index = found
            } else {
                guard createsFlows, isSYN || segment.payloadLength > 0 else { return }
                index = create(key, hash: hash, sourceIsLow: sourceIsLow, segment: segment, sink: &sink)
            }
            cachedIndex = index
        }
        var direction: FlowDirection =
            storage.base[index].originatorIsLow == sourceIsLow ? .fromOriginator : .fromResponder
        if isSYN, createsFlows,
            flags.contains(.ack)
                ? synAckStartsNewConnection(index, direction, segment)
                : startsNewConnection(index, direction, segment)
        {
            counters.portReuses += 1
            let hash = storage.base[index].hash
            finishAndRemove(index, .replaced, sink: &sink)
            index = create(key, hash: hash, sourceIsLow: sourceIsLow, segment: segment, sink: &sink)
            cachedIndex = index
            direction = storage.base[index].originatorIsLow == sourceIsLow ? .fromOriginator : .fromResponder
        }
        touch(index)

        if storage.base[index].decided {
            if flags.contains(.fin) { storage.stream(index, direction).pointee.sawFIN = true }
            if flags.contains(.rst)
                || (storage.base[index].originatorStream.sawFIN && storage.base[index].responderStream.sawFIN)
                || storage.base[index].closingSince != nil
            {
                remove(index)
            }
            return
        }

        if storage.base[index].originatorStream.stalledSince != nil
            || storage.base[index].responderStream.stalledSince != nil
        {
            expireStalls(index, sink: &sink)
        }
        storage.base[index].consumer.observe(segment, from: direction)
        if flags.contains(.ack), !storage.base[index].decided {
            acknowledge(index, direction.reversed, upTo: segment.acknowledgment, handshake: isSYN, sink: &sink)
        }
        if !storage.base[index].decided { receive(index, direction, segment, sink: &sink) }
        if !storage.base[index].decided,
            !storage.base[index].originatorStream.pending.isEmpty
                || !storage.base[index].responderStream.pending.isEmpty
        {
            settle(index, sink: &sink)
        }
        if flags.contains(.fin) { storage.stream(index, direction).pointee.sawFIN = true }
        if storage.base[index].closingSince == nil,
            flags.contains(.rst)
                || (storage.base[index].originatorStream.sawFIN && storage.base[index].responderStream.sawFIN)
        {
            storage.base[index].closingSince = now
        }
        if storage.base[index].closingSince != nil, !closeWaits(index) { finishAndRemove(index, .closed, sink: &sink) }
    }

    /// True while a requested close should wait, until the wait runs out: bytes are held, or
    /// a direction's bytes were acknowledged and not shown yet (one past: the FIN).
    private func closeWaits(_ index: Int) -> Bool {
        guard let since = storage.base[index].closingSince, !storage.base[index].decided,
            now &- since <= limits.maximumReorderWaitNanos
        else { return false }
        for direction in [FlowDirection.fromOriginator, .fromResponder] {
            let state = storage.stream(index, direction)
            if !state.pointee.pending.isEmpty { return true }
            if state.pointee.wanted, state.pointee.synchronised, state.pointee.peerHasAcknowledged,
                Int32(bitPattern: state.pointee.acknowledgedByPeer &- state.pointee.nextSequence) > 1
            {
                return true
            }
        }
        return false
    }

    /// Finishes every flow (end of input).
    public mutating func finishAll(sink: inout Consumer.Sink) {
        while oldest >= 0 { finishAndRemove(Int(oldest), .endOfInput, sink: &sink) }
    }

    /// Finishes flows idle longer than the timeout, measured against `timestampNanos`
    /// (for live capture, where time passes without packets).
    public mutating func expire(at timestampNanos: Int64, sink: inout Consumer.Sink) {
        now = max(now, timestampNanos)
        expireIdle(sink: &sink)
    }

    private mutating func expireIdle(sink: inout Consumer.Sink) {
        while oldest >= 0, now &- storage.base[Int(oldest)].lastSeen > limits.idleTimeoutNanos {
            counters.flowsExpired += 1
            finishAndRemove(Int(oldest), .idle, sink: &sink)
        }
    }

    /// A SYN without ACK on a known 4-tuple is a new connection unless it repeats the SYN
    /// this entry began with. A SYN that arrives after its own SYN-ACK (capture reordering)
    /// finds its direction not yet synchronised and is taken as part of this connection.
    private func startsNewConnection(_ index: Int, _ direction: FlowDirection, _ segment: TCPSegment) -> Bool {
        if storage.stream(index, direction).pointee.sawSYN {
            return storage.stream(index, direction).pointee.initialSequence != segment.sequence
        }
        // The SYN that the peer's SYN-ACK already acknowledged, shown late (with its data,
        // which the acknowledgment covers when TCP Fast Open took it, RFC 7413 3).
        if let inferred = storage.stream(index, direction).pointee.inferredStart {
            let covered = Int(Int32(bitPattern: inferred &- (segment.sequence &+ 1)))
            if covered >= 0, covered <= segment.payloadLength { return false }
        }
        return storage.stream(index, direction).pointee.synchronised || storage.base[index].decided
    }

    /// A SYN-ACK on a flow whose handshake is decided starts a new connection on the same
    /// 4-tuple (its SYN not captured) unless it belongs to the space already followed: its
    /// initial sequence number, or a place at or behind the stream position (a SYN-ACK shown
    /// late). A retransmitted SYN-ACK or an old duplicate changes nothing.
    private func synAckStartsNewConnection(_ index: Int, _ direction: FlowDirection, _ segment: TCPSegment) -> Bool {
        guard storage.base[index].decided else { return false }
        let state = storage.stream(index, direction)
        if state.pointee.sawSYN { return state.pointee.initialSequence != segment.sequence }
        let behind = Int(Int32(bitPattern: state.pointee.nextSequence &- (segment.sequence &+ 1)))
        return !state.pointee.synchronised || behind < 0 || behind > limits.maximumSequenceLead
    }

    // MARK: byte stream

    private mutating func receive(
        _ index: Int,
        _ direction: FlowDirection,
        _ segment: TCPSegment,
        sink: inout Consumer.Sink
    ) {
        let isSYN = segment.flags.contains(.syn)
        if isSYN {
            if !storage.stream(index, direction).pointee.sawSYN {
                storage.stream(index, direction).pointee.sawSYN = true
                storage.stream(index, direction).pointee.initialSequence = segment.sequence
            } else if segment.sequence != storage.stream(index, direction).pointee.initialSequence,
                !storage.stream(index, direction).pointee.delivered
            {
                // Another SYN-ACK, another space: taken if the peer acknowledges it.
                storage.stream(index, direction).pointee.alternateStart = segment.sequence &+ 1
            }
            if !storage.stream(index, direction).pointee.synchronised
                || (direction == .fromOriginator && storage.stream(index, direction).pointee.inferredStart != nil
                    && !storage.stream(index, direction).pointee.delivered)
            {
                // The stream starts here; a start inferred from the SYN-ACK may lie past data
                // this SYN carries (TCP Fast Open).
                storage.stream(index, direction).pointee.nextSequence = segment.sequence &+ 1
                storage.stream(index, direction).pointee.synchronised = true
            }
        }
        if !isSYN, direction == .fromOriginator,
            let alternate = storage.stream(index, direction).pointee.alternateStart,
            segment.sequence == alternate
        {
            // The SYN-ACK acknowledged a SYN not seen; this segment sits where it said.
            adoptAlternateStart(index, direction)
        }
        let length = segment.payloadLength
        guard length > 0, storage.stream(index, direction).pointee.wanted else { return }
        let dataSequence = isSYN ? segment.sequence &+ 1 : segment.sequence
        if !storage.stream(index, direction).pointee.synchronised {
            storage.stream(index, direction).pointee.nextSequence = dataSequence
            storage.stream(index, direction).pointee.synchronised = true
        }
        let offset = Int(Int32(bitPattern: dataSequence &- storage.stream(index, direction).pointee.nextSequence))
        if offset > limits.maximumSequenceLead || offset < -limits.maximumSequenceLead {
            counters.outOfWindowSegments += 1
            storage.base[index].consumer.ignoredOutOfWindow(from: direction)
            return
        }
        if offset + length <= 0 {
            counters.retransmittedBytes += Int64(length)
            if storage.stream(index, direction).pointee.differs(segment.payload, at: dataSequence) {
                counters.conflictingOverlaps += 1
            }
            return
        }
        let acknowledgment = segment.flags.contains(.ack) ? segment.acknowledgment : nil
        if offset <= 0 {
            if offset < 0,
                storage.stream(index, direction).pointee.differs(
                    UnsafeRawBufferPointer(rebasing: segment.payload.prefix(-offset)),
                    at: dataSequence
                )
            {
                counters.conflictingOverlaps += 1
            }
            if let acknowledgment, waitsForPeer(index, direction, acknowledgment) {
                // These bytes answer peer bytes the capture has not shown yet: hold them, in place.
                let trim = -offset
                let rest =
                    trim < segment.payload.count
                    ? UnsafeRawBufferPointer(rebasing: segment.payload[(segment.payload.startIndex + trim)...])
                    : UnsafeRawBufferPointer(start: nil, count: 0)
                if trim > 0 { counters.retransmittedBytes += Int64(trim) }
                hold(
                    index,
                    direction,
                    rest,
                    sequence: storage.stream(index, direction).pointee.nextSequence,
                    wireLength: length - trim,
                    acknowledgment: acknowledgment,
                    sink: &sink
                )
                stall(index, direction)
                return
            }
            deliver(index, direction, segment.payload, wireLength: length, trim: -offset, sink: &sink)
            drainPending(index, direction, sink: &sink)
            return
        }
        hold(
            index,
            direction,
            segment.payload,
            sequence: dataSequence,
            wireLength: length,
            acknowledgment: acknowledgment,
            sink: &sink
        )
        if storage.stream(index, direction).pointee.peerHasAcknowledged,
            Int32(bitPattern: storage.stream(index, direction).pointee.acknowledgedByPeer &- dataSequence) >= 0
        {
            // The peer acknowledged past the hole: its bytes were sent, and wait to be shown.
            stall(index, direction)
        }
    }

    /// True when bytes carrying `acknowledgment` answer bytes of the peer not delivered yet
    /// (one past is allowed: a FIN takes a sequence number). A peer not followed, or whose
    /// position is unknown, makes nothing wait.
    @inline(__always)
    private func waitsForPeer(_ index: Int, _ direction: FlowDirection, _ acknowledgment: UInt32) -> Bool {
        let peer = direction.reversed
        guard storage.stream(index, peer).pointee.wanted, storage.stream(index, peer).pointee.synchronised else {
            return false
        }
        // A SYN-ACK showed that the peer's SYN was sent, and it was not shown yet: it may carry
        // the first bytes (TCP Fast Open), which the SYN-ACK's acknowledgment already covers.
        if peer == .fromOriginator, storage.stream(index, peer).pointee.inferredStart != nil,
            !storage.stream(index, peer).pointee.sawSYN,
            !storage.stream(index, peer).pointee.delivered
        {
            return true
        }
        return Int32(bitPattern: acknowledgment &- storage.stream(index, peer).pointee.nextSequence) > 1
    }

    /// Starts the wait of `direction`'s held bytes, unless one runs already.
    @inline(__always)
    private mutating func stall(_ index: Int, _ direction: FlowDirection) {
        if storage.stream(index, direction).pointee.stalledSince == nil,
            !storage.stream(index, direction).pointee.pending.isEmpty
        {
            storage.stream(index, direction).pointee.stalledSince = now
        }
    }

    /// Ends waits that ran past `maximumReorderWaitNanos`: the hole becomes a gap, or the held
    /// bytes go on without the peer bytes they answer.
    private mutating func expireStalls(_ index: Int, sink: inout Consumer.Sink) {
        for direction in [FlowDirection.fromOriginator, .fromResponder] {
            guard let since = storage.stream(index, direction).pointee.stalledSince,
                now &- since > limits.maximumReorderWaitNanos, !storage.base[index].decided
            else { continue }
            counters.reorderWaitsExpired += 1
            storage.stream(index, direction).pointee.stalledSince = nil
            jumpToPending(index, direction, sink: &sink)
        }
        if !storage.base[index].decided { settle(index, sink: &sink) }
    }

    /// Delivers what each direction holds that can go now, until neither can: bytes of one
    /// direction may be what the other's held bytes wait for.
    private mutating func settle(_ index: Int, sink: inout Consumer.Sink) {
        while !storage.base[index].decided {
            let originator = drainPending(index, .fromOriginator, sink: &sink)
            let responder = drainPending(index, .fromResponder, sink: &sink)
            if !originator && !responder { return }
        }
    }

    /// Passes `bytes[trim...]` on and moves the stream position past `wireLength - trim` bytes.
    private mutating func deliver(
        _ index: Int,
        _ direction: FlowDirection,
        _ bytes: UnsafeRawBufferPointer,
        wireLength: Int,
        trim: Int,
        sink: inout Consumer.Sink
    ) {
        if trim > 0 { counters.retransmittedBytes += Int64(trim) }
        let wireRemaining = wireLength - trim
        // A snaplen-cut copy can overlap delivered bytes by more than it holds.
        let capturedTrim = min(trim, bytes.count)
        let captured = bytes.count - capturedTrim
        let delivered = UnsafeRawBufferPointer(rebasing: bytes[(bytes.startIndex + capturedTrim)...])
        if captured > 0 {
            storage.stream(index, direction).pointee.remember(
                delivered,
                endingAt: storage.stream(index, direction).pointee.nextSequence &+ UInt32(truncatingIfNeeded: captured)
            )
        }
        storage.stream(index, direction).pointee.nextSequence &+= UInt32(truncatingIfNeeded: wireRemaining)
        storage.stream(index, direction).pointee.stalledSince = nil
        storage.stream(index, direction).pointee.delivered = true
        storage.stream(index, direction).pointee.alternateStart = nil
        if captured > 0 {
            let interest = storage.base[index].consumer.receive(delivered, from: direction, at: now, sink: &sink)
            apply(interest, index, sink: &sink)
        }
        if captured < wireRemaining, storage.stream(index, direction).pointee.wanted {
            counters.gaps += 1
            counters.gapBytes += Int64(wireRemaining - captured)
            let interest = storage.base[index].consumer.skip(wireRemaining - captured, from: direction, sink: &sink)
            apply(interest, index, sink: &sink)
        }
        account(index)
    }

    /// Counts again what entry `index` holds (after its consumer was fed or finished).
    @inline(__always)
    private mutating func account(_ index: Int) {
        let held =
            storage.base[index].decided
            ? 0
            : storage.base[index].consumer.heldBytes + Self.arrayBytes(storage.base[index].originatorStream.recent)
                + Self.arrayBytes(storage.base[index].responderStream.recent)
        heldBytes += held - storage.base[index].heldBytes
        storage.base[index].heldBytes = held
    }

    /// An array's heap block: its capacity and its header.
    @inline(__always)
    private static func arrayBytes(_ array: [UInt8]) -> Int { array.capacity == 0 ? 0 : array.capacity + 32 }

    /// Finishes the least recently active flows until the table is back within its budget.
    private mutating func shed(sink: inout Consumer.Sink) {
        while memoryHeld > limits.maximumHeldBytes, oldest >= 0 {
            counters.flowsEvictedForMemory += 1
            finishAndRemove(Int(oldest), .evicted, sink: &sink)
        }
    }

    /// Declares `count` missing bytes at the stream position.
    private mutating func skip(_ index: Int, _ direction: FlowDirection, _ count: Int, sink: inout Consumer.Sink) {
        guard count > 0 else { return }
        counters.gaps += 1
        counters.gapBytes += Int64(count)
        storage.stream(index, direction).pointee.nextSequence &+= UInt32(truncatingIfNeeded: count)
        storage.stream(index, direction).pointee.stalledSince = nil
        storage.stream(index, direction).pointee.delivered = true
        storage.stream(index, direction).pointee.alternateStart = nil
        let interest = storage.base[index].consumer.skip(count, from: direction, sink: &sink)
        apply(interest, index, sink: &sink)
    }

    private mutating func apply(_ interest: StreamInterest, _ index: Int, sink: inout Consumer.Sink) {
        guard !storage.base[index].decided else { return }
        if interest.isEmpty {
            storage.base[index].decided = true
            releasePending(index, .fromOriginator)
            releasePending(index, .fromResponder)
            storage.base[index].originatorStream.wanted = false
            storage.base[index].responderStream.wanted = false
            storage.base[index].consumer.finish(.decided, at: now, sink: &sink)
            account(index)
            return
        }
        for direction in [FlowDirection.fromOriginator, .fromResponder]
        where !interest.contains(direction) && storage.stream(index, direction).pointee.wanted {
            storage.stream(index, direction).pointee.wanted = false
            releasePending(index, direction)
        }
    }

    private mutating func releasePending(_ index: Int, _ direction: FlowDirection) {
        bufferedBytes -= storage.stream(index, direction).pointee.pendingBytes
        // Most streams never held anything: storing an empty array over an empty one is
        // still a release of the old.
        if storage.stream(index, direction).pointee.pending.capacity > 0 {
            storage.stream(index, direction).pointee.pending = []
        }
        storage.stream(index, direction).pointee.pendingBytes = 0
        if storage.stream(index, direction).pointee.recent.capacity > 0 {
            storage.stream(index, direction).pointee.recent = []
        }
        storage.stream(index, direction).pointee.recentCount = 0
    }

    /// Delivers held segments that the stream position has reached, unless they wait for
    /// peer bytes (`forceFirst` delivers the first regardless). True when something went on.
    @discardableResult
    private mutating func drainPending(
        _ index: Int,
        _ direction: FlowDirection,
        forceFirst: Bool = false,
        sink: inout Consumer.Sink
    ) -> Bool {
        var progressed = false
        var force = forceFirst
        while storage.stream(index, direction).pointee.wanted,
            let first = storage.stream(index, direction).pointee.pending.first
        {
            let offset = Int(Int32(bitPattern: first.sequence &- storage.stream(index, direction).pointee.nextSequence))
            if offset > 0 { return progressed }
            if !force, offset + first.wireLength > 0, let acknowledgment = first.acknowledgment,
                waitsForPeer(index, direction, acknowledgment)
            {
                stall(index, direction)
                return progressed
            }
            force = false
            progressed = true
            storage.stream(index, direction).pointee.pending.removeFirst()
            storage.stream(index, direction).pointee.pendingBytes -= first.bytes.count
            bufferedBytes -= first.bytes.count
            if offset + first.wireLength <= 0 {
                counters.retransmittedBytes += Int64(first.wireLength)
                continue
            }
            first.bytes.withUnsafeBytes { bytes in
                deliver(index, direction, bytes, wireLength: first.wireLength, trim: -offset, sink: &sink)
            }
        }
        return progressed
    }

    /// Skips to the first held segment and delivers it, whatever it waits for, and what can
    /// follow it.
    private mutating func jumpToPending(_ index: Int, _ direction: FlowDirection, sink: inout Consumer.Sink) {
        guard let first = storage.stream(index, direction).pointee.pending.first else { return }
        let hole = Int(Int32(bitPattern: first.sequence &- storage.stream(index, direction).pointee.nextSequence))
        skip(index, direction, hole, sink: &sink)
        drainPending(index, direction, forceFirst: true, sink: &sink)
    }

    /// Records the peer's acknowledgment of `direction`'s bytes. Held segments at or below
    /// it mean the hole before them was sent: it waits to be shown (`stall`). The
    /// acknowledgment in a SYN-ACK, or the first one after the peer's own SYN, names
    /// `direction`'s first data byte (RFC 9293 3.5), which places it before its SYN is seen.
    private mutating func acknowledge(
        _ index: Int,
        _ direction: FlowDirection,
        upTo ack: UInt32,
        handshake: Bool,
        sink: inout Consumer.Sink
    ) {
        if direction == .fromResponder, let alternate = storage.stream(index, direction).pointee.alternateStart,
            ack == alternate,
            !handshake
        {
            // The peer acknowledged the other SYN-ACK's space (Suricata's SYN/ACK queue).
            adoptAlternateStart(index, direction)
        } else if handshake, direction == .fromOriginator, storage.stream(index, direction).pointee.synchronised,
            !storage.stream(index, direction).pointee.delivered,
            ack != storage.stream(index, direction).pointee.nextSequence
        {
            // A SYN-ACK for another SYN than the one seen (a retransmission with a new ISN).
            storage.stream(index, direction).pointee.alternateStart = ack
        }
        if !storage.stream(index, direction).pointee.synchronised,
            !storage.stream(index, direction).pointee.peerHasAcknowledged,
            handshake || storage.stream(index, direction.reversed).pointee.sawSYN
        {
            storage.stream(index, direction).pointee.nextSequence = ack
            storage.stream(index, direction).pointee.synchronised = true
            storage.stream(index, direction).pointee.inferredStart = ack
        }
        if !storage.stream(index, direction).pointee.peerHasAcknowledged
            || Int32(bitPattern: ack &- storage.stream(index, direction).pointee.acknowledgedByPeer) > 0
        {
            storage.stream(index, direction).pointee.acknowledgedByPeer = ack
            storage.stream(index, direction).pointee.peerHasAcknowledged = true
        }
        guard storage.stream(index, direction).pointee.wanted, storage.stream(index, direction).pointee.synchronised,
            !storage.stream(index, direction).pointee.pending.isEmpty
        else { return }
        let first = storage.stream(index, direction).pointee.pending[0].sequence
        if Int32(bitPattern: ack &- storage.stream(index, direction).pointee.nextSequence) > 0,
            Int32(bitPattern: first &- ack) <= 0
        {
            stall(index, direction)
        }
    }

    /// Moves `direction` to the sequence space its `alternateStart` names (RFC 9293 3.5: the
    /// handshake that the other side completed is the one that counts). Held bytes outside
    /// the new space's window are dropped.
    private mutating func adoptAlternateStart(_ index: Int, _ direction: FlowDirection) {
        guard let start = storage.stream(index, direction).pointee.alternateStart else { return }
        counters.sequenceSpacesAdopted += 1
        storage.stream(index, direction).pointee.alternateStart = nil
        storage.stream(index, direction).pointee.nextSequence = start
        storage.stream(index, direction).pointee.initialSequence = start &- 1
        storage.stream(index, direction).pointee.synchronised = true
        storage.stream(index, direction).pointee.stalledSince = nil
        guard !storage.stream(index, direction).pointee.pending.isEmpty else { return }
        func offset(_ held: PendingSegment) -> Int { Int(Int32(bitPattern: held.sequence &- start)) }
        var kept = storage.stream(index, direction).pointee.pending.filter {
            (0...limits.maximumSequenceLead).contains(offset($0))
        }
        kept.sort { offset($0) < offset($1) }
        let keptBytes = kept.reduce(0) { $0 + $1.bytes.count }
        bufferedBytes -= storage.stream(index, direction).pointee.pendingBytes - keptBytes
        storage.stream(index, direction).pointee.pending = kept
        storage.stream(index, direction).pointee.pendingBytes = keptBytes
    }

    /// Holds an out-of-order segment. Bytes already held win over new copies (first copy
    /// wins); differing copies are counted as conflicts.
    private mutating func hold(
        _ index: Int,
        _ direction: FlowDirection,
        _ bytes: UnsafeRawBufferPointer,
        sequence: UInt32,
        wireLength: Int,
        acknowledgment: UInt32?,
        sink: inout Consumer.Sink
    ) {
        counters.outOfOrderSegments += 1
        let base = storage.stream(index, direction).pointee.nextSequence
        func position(_ s: UInt32) -> Int { Int(Int32(bitPattern: s &- base)) }
        // Cut the new segment into the pieces no held segment covers.
        var pieces: [(start: Int, end: Int)] = [(position(sequence), position(sequence) + wireLength)]
        for held in storage.stream(index, direction).pointee.pending {
            let heldStart = position(held.sequence)
            let heldEnd = heldStart + held.wireLength
            var next: [(start: Int, end: Int)] = []
            for piece in pieces {
                if piece.end <= heldStart || piece.start >= heldEnd {
                    next.append(piece)
                    continue
                }
                let overlapStart = max(piece.start, heldStart)
                let overlapEnd = min(piece.end, heldEnd)
                let newStart = position(sequence)
                for p in overlapStart..<overlapEnd {
                    let newIndex = p - newStart
                    let heldIndex = p - heldStart
                    if newIndex < bytes.count, heldIndex < held.bytes.count, bytes[newIndex] != held.bytes[heldIndex] {
                        counters.conflictingOverlaps += 1
                        break
                    }
                }
                if piece.start < heldStart { next.append((piece.start, heldStart)) }
                if piece.end > heldEnd { next.append((heldEnd, piece.end)) }
            }
            pieces = next
            if pieces.isEmpty {
                counters.retransmittedBytes += Int64(wireLength)
                return
            }
        }
        let newStart = position(sequence)
        for piece in pieces {
            let capturedEnd = min(piece.end - newStart, bytes.count)
            let copyStart = piece.start - newStart
            let copied =
                capturedEnd > copyStart ? Array(UnsafeRawBufferPointer(rebasing: bytes[copyStart..<capturedEnd])) : []
            while storage.stream(index, direction).pointee.wanted,
                !storage.stream(index, direction).pointee.pending.isEmpty,
                storage.stream(index, direction).pointee.pending.count >= limits.maximumPendingSegmentsPerDirection
                    || storage.stream(index, direction).pointee.pendingBytes + copied.count
                        > limits.maximumPendingBytesPerDirection
                    || bufferedBytes + copied.count > limits.maximumPendingBytesTotal
            {
                counters.bufferLimitGaps += 1
                jumpToPending(index, direction, sink: &sink)
            }
            guard storage.stream(index, direction).pointee.wanted else { return }
            let pieceSequence = base &+ UInt32(truncatingIfNeeded: piece.start)
            let offsetNow = Int(
                Int32(bitPattern: pieceSequence &- storage.stream(index, direction).pointee.nextSequence)
            )
            if offsetNow < 0 {
                // Buffer pressure moved the stream past this piece's start.
                copied.withUnsafeBytes {
                    deliver(
                        index,
                        direction,
                        $0,
                        wireLength: piece.end - piece.start,
                        trim: min(-offsetNow, piece.end - piece.start),
                        sink: &sink
                    )
                }
                drainPending(index, direction, sink: &sink)
                continue
            }
            let held = PendingSegment(
                sequence: pieceSequence,
                wireLength: piece.end - piece.start,
                bytes: copied,
                acknowledgment: acknowledgment
            )
            let at =
                storage.stream(index, direction).pointee.pending.firstIndex { position($0.sequence) > piece.start }
                ?? storage.stream(index, direction).pointee.pending.count
            storage.stream(index, direction).pointee.pending.insert(held, at: at)
            storage.stream(index, direction).pointee.pendingBytes += copied.count
            bufferedBytes += copied.count
            counters.peakBufferedBytes = max(counters.peakBufferedBytes, bufferedBytes)
        }
    }

    // MARK: entries

    private func find(_ key: FlowKey, hash: UInt64) -> Int? {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = slots[slot]
            if entry < 0 { return nil }
            if storage.base[Int(entry)].hash == hash, storage.base[Int(entry)].key == key { return Int(entry) }
            slot = (slot + 1) & mask
        }
    }

    /// The longest distance of an entry from its ideal slot: the cost of the worst lookup.
    /// For the tests: crafted keys must not share a probe chain. O(slots).
    public func longestProbeSequence() -> Int {
        var longest = 0
        for (slot, entry) in slots.enumerated() where entry >= 0 {
            longest = max(longest, (slot - Int(truncatingIfNeeded: storage.base[Int(entry)].hash)) & mask)
        }
        return longest
    }

    private func slotOf(_ index: Int) -> Int {
        var slot = Int(truncatingIfNeeded: storage.base[index].hash) & mask
        while slots[slot] != Int32(index) { slot = (slot + 1) & mask }
        return slot
    }

    private mutating func create(
        _ key: FlowKey,
        hash: UInt64,
        sourceIsLow: Bool,
        segment: TCPSegment,
        sink: inout Consumer.Sink
    ) -> Int {
        if storage.count >= limits.maximumFlows, oldest >= 0 {
            counters.flowsEvicted += 1
            finishAndRemove(Int(oldest), .evicted, sink: &sink)
        }
        if (storage.count + 1) * 2 > slots.count { grow() }
        let flags = segment.flags
        // A SYN-ACK seen first was sent by the responder.
        let fromResponder = flags.contains(.syn) && flags.contains(.ack)
        let originatorIsLow = fromResponder ? !sourceIsLow : sourceIsLow
        let source = Endpoint(address: segment.source, port: segment.sourcePort)
        let destination = Endpoint(address: segment.destination, port: segment.destinationPort)
        let sawSYN = flags.contains(.syn) && !flags.contains(.ack)
        let start = FlowStart(
            originator: fromResponder ? destination : source,
            responder: fromResponder ? source : destination,
            timestampNanos: segment.timestampNanos,
            sawSYN: sawSYN
        )
        let index = storage.count
        storage.append(
            FlowEntry(
                key: key,
                hash: hash,
                consumer: Consumer(start: start),
                lastSeen: segment.timestampNanos,
                originatorIsLow: originatorIsLow
            )
        )
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(index)
        linkNewest(index)
        counters.flows += 1
        if !sawSYN { counters.flowsWithoutSYN += 1 }
        counters.peakFlows = max(counters.peakFlows, storage.count)
        return index
    }

    private mutating func finishAndRemove(_ index: Int, _ reason: FlowEndReason, sink: inout Consumer.Sink) {
        if !storage.base[index].decided {
            // Bytes still held after a hole: declare the hole and hand them over.
            for direction in [FlowDirection.fromOriginator, .fromResponder] {
                while !storage.base[index].decided, storage.stream(index, direction).pointee.wanted,
                    !storage.stream(index, direction).pointee.pending.isEmpty
                {
                    jumpToPending(index, direction, sink: &sink)
                }
            }
        }
        if !storage.base[index].decided {
            storage.base[index].decided = true
            storage.base[index].consumer.finish(reason, at: now, sink: &sink)
        }
        remove(index)
    }

    /// Removes an entry: backward-shift deletion in the slot table, then the last entry
    /// moves into the freed place so the entry array stays dense.
    private mutating func remove(_ index: Int) {
        releasePending(index, .fromOriginator)
        releasePending(index, .fromResponder)
        heldBytes -= storage.base[index].heldBytes
        unlink(index)
        var hole = slotOf(index)
        var probe = hole
        while true {
            probe = (probe + 1) & mask
            let entry = slots[probe]
            if entry < 0 { break }
            let ideal = Int(truncatingIfNeeded: storage.base[Int(entry)].hash) & mask
            // Move the entry back unless its ideal slot lies cyclically in (hole, probe].
            let distanceToProbe = (probe - ideal) & mask
            let distanceToHole = (hole - ideal) & mask
            if distanceToHole < distanceToProbe {
                slots[hole] = entry
                hole = probe
            }
        }
        slots[hole] = -1
        let last = storage.count - 1
        if index != last {
            let lastSlot = slotOf(last)
            storage.moveLast(into: index)
            slots[lastSlot] = Int32(index)
            let newer = storage.base[index].newer
            let older = storage.base[index].older
            if newer >= 0 { storage.base[Int(newer)].older = Int32(index) } else { newest = Int32(index) }
            if older >= 0 { storage.base[Int(older)].newer = Int32(index) } else { oldest = Int32(index) }
        } else {
            storage.moveLast(into: index)
        }
    }

    private mutating func grow() {
        let capacity = slots.count * 2
        slots = [Int32](repeating: -1, count: capacity)
        mask = capacity - 1
        for index in 0..<storage.count {
            var slot = Int(truncatingIfNeeded: storage.base[index].hash) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(index)
        }
    }

    // MARK: least-recently-active list

    @inline(__always)
    private mutating func touch(_ index: Int) {
        storage.base[index].lastSeen = now
        if newest == Int32(index) { return }
        unlink(index)
        linkNewest(index)
    }

    private mutating func linkNewest(_ index: Int) {
        storage.base[index].older = newest
        storage.base[index].newer = -1
        if newest >= 0 { storage.base[Int(newest)].newer = Int32(index) }
        newest = Int32(index)
        if oldest < 0 { oldest = Int32(index) }
    }

    private mutating func unlink(_ index: Int) {
        let newer = storage.base[index].newer
        let older = storage.base[index].older
        if newer >= 0 { storage.base[Int(newer)].older = older } else { newest = older }
        if older >= 0 { storage.base[Int(older)].newer = newer } else { oldest = newer }
        storage.base[index].newer = -1
        storage.base[index].older = -1
    }
}
