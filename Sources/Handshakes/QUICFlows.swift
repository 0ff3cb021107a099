import Packets
import Reassembly
import TLSWire

/// The CRYPTO stream of one direction's Initial packets (RFC 9000 19.6): frames put back in
/// order, whole handshake messages handed on.
struct CryptoStream {
    /// Bytes kept per direction: the Initial packets carry only the hellos (RFC 9001 4.1.4).
    static let maximumBytes = 64 * 1024
    /// Frames held ahead of a hole.
    static let maximumPendingFrames = 32

    private var bytes: [UInt8] = []
    private var parsed = 0
    private var pending: [(offset: Int, data: [UInt8])] = []

    mutating func add<H: TLSEventHandler>(offset: Int, data: [UInt8], stream: Int, handler: inout H) {
        guard offset + data.count <= CryptoStream.maximumBytes else { return }
        if offset > bytes.count {
            if pending.count < CryptoStream.maximumPendingFrames { pending.append((offset, data)) }
            return
        }
        if offset + data.count > bytes.count { bytes.append(contentsOf: data[(bytes.count - offset)...]) }
        var merged = true
        while merged {
            merged = false
            for (index, frame) in pending.enumerated() where frame.offset <= bytes.count {
                if frame.offset + frame.data.count > bytes.count { bytes.append(contentsOf: frame.data[(bytes.count - frame.offset)...]) }
                pending.remove(at: index)
                merged = true
                break
            }
        }
        // Whole messages: uint8 type, uint24 length, body (RFC 8446 4).
        while bytes.count - parsed >= 4 {
            let length = Int(bytes[parsed + 1]) << 16 | Int(bytes[parsed + 2]) << 8 | Int(bytes[parsed + 3])
            guard bytes.count - parsed >= 4 + length else { break }
            let type = HandshakeType(rawValue: bytes[parsed])
            let event: TLSEvent = bytes.withUnsafeBytes { all in
                var body = ByteCursor(UnsafeRawBufferPointer(rebasing: all[(parsed + 4)..<(parsed + 4 + length)]))
                return TLSEvent.decodingMessage(type, &body)
            }
            parsed += 4 + length
            _ = handler.handle(event, stream: stream)
        }
    }
}

/// QUIC v1 and v2 connections (RFC 9000, RFC 9001, RFC 9369): a flow per address and port
/// pair, opened by a client Initial packet that decrypts. The hellos come from the Initial
/// packets' CRYPTO frames; Handshake and 1-RTT packets of both sides show the handshake
/// completed.
struct QUICFlows {
    /// What a QUIC flow adds: its two CRYPTO streams and the Initial keys' connection ID.
    struct State {
        var client = CryptoStream()
        var server = CryptoStream()
        /// The connection ID both sides' Initial keys come from: the Destination Connection ID
        /// of the client's first Initial, or the one a Retry gave it (RFC 9001 5.2). Later
        /// client Initials may carry the server's connection ID but keep these keys.
        var keysConnectionID: [UInt8]
    }

    private var table = UDPHandshakeTable<State>(transport: "quic")

    var datagramsUsed: Int { table.datagramsUsed }

    /// Handles a datagram that belongs to QUIC; false when it does not.
    mutating func handle(_ datagram: UDPDatagram, sink: inout RecordSink) -> Bool {
        guard let (flow, stream) = table.flow(for: datagram, sink: &sink, opening: {
            // Only a client Initial that decrypts with its own DCID's keys opens a flow.
            guard QUICDatagram.startsWithInitial(datagram.payload),
                  case let .initial(_, firstDestination, _, _) = QUICDatagram.packets(datagram.payload, keys: {
                      QUICInitialKeys(version: $0, destinationConnectionID: $1, server: false)
                  }).first else { return nil }
            return State(keysConnectionID: firstDestination)
        }) else { return false }
        let fromClient = stream == 0
        let hadClientHello = flow.machine.hasClientHello
        if datagram.payload.first.map({ $0 & 0x80 == 0 }) ?? false {
            // A short header (1-RTT) packet: application data (RFC 9000 17.3).
            _ = flow.machine.handle(.encryptedRecord(.applicationData, length: datagram.payload.count), stream: stream)
        } else {
            let packets = QUICDatagram.packets(datagram.payload) { version, _ in
                QUICInitialKeys(version: version, destinationConnectionID: flow.state.keysConnectionID, server: !fromClient)
            }
            for packet in packets {
                switch packet {
                case let .initial(_, _, _, payload):
                    guard let (frames, _) = QUICDatagram.cryptoFrames(payload) else {
                        _ = flow.machine.handle(.malformed(.malformed("QUIC Initial with a frame not allowed there")), stream: stream)
                        continue
                    }
                    for frame in frames {
                        if fromClient { flow.state.client.add(offset: frame.offset, data: frame.data, stream: stream, handler: &flow.machine) }
                        else { flow.state.server.add(offset: frame.offset, data: frame.data, stream: stream, handler: &flow.machine) }
                    }
                case let .retry(_, sourceConnectionID) where !fromClient:
                    // The client's next Initial goes to this ID, under keys derived from it (RFC 9001 5.2).
                    flow.state.keysConnectionID = sourceConnectionID
                case let .protected(version, type) where type == (version == .v2 ? 3 : 2):
                    // A Handshake packet: the handshake goes on under keys an observer lacks.
                    _ = flow.machine.handle(.encryptedRecord(.applicationData, length: 0), stream: stream)
                default:
                    break
                }
            }
        }
        table.settle(flow, hadClientHello: hadClientHello, done: flow.machine.decided, sink: &sink)
        return true
    }

    mutating func expire(at timestampNanos: Int64, sink: inout RecordSink) { table.expire(at: timestampNanos, sink: &sink) }
    mutating func finishAll(sink: inout RecordSink) { table.finishAll(sink: &sink) }
}
