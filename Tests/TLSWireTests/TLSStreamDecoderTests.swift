import TLSWire
import TestSupport
import Testing

/// Records events as short descriptions. After ChangeCipherSpec it treats handshake records
/// as ciphertext, as the Handshakes stage does for TLS 1.2.
struct EventRecorder: TLSEventHandler {
    var events: [String] = []
    var clientHellos: [ClientHello] = []
    var serverHellos: [ServerHello] = []
    /// The malformed events' errors, for their codes.
    var errors: [TLSWireError] = []
    var ciphertextAfterChangeCipherSpec = true

    mutating func handle(_ event: consuming TLSEvent, stream: Int) -> TLSDirective {
        switch event {
        case let .clientHello(hello):
            clientHellos.append(hello)
            events.append(
                "ClientHello sni=\(hello.serverName ?? "-") sid=\(hello.sessionID.count) "
                    + "ext=\(hello.extensionTypes.count)"
            )
        case let .serverHello(hello):
            serverHellos.append(hello)
            events.append(
                "ServerHello v=\(hello.negotiatedVersion) cipher=\(hello.cipherSuite.rawValue) "
                    + "hrr=\(hello.isHelloRetryRequest)"
            )
        case let .certificate(chain): events.append("Certificate \(chain.certificates.map(\.count))")
        case let .newSessionTicket(ticket):
            events.append("NewSessionTicket hint=\(ticket.lifetimeHint) len=\(ticket.ticket.count)")
        case let .handshake(type, length): events.append("Handshake \(type.rawValue) len=\(length)")
        case .changeCipherSpec:
            events.append("ChangeCipherSpec")
            return ciphertextAfterChangeCipherSpec ? .ciphertextFromHere : .proceed
        case let .alert(alert): events.append("Alert \(alert.level) \(alert.description)")
        case let .encryptedRecord(type, length): events.append("Encrypted \(type.rawValue) len=\(length)")
        case let .heartbeat(length): events.append("Heartbeat \(length)")
        case let .encryptedExtensions(extensions):
            events.append("EncryptedExtensions \(extensions.extensionTypes.count)")
        case .undecryptable: events.append("undecryptable")
        case let .sslv2ServerHello(hello): events.append("SSLv2ServerHello hit=\(hello.sessionIDHit)")
        case .notTLS: events.append("notTLS")
        case let .malformed(error):
            errors.append(error)
            events.append("malformed: \(error.reason)")
        case let .gap(kept): events.append("gap framingKept=\(kept)")
        }
        return .proceed
    }
}

func decode(_ bytes: [UInt8], chunks: [Int]? = nil) -> EventRecorder {
    var decoder = TLSStreamDecoder(streamTag: 0)
    var recorder = EventRecorder()
    var position = 0
    var sizes = chunks ?? [bytes.count]
    while position < bytes.count {
        let size = min(sizes.isEmpty ? bytes.count : sizes.removeFirst(), bytes.count - position)
        bytes[position..<(position + size)].withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        position += size
    }
    return recorder
}

/// Real byte streams: each direction of a recorded connection, reassembled by tshark.
struct RealStreams {
    static func stream(_ capture: String, _ index: Int) throws -> (client: [UInt8], server: [UInt8]) {
        try tsharkStreamBytes(Paths.captures.appendingPathComponent(capture).path, stream: index)
    }
}

@Suite(.enabled(if: toolAvailable("tshark"), "tshark is needed to extract real byte streams"))
struct RealStreamDecodingTests {
    static let cases: [(String, Int)] = [
        ("tls12-ticket.pcap", 0), ("tls12-ticket.pcap", 1), ("tls13-psk.pcap", 1), ("hrr.pcap", 0),
        ("legacy-versions.pcap", 2),
    ]

    /// The same events whether the stream arrives at once, byte by byte, or in uneven pieces
    /// that split records and handshake messages anywhere.
    @Test(arguments: cases.map { "\($0.0)#\($0.1)" })
    func chunkingDoesNotChangeEvents(_ name: String) throws {
        let parts = name.split(separator: "#")
        let (client, server) = try RealStreams.stream(String(parts[0]), Int(parts[1])!)
        #expect(!client.isEmpty && !server.isEmpty)
        for bytes in [client, server] {
            let whole = decode(bytes).events
            #expect(!whole.isEmpty)
            #expect(!whole.contains { $0.hasPrefix("malformed") }, "\(whole)")
            #expect(decode(bytes, chunks: Array(repeating: 1, count: bytes.count)).events == whole)
            var generator = SeededGenerator(seed: UInt64(bytes.count))
            let uneven = (0..<bytes.count).map { _ in Int.random(in: 1...700, using: &generator) }
            #expect(decode(bytes, chunks: uneven).events == whole)
        }
    }

    /// The fingerprint memo compares its keys with a hello in place: a real hello matches
    /// its own key, under its own transport tag only, and another hello's key exactly when the
    /// two keys are equal.
    @Test func fingerprintKeysCompareInPlace() throws {
        var hellos: [ClientHello] = []
        for (capture, index) in Self.cases {
            hellos += decode(try RealStreams.stream(capture, index).client).clientHellos
        }
        #expect(hellos.count >= Self.cases.count)
        for hello in hellos {
            for tag: UInt8 in [0, 1, 2] {
                let key = hello.fingerprintKey(tag: tag)
                #expect(hello.matchesFingerprintKey(key, tag: tag))
                #expect(!hello.matchesFingerprintKey(key, tag: tag ^ 1))
                for other in hellos {
                    #expect(other.matchesFingerprintKey(key, tag: tag) == (other.fingerprintKey(tag: tag) == key))
                }
            }
        }
    }

    @Test func tls12FullHandshakeMessages() throws {
        let (client, server) = try RealStreams.stream("tls12-ticket.pcap", 0)
        let clientEvents = decode(client).events
        #expect(clientEvents.first?.hasPrefix("ClientHello") == true)
        #expect(clientEvents.contains { $0.hasPrefix("Handshake 16") })  // ClientKeyExchange
        let serverEvents = decode(server).events
        // ServerHello, Certificate, ServerKeyExchange, ServerHelloDone, NewSessionTicket, CCS, encrypted Finished.
        #expect(serverEvents[0].hasPrefix("ServerHello v=TLSv1.2"))
        #expect(serverEvents[1].hasPrefix("Certificate"))
        #expect(serverEvents[2].hasPrefix("Handshake 12"))
        #expect(serverEvents[3] == "Handshake 14 len=0")
        #expect(serverEvents[4].hasPrefix("NewSessionTicket hint=7200"))
        #expect(serverEvents[5] == "ChangeCipherSpec")
        #expect(serverEvents[6].hasPrefix("Encrypted 22"))
    }

    @Test func tls13ClientHelloFields() throws {
        let (client, server) = try RealStreams.stream("tls13-psk.pcap", 1)
        let recorder = decode(client)
        let hello = try #require(recorder.clientHellos.first)
        #expect(hello.supportedVersions.contains(.tls1_3))
        #expect(hello.pskIdentities.count == 1 && hello.pskBinderCount == 1)
        #expect(hello.pskIdentities[0].obfuscatedTicketAge != 0)
        #expect(hello.pskKeyExchangeModes == [1])
        #expect(hello.extensionTypes.last == .preSharedKey)  // RFC 8446 4.2.11: last extension
        #expect(hello.sessionID.count == 32)
        let serverHello = try #require(decode(server).serverHellos.first)
        #expect(serverHello.selectedPSKIdentity == 0)
        #expect(serverHello.negotiatedVersion == .tls1_3 && serverHello.legacyVersion == .tls1_2)
        #expect(serverHello.sessionID == Array(hello.sessionID))  // compatibility-mode echo
    }

    /// `offersVersions` (read in place) says what the list built from the hello says: real
    /// TLS 1.3 and TLS 1.2 hellos, against their own lists and lists that differ.
    @Test func offeredVersionsComparedInPlace() throws {
        let tls13 = try #require(decode(try RealStreams.stream("tls13-psk.pcap", 1).client).clientHellos.first)
        let listed = tls13.supportedVersions.filter { !$0.isGREASE }
        #expect(listed.contains(.tls1_3))
        #expect(tls13.offersVersions(listed))
        #expect(!tls13.offersVersions(Array(listed.dropLast())))
        #expect(!tls13.offersVersions(listed + [.tls1_0]))
        if listed.count > 1 { #expect(!tls13.offersVersions(listed.reversed())) }
        #expect(!tls13.offersVersions([tls13.legacyVersion]))
        // No supported_versions: the legacy version alone is what it offers.
        let tls12 = try #require(decode(try RealStreams.stream("tls12-ticket.pcap", 0).client).clientHellos.first)
        if tls12.supportedVersions.isEmpty {
            #expect(tls12.offersVersions([tls12.legacyVersion]))
            #expect(!tls12.offersVersions([]))
            #expect(!tls12.offersVersions([tls12.legacyVersion, .tls1_3]))
        } else {
            #expect(tls12.offersVersions(tls12.supportedVersions.filter { !$0.isGREASE }))
        }
    }

    @Test func helloRetryRequestRandomIsRecognised() throws {
        let (client, server) = try RealStreams.stream("hrr.pcap", 0)
        // TLS 1.3 servers send a compatibility ChangeCipherSpec right after the
        // HelloRetryRequest (RFC 8446 D.4); handshake records after it are still plaintext.
        var serverRecorder = EventRecorder()
        serverRecorder.ciphertextAfterChangeCipherSpec = false
        var serverDecoder = TLSStreamDecoder(streamTag: 1)
        server.withUnsafeBytes { serverDecoder.feed($0, handler: &serverRecorder) }
        let serverHellos = serverRecorder.serverHellos
        #expect(serverHellos.count == 2)
        #expect(serverHellos[0].isHelloRetryRequest && !serverHellos[1].isHelloRetryRequest)
        // The client's compatibility ChangeCipherSpec comes before its second ClientHello (RFC 8446 D.4).
        var recorder = EventRecorder()
        recorder.ciphertextAfterChangeCipherSpec = false
        var decoder = TLSStreamDecoder(streamTag: 0)
        client.withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        #expect(recorder.clientHellos.count == 2)
    }
}

@Suite struct SSLv2CompatibleHelloTests {
    /// The SSL 2.0-compatible CLIENT-HELLO in Zeek's SSLv3 trace (real bytes).
    @Test(.enabled(if: Paths.peerCorpusPresent && toolAvailable("tshark"), "needs ../shared/peer-corpus and tshark"))
    func sslv2HelloFromZeekTrace() throws {
        let path = Paths.peerCorpus.appendingPathComponent("zeek/traces/tls__ssl.v3.pcap").path
        let (client, _) = try tsharkStreamBytes(path, stream: 0)
        let recorder = decode(client)
        let hello = try #require(recorder.clientHellos.first)
        #expect(hello.isSSLv2Compatible)
        #expect(hello.random.count == 32 && !hello.cipherSuites.isEmpty)
        #expect(decode(client, chunks: Array(repeating: 1, count: client.count)).events == recorder.events)
    }
}

/// Deterministic pseudo-random chunk sizes.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9e37_79b9_7f4a_7c15 }
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state ^ (state >> 29)
    }
}
