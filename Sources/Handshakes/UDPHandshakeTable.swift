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
    var newer: UDPHandshakeFlow?
    var older: UDPHandshakeFlow?
    let key: UDPFlowKey
    /// What the flow held when last counted (`UDPHandshakeTable.settle`).
    var heldBytes = 0

    init(start: FlowStart, state: State) {
        self.start = start
        self.state = state
        lastSeen = start.timestampNanos
        key = UDPFlowKey(start.originator, start.responder)
    }
}

/// A UDP flow's address and port pair in a fixed order, the same for both directions (one
/// lookup finds a flow whichever side sent), hashed with Swift's seeded SipHash in the table.
struct UDPFlowKey: Hashable {
    var low: Endpoint
    var high: Endpoint

    /// Five words into the seeded hash (the synthesized hash feeds it eight values, four of
    /// them one or two bytes long: a flood of new flows hashes each key about three times).
    func hash(into hasher: inout Hasher) {
        hasher.combine(low.address.high)
        hasher.combine(low.address.low)
        hasher.combine(high.address.high)
        hasher.combine(high.address.low)
        hasher.combine(
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

    private typealias Key = UDPFlowKey

    /// The `transport` of the records.
    let transport: Transport
    private var flows: [Key: UDPHandshakeFlow<State>] = [:]
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
            if !flows.isEmpty { expire(at: datagram.timestampNanos, sink: &sink) }
        }
        let flow: UDPHandshakeFlow<State>
        let stream: Int
        let key = Key(source, destination)
        if let known = flows[key] {
            (flow, stream) = (known, known.start.originator == source ? 0 : 1)
        } else if let state = opening() {
            if flows.count >= Self.maximumFlows, let oldest {
                sink.udpFlowEvicted()
                finish(oldest.key, sink: &sink)
            }
            flow = UDPHandshakeFlow(
                start: FlowStart(
                    originator: source,
                    responder: destination,
                    timestampNanos: datagram.timestampNanos,
                    sawSYN: true
                ),
                state: consume state
            )
            // At most half full: a linear-probing delete re-hashes the run of keys after
            // the hole, about six keys at three quarters full (Swift's most).
            if flows.capacity < 2 * (flows.count + 1) { flows.reserveCapacity(4 * (flows.count + 1)) }
            flows[flow.key] = flow
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
            finish(flow.key, sink: &sink)
            return
        }
        let held = Self.flowBytes + flow.state.heldBytes + (flow.machine.clientHello?.retainedBytes ?? 0)
        heldBytes += held - flow.heldBytes
        flow.heldBytes = held
        while heldBytes > maximumHeldBytes, let oldest, oldest !== flow {
            sink.udpFlowEvicted()
            finish(oldest.key, sink: &sink)
        }
    }

    /// Finishes flows without a datagram for `idleTimeoutNanos`.
    mutating func expire(at timestampNanos: Int64, sink: inout RecordSink) {
        while let flow = oldest, timestampNanos - flow.lastSeen > Self.idleTimeoutNanos {
            finish(flow.key, sink: &sink)
        }
    }

    /// Finishes every flow, in order of first datagram, so records come out as for TCP.
    mutating func finishAll(sink: inout RecordSink) {
        for (key, _) in flows.sorted(by: { $0.value.start.timestampNanos < $1.value.start.timestampNanos }) {
            finish(key, sink: &sink)
        }
    }

    private mutating func finish(_ key: Key, sink: inout RecordSink) {
        guard let flow = flows.removeValue(forKey: key) else { return }
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
