import Packets
import Reassembly
import TLSWire

/// DTLS over UDP (RFC 6347, RFC 9147): a flow per address and port pair, opened by a datagram
/// that carries a DTLS ClientHello, with a handshake machine and a decoder per direction.
/// A flow ends when its handshake is decided, after `idleTimeoutNanos` without datagrams,
/// or at the end of the input.
struct DatagramFlows {
    private var table: UDPHandshakeTable<[DTLSDecoder]>

    init(maximumHeldBytes: Int) { table = UDPHandshakeTable(transport: .udp, maximumHeldBytes: maximumHeldBytes) }

    /// Datagrams that belonged to a DTLS flow.
    var datagramsUsed: Int { table.datagramsUsed }

    mutating func handle(_ datagram: UDPDatagram, sink: inout RecordSink) {
        guard
            let (flow, stream) = table.flow(
                for: datagram,
                sink: &sink,
                opening: {
                    DTLSDecoder.startsWithClientHello(datagram.payload)
                        ? [DTLSDecoder(streamTag: 0), DTLSDecoder(streamTag: 1)] : nil
                }
            )
        else { return }
        let hadClientHello = flow.machine.hasClientHello
        flow.state[stream].feed(datagram.payload, handler: &flow.machine)
        table.settle(
            flow,
            hadClientHello: hadClientHello,
            done: flow.machine.decided || (flow.state[0].isStopped && flow.state[1].isStopped),
            sink: &sink
        )
    }

    mutating func expire(at timestampNanos: Int64, sink: inout RecordSink) {
        table.expire(at: timestampNanos, sink: &sink)
    }
    mutating func finishAll(sink: inout RecordSink) { table.finishAll(sink: &sink) }
}

extension Array: UDPFlowState where Element == DTLSDecoder {
    var heldBytes: Int { reduce(0) { $0 + $1.bufferedBytes } }
}
