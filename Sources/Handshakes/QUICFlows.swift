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

    /// The stream from offset `base` on that is not yet whole messages, or not yet parsed.
    private var bytes: [UInt8] = []
    private var base = 0
    private var parsed = 0
    private var pending: [(offset: Int, data: [UInt8])] = []

    /// Bytes held (for memory accounting).
    var bufferedBytes: Int { bytes.capacity + pending.reduce(0) { $0 + $1.data.count } }

    /// `protected`: the stream of Handshake or 1-RTT packets, whose messages have TLS 1.3's
    /// protected layouts (EncryptedExtensions, Certificate, NewSessionTicket).
    mutating func add<H: TLSEventHandler>(
        offset: Int,
        data: UnsafeRawBufferPointer,
        stream: Int,
        protected: Bool = false,
        handler: inout H
    ) {
        guard offset + data.count <= CryptoStream.maximumBytes else { return }
        let end = base + bytes.count
        if offset > end {
            if pending.count < CryptoStream.maximumPendingFrames { pending.append((offset, Array(data))) }
            return
        }
        if bytes.isEmpty, offset == end, pending.isEmpty {
            // The frame continues the stream where whole messages ended (a ClientHello in
            // one Initial): read it in place, and keep only a message it leaves unfinished.
            let used = Self.parseMessages(data, stream: stream, protected: protected, handler: &handler)
            base += used
            if used < data.count { bytes.append(contentsOf: data[used...]) }
            return
        }
        if offset + data.count > end { bytes.append(contentsOf: data[(end - offset)...]) }
        var merged = true
        while merged {
            merged = false
            for (index, frame) in pending.enumerated() where frame.offset <= base + bytes.count {
                if frame.offset + frame.data.count > base + bytes.count {
                    bytes.append(contentsOf: frame.data[(base + bytes.count - frame.offset)...])
                }
                pending.remove(at: index)
                merged = true
                break
            }
        }
        parsed += bytes.withUnsafeBytes { all in
            Self.parseMessages(
                UnsafeRawBufferPointer(rebasing: all[parsed...]),
                stream: stream,
                protected: protected,
                handler: &handler
            )
        }
    }

    /// Hands on the whole messages at the start of `buffer` (uint8 type, uint24 length,
    /// body; RFC 8446 4); returns the bytes they took.
    private static func parseMessages<H: TLSEventHandler>(
        _ buffer: UnsafeRawBufferPointer,
        stream: Int,
        protected: Bool,
        handler: inout H
    ) -> Int {
        var used = 0
        while buffer.count - used >= 4 {
            let length = Int(buffer[used + 1]) << 16 | Int(buffer[used + 2]) << 8 | Int(buffer[used + 3])
            guard buffer.count - used >= 4 + length else { break }
            var body = ByteCursor(UnsafeRawBufferPointer(rebasing: buffer[(used + 4)..<(used + 4 + length)]))
            let event = TLSEvent.decodingMessage(HandshakeType(rawValue: buffer[used]), &body, protected: protected)
            used += 4 + length
            _ = handler.handle(event, stream: stream)
        }
        return used
    }
}

/// QUIC v1 and v2 connections (RFC 9000, RFC 9001, RFC 9369): a flow per address and port
/// pair, opened by a client Initial packet that decrypts. The hellos come from the Initial
/// packets' CRYPTO frames; Handshake and 1-RTT packets of both sides show the handshake
/// completed.
struct QUICFlows {
    /// What a QUIC flow adds: its two CRYPTO streams and the Initial keys' connection ID.
    struct State: UDPFlowState {
        var heldBytes: Int {
            client.bufferedBytes + server.bufferedBytes
                + (server13.map { $0.handshakeCrypto.bufferedBytes + $0.applicationCrypto.bufferedBytes + 256 } ?? 0)
        }

        var client = CryptoStream()
        var server = CryptoStream()
        /// The connection ID both sides' Initial keys come from: the Destination Connection ID
        /// of the client's first Initial, or the one a Retry gave it (RFC 9001 5.2). Later
        /// client Initials may carry the server's connection ID but keep these keys.
        var keysConnectionID: QUICConnectionID {
            didSet { (clientKeys, serverKeys) = (nil, nil) }
        }
        /// A client accepts one Retry per connection (RFC 9000 17.2.5.2): only the first
        /// changes the keys.
        var retried = false
        /// The Initial keys of each direction, derived once per connection ID (two fields,
        /// not an array: a flow opened by one Initial then allocates nothing for them).
        var clientKeys: (version: QUICVersion, keys: QUICInitialKeys)?
        var serverKeys: (version: QUICVersion, keys: QUICInitialKeys)?

        init(keysConnectionID: QUICConnectionID) { self.keysConnectionID = keysConnectionID }

        /// Read with a key log (RFC 9001 5.1): the server's Handshake and 1-RTT packets, once
        /// its ServerHello names a connection the key log has.
        @OutOfLine var server13: ServerProtected?
        /// The Source Connection ID length of the client's Initial: the server's short header
        /// packets carry that ID as their destination (RFC 9000 17.3.1).
        var clientConnectionIDLength: Int?
        /// The key log was asked, after the server's ServerHello.
        var keysLookedUp = false

        /// This direction's keys for `version`, from the flow's own or the shared cache.
        mutating func keys(_ version: QUICVersion, fromClient: Bool, cache: inout QUICKeyCache) -> QUICInitialKeys? {
            if let known = fromClient ? clientKeys : serverKeys, known.version == version { return known.keys }
            guard
                let derived = cache.keys(
                    version: version,
                    destinationConnectionID: keysConnectionID,
                    server: !fromClient
                )
            else { return nil }
            if fromClient { clientKeys = (version, derived) } else { serverKeys = (version, derived) }
            return derived
        }
    }

    /// One side's protected packets, as a key log opens them: per packet number space the
    /// keys, the largest packet number opened (RFC 9000 A.3), and the CRYPTO stream.
    struct ServerProtected {
        var version: QUICVersion
        var handshakeKeys: QUICPacketKeys
        var applicationKeys: QUICPacketKeys?
        var largestHandshake: Int64 = -1
        var largestApplication: Int64 = -1
        var handshakeCrypto = CryptoStream()
        var applicationCrypto = CryptoStream()
    }

    private var table: UDPHandshakeTable<State>

    init(maximumHeldBytes: Int) { table = UDPHandshakeTable(transport: .quic, maximumHeldBytes: maximumHeldBytes) }
    /// Initial keys by connection ID, shared by flows: a flood of Initials that name the same
    /// connection ID from fresh ports derives its keys once.
    private var keyCache = QUICKeyCache()
    /// The decrypted Initial payloads of the datagram being handled: one buffer for all
    /// datagrams (at most a datagram's size), not an array per packet.
    private var plaintextBuffer: [UInt8] = []
    /// The packets of the datagram being handled (at most
    /// `QUICDatagram.maximumPacketsPerDatagram`), likewise.
    private var packetBuffer: [QUICLongPacket] = []

    var datagramsUsed: Int { table.datagramsUsed }

    /// Handles a datagram that belongs to QUIC; false when it does not.
    mutating func handle(_ datagram: UDPDatagram, sink: inout RecordSink) -> Bool {
        var plaintext: [UInt8] = []
        swap(&plaintext, &plaintextBuffer)
        plaintext.removeAll(keepingCapacity: true)
        var packets: [QUICLongPacket] = []
        swap(&packets, &packetBuffer)
        packets.removeAll(keepingCapacity: true)
        defer {
            swap(&plaintext, &plaintextBuffer)
            swap(&packets, &packetBuffer)
        }
        // Set when the datagram opened a flow: its packets are then decrypted once, there.
        var opened = false
        guard
            let (flow, stream) = table.flow(
                for: datagram,
                sink: &sink,
                opening: {
                    // Only a client Initial that decrypts with its own DCID's keys opens a flow.
                    guard QUICDatagram.startsWithInitial(datagram.payload) else { return nil }
                    QUICDatagram.packets(datagram.payload, plaintext: &plaintext, appendingTo: &packets) {
                        version,
                        destination in
                        keyCache.keys(version: version, destinationConnectionID: destination, server: false)
                    }
                    guard case let .initial(_, firstDestination, _, _) = packets.first else { return nil }
                    opened = true
                    return State(keysConnectionID: firstDestination)
                }
            )
        else {
            noteUnreadVersion(datagram, sink: &sink)
            return false
        }
        let fromClient = stream == 0
        let hadClientHello = flow.machine.hasClientHello
        // Key logs open the server's Handshake and 1-RTT packets (RFC 9001 5.1).
        if flow.machine.keyLogStore == nil, !sink.keyLogStore.keyLog.isEmpty {
            flow.machine.keyLogStore = sink.keyLogStore
        }
        if datagram.payload.first.map({ $0 & 0x80 == 0 }) ?? false {
            packets.append(.shortHeader(start: 0))
        } else if !opened {
            QUICDatagram.packets(datagram.payload, plaintext: &plaintext, appendingTo: &packets) { version, _ in
                flow.state.keys(version, fromClient: fromClient, cache: &keyCache)
            }
        }
        for packet in packets {
            switch packet {
            case let .initial(version, _, source, payload):
                if fromClient, flow.state.clientConnectionIDLength == nil {
                    flow.state.clientConnectionIDLength = source.count
                }
                let framesRead = plaintext.withUnsafeBytes { all in
                    QUICDatagram.cryptoFrames(UnsafeRawBufferPointer(rebasing: all[payload])) { offset, data in
                        if fromClient {
                            flow.state.client.add(offset: offset, data: data, stream: stream, handler: &flow.machine)
                        } else {
                            flow.state.server.add(offset: offset, data: data, stream: stream, handler: &flow.machine)
                        }
                    }
                }
                guard framesRead != nil else {
                    _ = flow.machine.handle(
                        .malformed(TLSWireError(.unexpectedMessage, "QUIC Initial with a frame not allowed there")),
                        stream: stream
                    )
                    continue
                }
                if !fromClient, !flow.state.keysLookedUp, let secrets = flow.machine.serverTrafficSecrets {
                    flow.state.keysLookedUp = true
                    if let handshake = QUICPacketKeys(version: version, suite: secrets.suite, secret: secrets.handshake)
                    {
                        flow.state.server13 = ServerProtected(
                            version: version,
                            handshakeKeys: handshake,
                            applicationKeys: secrets.application.flatMap {
                                QUICPacketKeys(version: version, suite: secrets.suite, secret: $0)
                            }
                        )
                    }
                }
            case let .retry(_, sourceConnectionID) where !fromClient:
                // The client's next Initial goes to this ID, under keys derived from it (RFC 9001 5.2);
                // a later Retry is discarded by the client (RFC 9000 17.2.5.2), and passed over here.
                if flow.state.retried {
                    sink.quicRetryIgnored()
                } else {
                    flow.state.retried = true
                    flow.state.keysConnectionID = sourceConnectionID
                }
            case let .protected(version, type, range, packetNumberOffset) where type == (version == .v2 ? 3 : 2):
                // A Handshake packet: the handshake goes on under keys only a key log gives.
                if !fromClient, flow.state.server13 != nil {
                    openServerPacket(
                        UnsafeRawBufferPointer(rebasing: datagram.payload[range]),
                        packetNumberOffset: packetNumberOffset,
                        handshake: true,
                        flow: flow
                    )
                }
                _ = flow.machine.handle(.encryptedRecord(.applicationData, length: 0), stream: stream)
            case let .shortHeader(start):
                // A 1-RTT packet: application data (RFC 9000 17.3), and the server's tickets.
                if !fromClient, flow.state.server13?.applicationKeys != nil,
                    let length = flow.state.clientConnectionIDLength
                {
                    openServerPacket(
                        UnsafeRawBufferPointer(rebasing: datagram.payload[start...]),
                        packetNumberOffset: 1 + length,
                        handshake: false,
                        flow: flow
                    )
                }
                _ = flow.machine.handle(
                    .encryptedRecord(.applicationData, length: datagram.payload.count - start),
                    stream: stream
                )
            default:
                break
            }
        }
        table.settle(flow, hadClientHello: hadClientHello, done: flow.machine.decided, sink: &sink)
        return true
    }

    /// Opens one of the server's Handshake or 1-RTT packets with the key log's keys and hands
    /// its CRYPTO frames' messages to the machine (RFC 9001 4.1.3, 5). A packet that does not
    /// open (another key phase, corruption) is passed over; keys that open none of the
    /// server's Handshake packets are wrong, and reading with them ends.
    private func openServerPacket(
        _ packet: UnsafeRawBufferPointer,
        packetNumberOffset: Int,
        handshake: Bool,
        flow: UDPHandshakeFlow<State>
    ) {
        guard var protected = flow.state.server13,
            let keys = handshake ? protected.handshakeKeys : protected.applicationKeys
        else { return }
        let largest = handshake ? protected.largestHandshake : protected.largestApplication
        guard
            let (payload, number) = QUICDatagram.open(
                packet,
                packetNumberOffset: packetNumberOffset,
                keys: keys,
                largest: largest
            )
        else {
            if handshake, protected.largestHandshake < 0 {
                flow.state.server13 = nil
                _ = flow.machine.handle(.undecryptable, stream: 1 - (flow.machine.clientStream ?? 0))
            }
            return
        }
        let stream = 1 - (flow.machine.clientStream ?? 0)
        let framesRead = payload.withUnsafeBytes { all in
            QUICDatagram.cryptoFrames(all, everyFrameType: !handshake) { offset, data in
                if handshake {
                    protected.handshakeCrypto.add(
                        offset: offset,
                        data: data,
                        stream: stream,
                        protected: true,
                        handler: &flow.machine
                    )
                } else {
                    protected.applicationCrypto.add(
                        offset: offset,
                        data: data,
                        stream: stream,
                        protected: true,
                        handler: &flow.machine
                    )
                }
            }
        }
        guard framesRead != nil else { return }
        if handshake {
            protected.largestHandshake = max(protected.largestHandshake, number)
        } else {
            protected.largestApplication = max(protected.largestApplication, number)
        }
        flow.state.server13 = protected
    }

    /// Conversations that opened with a QUIC long header of a version not read, each counted
    /// once while `maximumUnreadVersionFlows` are remembered (then each datagram).
    private var unreadVersionFlows = Set<Int>()
    static let maximumUnreadVersionFlows = 4096

    /// A client's first datagram is padded to 1200 bytes (RFC 9000 14.1); a long header
    /// (RFC 8999 5.1) of a version other than v1, v2 and version negotiation (0) is QUIC
    /// this does not read (drafts, Google's QUIC).
    private mutating func noteUnreadVersion(_ datagram: UDPDatagram, sink: inout RecordSink) {
        let payload = datagram.payload
        guard payload.count >= 1200, payload[0] & 0xc0 == 0xc0 else { return }
        let version = payload.loadUnaligned(fromByteOffset: 1, as: UInt32.self).bigEndian
        guard version != 0, version != QUICVersion.v1.rawValue, version != QUICVersion.v2.rawValue else { return }
        var hasher = Hasher()
        hasher.combine(datagram.source.high)
        hasher.combine(datagram.source.low)
        hasher.combine(datagram.sourcePort)
        hasher.combine(datagram.destination.high)
        hasher.combine(datagram.destination.low)
        hasher.combine(datagram.destinationPort)
        let flow = hasher.finalize()
        if unreadVersionFlows.contains(flow) { return }
        if unreadVersionFlows.count < Self.maximumUnreadVersionFlows { unreadVersionFlows.insert(flow) }
        sink.quicVersionNotRead(at: datagram.timestampNanos) {
            datagram.source.endpoint(port: datagram.sourcePort) + " > "
                + datagram.destination.endpoint(port: datagram.destinationPort)
        }
    }

    mutating func expire(at timestampNanos: Int64, sink: inout RecordSink) {
        table.expire(at: timestampNanos, sink: &sink)
    }
    mutating func finishAll(sink: inout RecordSink) { table.finishAll(sink: &sink) }
}

/// Initial keys derived lately, for flows that open with a connection ID seen before (a
/// client moved to a new port, copies of one Initial): derived once per connection ID, as
/// long as the entry stays. Direct-mapped: each ID has one slot, chosen by a keyed hash
/// (`KeyedHash`), so a crafted capture cannot aim IDs at one slot, and a miss costs one
/// comparison. A flood of Initials each under its own ID (as real clients send them) missed
/// a dictionary of 1,024 entries every time, inserting and evicting: 13% of its run.
struct QUICKeyCache {
    /// Slots: enough for the handshakes in flight at once.
    static let capacity = 1024

    /// Each slot keeps the keys' bytes (`QUICInitialKeys.Material`, 48 bytes), not the keys
    /// set up for use (about a kilobyte each): a flood of Initials under new connection IDs
    /// wrote a cold kilobyte per packet, 10% of its run.
    private var slots: [(key: QUICInitialKeys.ID, material: QUICInitialKeys.Material)?] = []
    /// The keys asked for last, set up for use, compared before the slot is hashed: a
    /// client's Initials and a flood of copies of one Initial name the same connection ID.
    /// When the next connection ID differs, these keys are set up again in place unless a
    /// flow holds them.
    private var last: (key: QUICInitialKeys.ID, keys: QUICInitialKeys)?

    mutating func keys(
        version: QUICVersion,
        destinationConnectionID: QUICConnectionID,
        server: Bool
    ) -> QUICInitialKeys? {
        let key = QUICInitialKeys.ID(version: version, connectionID: destinationConnectionID, server: server)
        if let last, last.key == key { return last.keys }
        if slots.isEmpty { slots = Array(repeating: nil, count: Self.capacity) }
        let slot = Self.slot(of: key)
        let material: QUICInitialKeys.Material
        if let known = slots[slot], known.key == key {
            material = known.material
        } else {
            guard let derived = key.material else { return nil }
            slots[slot] = (key, derived)
            material = derived
        }
        if var reused = last.take()?.keys, reused.rekey(material) {
            last = (key, reused)
            return reused
        }
        guard let keys = QUICInitialKeys(material) else { return nil }
        last = (key, keys)
        return keys
    }

    /// A keyed hash of the ID: a peer cannot choose connection IDs that share a slot.
    private static func slot(of key: QUICInitialKeys.ID) -> Int {
        let words = key.connectionID.packedWords
        let hash = KeyedHash.hash(
            words.0,
            words.1,
            words.2,
            UInt64(key.connectionID.count) | UInt64(key.version.rawValue) << 8 | (key.server ? 1 << 40 : 0),
            0
        )
        return Int(truncatingIfNeeded: hash) & (capacity - 1)
    }
}
