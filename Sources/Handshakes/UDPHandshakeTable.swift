import Packets
import Reassembly

/// One handshake over UDP: what every such flow keeps, plus `state`, what its protocol adds
/// (DTLS decoders, QUIC CRYPTO streams and keys).
final class UDPHandshakeFlow<State> {
    let start: FlowStart
    var machine = HandshakeMachine()
    var state: State
    var sequence: Int?
    var lastSeen: Int64
    var responderTTL: UInt8?

    init(start: FlowStart, state: State) {
        self.start = start
        self.state = state
        lastSeen = start.timestampNanos
    }
}

/// The flows of one UDP handshake protocol (DTLS, QUIC), keyed by address and port pair.
/// A flow ends when its handshake is decided, after `idleTimeoutNanos` without datagrams, or
/// at the end of the input; past `maximumFlows` the least recently active one is finished.
struct UDPHandshakeTable<State> {
    static var maximumFlows: Int { 16_384 }
    /// DTLS retransmits within seconds (RFC 6347 4.2.4.1); QUIC's idle timeout is the peers' choice.
    static var idleTimeoutNanos: Int64 { 120 * 1_000_000_000 }
    /// How often idle flows are looked for, in capture time.
    static var expiryIntervalNanos: Int64 { 1_000_000_000 }

    private struct Key: Hashable {
        var originator: Endpoint
        var responder: Endpoint
    }

    /// The `transport` of the records.
    let transport: String
    private var flows: [Key: UDPHandshakeFlow<State>] = [:]
    private var lastExpiry: Int64 = 0
    /// Datagrams that belonged to a flow.
    private(set) var datagramsUsed = 0

    init(transport: String) { self.transport = transport }

    /// The flow `datagram` belongs to, with its direction (0 from the originator). When there
    /// is none, `opening` decides whether this datagram starts one and gives its state.
    mutating func flow(for datagram: UDPDatagram, sink: inout RecordSink,
                       opening: () -> State?) -> (flow: UDPHandshakeFlow<State>, stream: Int)? {
        let source = Endpoint(address: datagram.source, port: datagram.sourcePort)
        let destination = Endpoint(address: datagram.destination, port: datagram.destinationPort)
        if datagram.timestampNanos - lastExpiry > Self.expiryIntervalNanos {
            lastExpiry = datagram.timestampNanos
            if !flows.isEmpty { expire(at: datagram.timestampNanos, sink: &sink) }
        }
        let flow: UDPHandshakeFlow<State>, stream: Int
        if let forward = flows[Key(originator: source, responder: destination)] {
            (flow, stream) = (forward, 0)
        } else if let backward = flows[Key(originator: destination, responder: source)] {
            (flow, stream) = (backward, 1)
        } else if let state = opening() {
            if flows.count >= Self.maximumFlows, let oldest = flows.min(by: { $0.value.lastSeen < $1.value.lastSeen }) {
                finish(oldest.key, sink: &sink)
            }
            flow = UDPHandshakeFlow(start: FlowStart(originator: source, responder: destination,
                                                     timestampNanos: datagram.timestampNanos, sawSYN: true), state: state)
            flows[Key(originator: source, responder: destination)] = flow
            stream = 0
        } else {
            return nil
        }
        datagramsUsed += 1
        flow.lastSeen = datagram.timestampNanos
        flow.machine.now = datagram.timestampNanos
        if stream == 1, flow.responderTTL == nil { flow.responderTTL = datagram.timeToLive }
        return (flow, stream)
    }

    /// After a datagram was fed: numbers a new ClientHello's record, and finishes the flow when done.
    mutating func settle(_ flow: UDPHandshakeFlow<State>, hadClientHello: Bool, done: Bool, sink: inout RecordSink) {
        if !hadClientHello, flow.machine.hasClientHello { flow.sequence = sink.assignSequence() }
        if done { finish(Key(originator: flow.start.originator, responder: flow.start.responder), sink: &sink) }
    }

    /// Finishes flows without a datagram for `idleTimeoutNanos`.
    mutating func expire(at timestampNanos: Int64, sink: inout RecordSink) {
        for (key, flow) in flows where timestampNanos - flow.lastSeen > Self.idleTimeoutNanos {
            finish(key, sink: &sink)
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
        guard let sequence = flow.sequence,
              let record = flow.machine.makeRecord(start: flow.start, responderTraits: flow.responderTTL.map { ServerTraits(ttl: $0) },
                                                   fingerprints: sink.fingerprints, transport: transport) else { return }
        sink.complete(record, sequence: sequence)
    }
}
