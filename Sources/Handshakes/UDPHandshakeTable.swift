import CHints
import Packets
import Reassembly

/// What a UDP handshake protocol keeps per flow, with the bytes it holds.
protocol UDPFlowState {
    var heldBytes: Int { get }
}

/// One handshake over UDP: what every such flow keeps, plus `state`, what its protocol adds
/// (DTLS decoders, QUIC CRYPTO streams and keys).
final class UDPHandshakeFlow<State: UDPFlowState> {
    let start: FlowStart
    var machine = HandshakeMachine()
    var state: State
    var sequence: Int?
    var lastSeen: Int64
    var responderTTL: UInt8?
    /// The least-recently-active list (`UDPHandshakeTable`): toward the newest and the oldest.
    var newer: UDPHandshakeFlow? {
        didSet { newerAddress = newer.map { UnsafeRawPointer(Unmanaged.passUnretained($0).toOpaque()) } }
    }
    var older: UDPHandshakeFlow?
    /// Where `newer` is, for a prefetch hint: reading `newer` itself would retain it, and so
    /// touch the cold object before the hint could help.
    private(set) var newerAddress: UnsafeRawPointer?
    let key: UDPFlowKey
    /// `key.hash()`, computed once when the flow's first datagram was looked up.
    let hash: UInt64
    /// What the flow held when last counted (`UDPHandshakeTable.settle`).
    var heldBytes = 0

    init(start: FlowStart, state: State, key: UDPFlowKey, hash: UInt64) {
        self.start = start
        self.state = state
        lastSeen = start.timestampNanos
        self.key = key
        self.hash = hash
    }
}

/// A UDP flow's address and port pair in a fixed order, the same for both directions (one
/// lookup finds a flow whichever side sent).
struct UDPFlowKey: Equatable {
    var low: Endpoint
    var high: Endpoint

    /// SipHash-1-3 with the process's random key (`KeyedHash`) over five words, so a crafted
    /// capture cannot choose flows that share a probe chain. Computed once per datagram: the
    /// lookup, the insertion and the removal all use it.
    func hash() -> UInt64 {
        KeyedHash.hash(
            low.address.high,
            low.address.low,
            high.address.high,
            high.address.low,
            UInt64(low.port) | UInt64(high.port) << 16 | (low.address.isIPv6 ? 1 << 32 : 0)
                | (high.address.isIPv6 ? 1 << 33 : 0)
        )
    }

    init(_ a: Endpoint, _ b: Endpoint) {
        let aFirst =
            (a.address.isIPv6 ? 1 : 0, a.address.high, a.address.low, a.port)
            <= (b.address.isIPv6 ? 1 : 0, b.address.high, b.address.low, b.port)
        (low, high) = aFirst ? (a, b) : (b, a)
    }
}

/// The flows of one UDP handshake protocol (DTLS, QUIC), keyed by address and port pair.
/// A flow ends when its handshake is decided, after `idleTimeoutNanos` without datagrams, or
/// at the end of the input; past `maximumFlows` the least recently active one is finished.
/// Flows sit in a list by last activity, so eviction and idle expiry cost O(1) per flow
/// finished, however many flows are open. Past `maximumHeldBytes` in all (a fixed part per
/// flow, and what its decoders hold), the least recently active flows are finished early.
struct UDPHandshakeTable<State: UDPFlowState> {
    /// What a flow costs beyond its buffers: the object, its handshake machine, the hellos.
    static var flowBytes: Int { 4096 }
    static var maximumFlows: Int { 16_384 }
    /// DTLS retransmits within seconds (RFC 6347 4.2.4.1); QUIC's idle timeout is the peers' choice.
    static var idleTimeoutNanos: Int64 { 120 * 1_000_000_000 }
    /// How often idle flows are looked for, in capture time.
    static var expiryIntervalNanos: Int64 { 1_000_000_000 }

    /// The `transport` of the records.
    let transport: Transport
    /// Open addressing with linear probing, at most half full, keyed by the flow's `hash`:
    /// one hash per datagram, where a Dictionary hashed the key for the lookup, again for
    /// the insertion and again for the removal.
    private var slots: [UDPHandshakeFlow<State>?] = Array(repeating: nil, count: 64)
    /// Each slot's flow's hash, beside it: a probe and the backward shift read these, not
    /// the flows, which in a flood are cold in the cache.
    private var slotHashes = [UInt64](repeating: 0, count: 64)
    private var mask = 63
    private var flowCount = 0
    private var newest: UDPHandshakeFlow<State>?
    private var oldest: UDPHandshakeFlow<State>?
    private var lastExpiry: Int64 = 0
    /// Datagrams that belonged to a flow.
    private(set) var datagramsUsed = 0
    private let maximumHeldBytes: Int
    /// The sum of the flows' `heldBytes`.
    private var heldBytes = 0

    init(transport: Transport, maximumHeldBytes: Int) {
        self.transport = transport
        self.maximumHeldBytes = maximumHeldBytes
    }

    /// The flow `datagram` belongs to, with its direction (0 from the originator). When there
    /// is none, `opening` decides whether this datagram starts one and gives its state.
    mutating func flow(
        for datagram: UDPDatagram,
        sink: inout RecordSink,
        opening: () -> State?
    ) -> (flow: UDPHandshakeFlow<State>, stream: Int)? {
        let source = Endpoint(address: datagram.source, port: datagram.sourcePort)
        let destination = Endpoint(address: datagram.destination, port: datagram.destinationPort)
        if datagram.timestampNanos - lastExpiry > Self.expiryIntervalNanos {
            lastExpiry = datagram.timestampNanos
            if flowCount > 0 { expire(at: datagram.timestampNanos, sink: &sink) }
        }
        let flow: UDPHandshakeFlow<State>
        let stream: Int
        let key = UDPFlowKey(source, destination)
        let hash = key.hash()
        if let known = find(key, hash: hash) {
            (flow, stream) = (known, known.start.originator == source ? 0 : 1)
        } else if let state = opening() {
            if flowCount >= Self.maximumFlows, let oldest {
                sink.udpFlowEvicted()
                finish(oldest, sink: &sink)
                prefetchNextEvictions()
            }
            flow = UDPHandshakeFlow(
                start: FlowStart(
                    originator: source,
                    responder: destination,
                    timestampNanos: datagram.timestampNanos,
                    sawSYN: true
                ),
                state: consume state,
                key: key,
                hash: hash
            )
            insert(flow)
            sink.udpFlowOpened()
            stream = 0
        } else {
            return nil
        }
        datagramsUsed += 1
        touch(flow)
        flow.lastSeen = datagram.timestampNanos
        flow.machine.now = datagram.timestampNanos
        if stream == 1, flow.responderTTL == nil { flow.responderTTL = datagram.timeToLive }
        return (flow, stream)
    }

    /// After a datagram was fed: numbers a new ClientHello's record, and finishes the flow when done.
    mutating func settle(_ flow: UDPHandshakeFlow<State>, hadClientHello: Bool, done: Bool, sink: inout RecordSink) {
        if !hadClientHello, flow.machine.hasClientHello { flow.sequence = sink.assignSequence() }
        if done {
            finish(flow, sink: &sink)
            return
        }
        let held = Self.flowBytes + flow.state.heldBytes + (flow.machine.clientHello?.retainedBytes ?? 0)
        heldBytes += held - flow.heldBytes
        flow.heldBytes = held
        while heldBytes > maximumHeldBytes, let oldest, oldest !== flow {
            sink.udpFlowEvicted()
            finish(oldest, sink: &sink)
            prefetchNextEvictions()
        }
    }

    /// What a flow object spans, about: its fields, the machine and the protocol's state.
    private static var objectBytes: Int {
        64 + MemoryLayout<FlowStart>.size + MemoryLayout<HandshakeMachine>.size + MemoryLayout<State>.size
    }

    /// In a flood, flows leave oldest first, a packet apart, each cold in the cache by then.
    /// After one leaves, loading starts for the next two: the next one's hello (its address
    /// is in that flow's object, loaded by the last call) and the one after's object.
    private func prefetchNextEvictions() {
        guard let next = oldest else { return }
        if let hello = next.machine.clientHelloAddress {
            for offset in stride(from: 0, to: 512, by: 64) { tlsreuse_prefetch(hello + offset) }
        }
        guard let object = next.newerAddress else { return }
        for offset in stride(from: 0, to: Self.objectBytes, by: 64) { tlsreuse_prefetch(object + offset) }
    }

    /// Finishes flows without a datagram for `idleTimeoutNanos`.
    mutating func expire(at timestampNanos: Int64, sink: inout RecordSink) {
        while let flow = oldest, timestampNanos - flow.lastSeen > Self.idleTimeoutNanos {
            finish(flow, sink: &sink)
        }
    }

    /// Finishes every flow, in order of first datagram, so records come out as for TCP.
    mutating func finishAll(sink: inout RecordSink) {
        for flow in slots.compactMap({ $0 }).sorted(by: { $0.start.timestampNanos < $1.start.timestampNanos }) {
            finish(flow, sink: &sink)
        }
    }

    private mutating func finish(_ flow: UDPHandshakeFlow<State>, sink: inout RecordSink) {
        guard remove(flow) else { return }
        unlink(flow)
        heldBytes -= flow.heldBytes
        guard let sequence = flow.sequence else {
            sink.udpFlowWithoutClientHello(flow.start)
            return
        }
        guard
            let record = flow.machine.makeRecord(
                start: flow.start,
                responderTraits: flow.responderTTL.map { ServerTraits(ttl: $0) },
                fingerprints: sink.fingerprints,
                transport: transport
            )
        else { return }
        sink.complete(record, sequence: sequence)
    }

    // MARK: the table

    private func find(_ key: UDPFlowKey, hash: UInt64) -> UDPHandshakeFlow<State>? {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != nil {
            if slotHashes[slot] == hash, let flow = slots[slot], flow.key == key { return flow }
            slot = (slot + 1) & mask
        }
        return nil
    }

    private mutating func insert(_ flow: UDPHandshakeFlow<State>) {
        if 2 * (flowCount + 1) > slots.count { grow() }
        var slot = Int(truncatingIfNeeded: flow.hash) & mask
        while slots[slot] != nil { slot = (slot + 1) & mask }
        slots[slot] = flow
        slotHashes[slot] = flow.hash
        flowCount += 1
    }

    /// Backward-shift deletion: the entries after the hole that may move back do, so no
    /// tombstone is left and lookups stay as short as at insertion.
    /// False when the flow is not in the table.
    private mutating func remove(_ flow: UDPHandshakeFlow<State>) -> Bool {
        var hole = Int(truncatingIfNeeded: flow.hash) & mask
        while slots[hole] != nil, slots[hole] !== flow { hole = (hole + 1) & mask }
        guard slots[hole] != nil else { return false }
        var probe = hole
        while true {
            probe = (probe + 1) & mask
            if slots[probe] == nil { break }
            let ideal = Int(truncatingIfNeeded: slotHashes[probe]) & mask
            // Move the entry back unless its ideal slot lies cyclically in (hole, probe].
            if (hole - ideal) & mask < (probe - ideal) & mask {
                slots.swapAt(hole, probe)
                slotHashes[hole] = slotHashes[probe]
                hole = probe
            }
        }
        slots[hole] = nil
        flowCount -= 1
        return true
    }

    private mutating func grow() {
        let flows = slots.compactMap { $0 }
        slots = Array(repeating: nil, count: slots.count * 2)
        slotHashes = Array(repeating: 0, count: slots.count)
        mask = slots.count - 1
        for flow in flows {
            var slot = Int(truncatingIfNeeded: flow.hash) & mask
            while slots[slot] != nil { slot = (slot + 1) & mask }
            slots[slot] = flow
            slotHashes[slot] = flow.hash
        }
    }

    /// The longest distance of a flow from its ideal slot: the cost of the worst lookup.
    /// For the tests: crafted flows must not share a probe chain. O(slots).
    func longestProbeSequence() -> Int {
        var longest = 0
        for (slot, flow) in slots.enumerated() {
            if let flow { longest = max(longest, (slot - Int(truncatingIfNeeded: flow.hash)) & mask) }
        }
        return longest
    }

    /// Moves `flow` to the newest end of the activity list.
    private mutating func touch(_ flow: UDPHandshakeFlow<State>) {
        if newest === flow { return }
        unlink(flow)
        flow.older = newest
        newest?.newer = flow
        newest = flow
        if oldest == nil { oldest = flow }
    }

    /// Takes `flow` out of the activity list, so no reference to it is left there.
    private mutating func unlink(_ flow: UDPHandshakeFlow<State>) {
        if let newer = flow.newer { newer.older = flow.older } else if newest === flow { newest = flow.older }
        if let older = flow.older { older.newer = flow.newer } else if oldest === flow { oldest = flow.newer }
        flow.newer = nil
        flow.older = nil
    }
}
