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
    static let maximumFlows = 16_384
    static let idleTimeoutNanos: Int64 = 120 * 1_000_000_000
    static let expiryIntervalNanos: Int64 = 1_000_000_000

    private struct Key: Hashable {
        var client: Endpoint
        var server: Endpoint
    }

    private final class Flow {
        let start: FlowStart
        var machine = HandshakeMachine()
        var client = CryptoStream()
        var server = CryptoStream()
        var sequence: Int?
        var lastSeen: Int64
        var serverTTL: UInt8?
        /// The connection ID both sides' Initial keys come from: the Destination Connection ID of
        /// the client's first Initial, or the one a Retry gave it (RFC 9001 5.2). Later client
        /// Initials may carry the server's connection ID but keep these keys.
        var keysConnectionID: [UInt8] = []
        var version = QUICVersion.v1

        init(start: FlowStart) {
            self.start = start
            lastSeen = start.timestampNanos
        }
    }

    private var flows: [Key: Flow] = [:]
    private var lastExpiry: Int64 = 0
    private(set) var datagramsUsed = 0

    /// Handles a datagram that belongs to QUIC; false when it does not.
    mutating func handle(_ datagram: UDPDatagram, sink: inout RecordSink) -> Bool {
        let source = Endpoint(address: datagram.source, port: datagram.sourcePort)
        let destination = Endpoint(address: datagram.destination, port: datagram.destinationPort)
        if datagram.timestampNanos - lastExpiry > QUICFlows.expiryIntervalNanos {
            lastExpiry = datagram.timestampNanos
            if !flows.isEmpty { expire(at: datagram.timestampNanos, sink: &sink) }
        }
        let key: Key, fromClient: Bool
        if flows[Key(client: source, server: destination)] != nil {
            (key, fromClient) = (Key(client: source, server: destination), true)
        } else if flows[Key(client: destination, server: source)] != nil {
            (key, fromClient) = (Key(client: destination, server: source), false)
        } else if QUICDatagram.startsWithInitial(datagram.payload) {
            // Only a client Initial that decrypts with its own DCID's keys opens a flow.
            let packets = QUICDatagram.packets(datagram.payload) { QUICInitialKeys(version: $0, destinationConnectionID: $1, server: false) }
            guard case let .initial(_, firstDestination, _, _) = packets.first else { return false }
            if flows.count >= QUICFlows.maximumFlows, let oldest = flows.min(by: { $0.value.lastSeen < $1.value.lastSeen }) {
                finish(oldest.key, sink: &sink)
            }
            key = Key(client: source, server: destination)
            fromClient = true
            let flow = Flow(start: FlowStart(originator: source, responder: destination, timestampNanos: datagram.timestampNanos, sawSYN: true))
            flow.keysConnectionID = firstDestination
            flows[key] = flow
        } else {
            return false
        }
        let flow = flows[key]!
        datagramsUsed += 1
        flow.lastSeen = datagram.timestampNanos
        flow.machine.now = datagram.timestampNanos
        if !fromClient, flow.serverTTL == nil { flow.serverTTL = datagram.timeToLive }
        let hadClientHello = flow.machine.hasClientHello
        let stream = fromClient ? 0 : 1
        if datagram.payload.first.map({ $0 & 0x80 == 0 }) ?? false {
            // A short header (1-RTT) packet: application data (RFC 9000 17.3).
            _ = flow.machine.handle(.encryptedRecord(.applicationData, length: datagram.payload.count), stream: stream)
        } else {
            let packets = QUICDatagram.packets(datagram.payload) { version, _ in
                QUICInitialKeys(version: version, destinationConnectionID: flow.keysConnectionID, server: !fromClient)
            }
            for packet in packets {
                switch packet {
                case let .initial(version, _, _, payload):
                    if fromClient { flow.version = version }
                    guard let (frames, _) = QUICDatagram.cryptoFrames(payload) else {
                        _ = flow.machine.handle(.malformed(.malformed("QUIC Initial with a frame not allowed there")), stream: stream)
                        continue
                    }
                    for frame in frames {
                        if fromClient { flow.client.add(offset: frame.offset, data: frame.data, stream: stream, handler: &flow.machine) }
                        else { flow.server.add(offset: frame.offset, data: frame.data, stream: stream, handler: &flow.machine) }
                    }
                case let .retry(_, sourceConnectionID) where !fromClient:
                    // The client's next Initial goes to this ID, under keys derived from it (RFC 9001 5.2).
                    flow.keysConnectionID = sourceConnectionID
                case let .protected(version, type) where type == (version == .v2 ? 3 : 2):
                    // A Handshake packet: the handshake goes on under keys an observer lacks.
                    _ = flow.machine.handle(.encryptedRecord(.applicationData, length: 0), stream: stream)
                default:
                    break
                }
            }
        }
        if !hadClientHello, flow.machine.hasClientHello { flow.sequence = sink.assignSequence() }
        if flow.machine.decided { finish(key, sink: &sink) }
        return true
    }

    mutating func expire(at timestampNanos: Int64, sink: inout RecordSink) {
        for (key, flow) in flows where timestampNanos - flow.lastSeen > QUICFlows.idleTimeoutNanos {
            finish(key, sink: &sink)
        }
    }

    mutating func finishAll(sink: inout RecordSink) {
        for (key, _) in flows.sorted(by: { $0.value.start.timestampNanos < $1.value.start.timestampNanos }) {
            finish(key, sink: &sink)
        }
    }

    private mutating func finish(_ key: Key, sink: inout RecordSink) {
        guard let flow = flows.removeValue(forKey: key) else { return }
        guard let sequence = flow.sequence,
              let record = flow.machine.makeRecord(start: flow.start, responderTraits: flow.serverTTL.map { ServerTraits(ttl: $0) },
                                                   fingerprints: sink.fingerprints, transport: "quic") else { return }
        sink.complete(record, sequence: sequence)
    }
}
