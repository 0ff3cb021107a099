import Packets
import Reassembly
import TLSWire

/// DTLS over UDP (RFC 6347, RFC 9147): a flow per address and port pair, opened by a datagram
/// that carries a DTLS ClientHello, with a handshake machine and a decoder per direction.
/// A flow ends when its handshake is decided, after `idleTimeoutNanos` without datagrams,
/// or at the end of the input.
struct DatagramFlows {
    /// Open DTLS flows; past this the least recently active one is finished.
    static let maximumFlows = 16_384
    /// A DTLS handshake retransmits within seconds (RFC 6347 4.2.4.1: 1 s, doubling to 60 s).
    static let idleTimeoutNanos: Int64 = 120 * 1_000_000_000
    /// How often idle flows are looked for, in capture time.
    static let expiryIntervalNanos: Int64 = 1_000_000_000

    private struct Key: Hashable {
        var originator: Endpoint
        var responder: Endpoint
    }

    private final class Flow {
        let start: FlowStart
        var machine = HandshakeMachine()
        var decoders = [DTLSDecoder(streamTag: 0), DTLSDecoder(streamTag: 1)]
        var sequence: Int?
        var lastSeen: Int64
        var responderTTL: UInt8?

        init(start: FlowStart) {
            self.start = start
            lastSeen = start.timestampNanos
        }
    }

    private var flows: [Key: Flow] = [:]
    private var lastExpiry: Int64 = 0
    /// Datagrams that belonged to a DTLS flow.
    private(set) var datagramsUsed = 0

    mutating func handle(_ datagram: UDPDatagram, sink: inout RecordSink) {
        let source = Endpoint(address: datagram.source, port: datagram.sourcePort)
        let destination = Endpoint(address: datagram.destination, port: datagram.destinationPort)
        if datagram.timestampNanos - lastExpiry > DatagramFlows.expiryIntervalNanos {
            lastExpiry = datagram.timestampNanos
            if !flows.isEmpty { expire(at: datagram.timestampNanos, sink: &sink) }
        }
        let key: Key, stream: Int
        if flows[Key(originator: source, responder: destination)] != nil {
            (key, stream) = (Key(originator: source, responder: destination), 0)
        } else if flows[Key(originator: destination, responder: source)] != nil {
            (key, stream) = (Key(originator: destination, responder: source), 1)
        } else if DTLSDecoder.startsWithClientHello(datagram.payload) {
            if flows.count >= DatagramFlows.maximumFlows, let oldest = flows.min(by: { $0.value.lastSeen < $1.value.lastSeen }) {
                finish(oldest.key, sink: &sink)
            }
            key = Key(originator: source, responder: destination)
            stream = 0
            flows[key] = Flow(start: FlowStart(originator: source, responder: destination,
                                               timestampNanos: datagram.timestampNanos, sawSYN: true))
        } else {
            return
        }
        let flow = flows[key]!
        datagramsUsed += 1
        flow.lastSeen = datagram.timestampNanos
        flow.machine.now = datagram.timestampNanos
        if stream == 1, flow.responderTTL == nil { flow.responderTTL = datagram.timeToLive }
        let hadClientHello = flow.machine.hasClientHello
        flow.decoders[stream].feed(datagram.payload, handler: &flow.machine)
        if !hadClientHello, flow.machine.hasClientHello { flow.sequence = sink.assignSequence() }
        if flow.machine.decided || (flow.decoders[0].isStopped && flow.decoders[1].isStopped) {
            finish(key, sink: &sink)
        }
    }

    /// Finishes flows without a datagram for `idleTimeoutNanos`.
    mutating func expire(at timestampNanos: Int64, sink: inout RecordSink) {
        for (key, flow) in flows where timestampNanos - flow.lastSeen > DatagramFlows.idleTimeoutNanos {
            finish(key, sink: &sink)
        }
    }

    mutating func finishAll(sink: inout RecordSink) {
        // In order of first datagram, so records come out as for TCP.
        for (key, _) in flows.sorted(by: { $0.value.start.timestampNanos < $1.value.start.timestampNanos }) {
            finish(key, sink: &sink)
        }
    }

    private mutating func finish(_ key: Key, sink: inout RecordSink) {
        guard let flow = flows.removeValue(forKey: key) else { return }
        guard let sequence = flow.sequence,
              let record = flow.machine.makeRecord(start: flow.start, responderTraits: flow.responderTTL.map { ServerTraits(ttl: $0) },
                                                   fingerprints: sink.fingerprints, transport: "udp") else { return }
        sink.complete(record, sequence: sequence)
    }
}
