import Reassembly
import TLSWire

/// Follows one connection's TLS handshake from the events of both directions and decides
/// the outcome. Stream tags: 0 from the flow's originator, 1 from its responder.
///
/// Resumption rules (these are where other tools differ, so they are spelled out):
/// - TLS 1.2 and earlier: resumed when the server's flight after ServerHello reaches
///   ChangeCipherSpec (possibly after NewSessionTicket) with no Certificate,
///   ServerKeyExchange, CertificateRequest or ServerHelloDone (RFC 5246 7.3, RFC 5077 3.1).
///   When the capture ends after the ServerHello, an echo of a non-empty client session ID
///   decides (RFC 5246 7.4.1.3).
/// - TLS 1.3 and its drafts: resumed only when the ServerHello carries pre_shared_key
///   (RFC 8446 2.2, 4.2.11). The session ID echo is middlebox compatibility mode
///   (RFC 8446 D.4) and means nothing. An external PSK is not a resumption.
struct HandshakeMachine: TLSEventHandler {
    /// Capture time of the bytes being decoded, set before each feed.
    var now: Int64 = 0

    private(set) var clientStream: Int?
    private(set) var clientHello: ClientHello? {
        didSet { clientHelloAddress = clientHello?.bodyLocation.address }
    }
    /// Where the ClientHello's bytes are, for a prefetch hint only (`UDPHandshakeTable`): the
    /// flow's hello is read when it leaves, cold by then in a flood.
    private(set) var clientHelloAddress: UnsafeRawPointer?
    private(set) var clientHelloTime: Int64 = 0
    private var serverHello: ServerHello?
    private var serverHelloTime: Int64 = 0
    private var sawHelloRetryRequest = false
    private var sslv2Server: SSLv2ServerHello?
    /// Certificate, ServerKeyExchange, CertificateRequest or ServerHelloDone from the server.
    private var fullHandshakeMessage = false
    private var certificateChain: [[UInt8]] = []
    private var ticket: NewSessionTicket?
    private var clientChangeCipherSpec = false
    private var serverChangeCipherSpec = false
    private var clientEncrypted = false
    private var serverEncrypted = false
    private var lastAlert: Alert?
    private var fatalAlert = false
    private var malformed: TLSWireError?
    private var gaps = 0
    private var gapBeforeClientHello = false
    /// Nothing more can change the record.
    private(set) var decided = false
    /// A TLS server message came with no ClientHello before it.
    private(set) var sawServerMessageFirst = false

    // TLS 1.3 read with a key log
    /// Secrets from key logs (`--keylog`, pcapng secrets blocks).
    var keyLogStore: KeyLogStore?
    /// The server's protected records are being opened with the key log's secrets.
    private var decrypting = false
    /// A protected record of the server's opened.
    private var decryptedAnything = false
    private var issuedTickets: [IssuedTicket] = []
    private var earlyDataAccepted: Bool?
    /// The server's protected records seen, and the one that brought the last ticket: the
    /// server is read until a record after its tickets (RFC 8446 4.6.1: tickets may come at
    /// any time after the handshake; servers send them right after it).
    private var serverProtectedRecords = 0
    private var lastTicketRecord = 0
    /// Tickets kept per connection (OpenSSL sends two by default).
    static let maximumTicketsKept = 8
    /// The server's handshake messages read from protected records, by type.
    private var protectedMessages: [UInt8] = []
    /// Protected message types kept: a handshake flight, tickets and a few key updates.
    static let maximumProtectedMessagesKept = 16

    // TLS 1.2 read with a key log's master secret (renegotiations)
    /// Per stream tag: its records after ChangeCipherSpec are being opened, and that ended
    /// (a record that did not open, or the decoder's limit).
    private var tls12Reading = (false, false)
    private var tls12Ended = (false, false)
    /// When the first direction began to be read so.
    private var tls12SinceNanos: Int64 = 0
    /// Some direction is being read so (`readingTLS12`, kept as a stored flag).
    private var tls12Active = false
    /// The renegotiation whose handshake is being read, and those read.
    @OutOfLine private var renegotiation: RenegotiationInProgress?
    private var renegotiations: [Renegotiation] = []
    /// Renegotiations kept per connection.
    static let maximumRenegotiationsKept = 8

    struct RenegotiationInProgress {
        var startNanos: Int64
        var clientRandom: [UInt8]
        var offeredSessionID: String
        var offeredTicketDigest: String?
        var serverRandom: [UInt8]?
        var serverSessionID: String?
        var suite: CipherSuite?
        var full = false
        var ticket: NewSessionTicket?
        var clientChangeCipherSpec = false
        var serverChangeCipherSpec = false

        var finished: Renegotiation {
            Renegotiation(
                timestampNanos: startNanos,
                resumed: clientChangeCipherSpec && serverChangeCipherSpec ? !full : nil,
                offeredSessionID: offeredSessionID,
                offeredTicketDigest: offeredTicketDigest,
                serverSessionID: serverSessionID,
                issuedTicketDigest: ticket.flatMap { $0.ticket.isEmpty ? nil : shortDigest($0.ticket) },
                ticketLifetimeHint: ticket?.lifetimeHint
            )
        }
    }

    /// Whether `stream`'s records are being opened with a TLS 1.2 master secret: what it
    /// says now is a renegotiation's.
    private func readsTLS12(_ stream: Int) -> Bool {
        stream == 0 ? tls12Reading.0 && !tls12Ended.0 : tls12Reading.1 && !tls12Ended.1
    }

    /// Reading with a master secret goes on in some direction.
    private var readingTLS12: Bool { readsTLS12(0) || readsTLS12(1) }

    /// The keys that open `fromClient`'s records after its ChangeCipherSpec: from the key log's
    /// master secret for `clientRandom` (RFC 5246 6.3), when it has one and the suite is an
    /// AEAD this reads.
    private func tls12Keys(
        clientRandom: [UInt8],
        serverRandom: [UInt8],
        suite: CipherSuite,
        fromClient: Bool
    ) -> TLS12Decryption? {
        guard let keyLog = keyLogStore?.keyLog, !keyLog.isEmpty, let random = ClientRandom(clientRandom),
            let master = keyLog.secrets(for: random)?.masterSecret,
            let reader = TLS12RecordReader(
                suite: suite,
                masterSecret: master.bytes,
                clientRandom: clientRandom,
                serverRandom: serverRandom,
                fromClient: fromClient
            )
        else { return nil }
        return TLS12Decryption(reader)
    }

    private mutating func finishRenegotiation() {
        guard let current = renegotiation.take() else { return }
        if renegotiations.count < Self.maximumRenegotiationsKept { renegotiations.append(current.finished) }
    }

    /// An event from `stream`'s protected TLS 1.2 records; what is not a renegotiation's goes
    /// the usual way.
    private mutating func tls12Event(_ event: borrowing TLSEvent, stream: Int, fromClient: Bool) -> TLSDirective? {
        switch copy event {
        case .clientHello, .serverHello, .certificate, .handshake, .newSessionTicket:
            return renegotiationEvent(copy event, fromClient: fromClient)
        case .changeCipherSpec:
            return renegotiationChangeCipherSpec(fromClient: fromClient, stream: stream)
        case .undecryptable:
            return tls12ReadingEnded(stream)
        default:
            return nil
        }
    }

    /// A handshake event from `stream`'s protected TLS 1.2 records: part of a renegotiation.
    private mutating func renegotiationEvent(_ event: consuming TLSEvent, fromClient: Bool) -> TLSDirective {
        // Opened with the master secret (a direction's Finished comes first).
        decryptedAnything = true
        switch consume event {
        case let .clientHello(hello) where fromClient:
            finishRenegotiation()
            renegotiation = RenegotiationInProgress(
                startNanos: now,
                clientRandom: Array(hello.random),
                offeredSessionID: hexString(hello.sessionID),
                offeredTicketDigest: hello.sessionTicket.flatMap { $0.isEmpty ? nil : shortDigest($0) }
            )
        case let .serverHello(hello) where !fromClient:
            renegotiation?.serverRandom = hello.random
            renegotiation?.serverSessionID = hello.sessionID.map(hexString)
            renegotiation?.suite = hello.cipherSuite
        case .certificate where !fromClient:
            renegotiation?.full = true
        case let .handshake(type, _) where !fromClient:
            if [HandshakeType.serverKeyExchange, .certificateRequest, .serverHelloDone].contains(type) {
                renegotiation?.full = true
            }
        case let .newSessionTicket(issued) where !fromClient:
            renegotiation?.ticket = issued
        default:
            break
        }
        return .proceed
    }

    /// The renegotiation's ChangeCipherSpec, read from `fromClient`'s protected records: its
    /// records go on under the renegotiated keys, when the key log has them.
    private mutating func renegotiationChangeCipherSpec(fromClient: Bool, stream: Int) -> TLSDirective {
        if fromClient {
            renegotiation?.clientChangeCipherSpec = true
        } else {
            renegotiation?.serverChangeCipherSpec = true
        }
        if let current = renegotiation, let serverRandom = current.serverRandom, let suite = current.suite,
            let keys = tls12Keys(
                clientRandom: current.clientRandom,
                serverRandom: serverRandom,
                suite: suite,
                fromClient: fromClient
            )
        {
            if current.clientChangeCipherSpec && current.serverChangeCipherSpec { finishRenegotiation() }
            return .decryptTLS12FromHere(keys)
        }
        if let current = renegotiation, current.clientChangeCipherSpec && current.serverChangeCipherSpec {
            finishRenegotiation()
        }
        return tls12ReadingEnded(stream)
    }

    /// `stream` is no longer read with a master secret; once neither is, the record is decided.
    private mutating func tls12ReadingEnded(_ stream: Int) -> TLSDirective {
        if stream == 0 { tls12Ended.0 = true } else { tls12Ended.1 = true }
        tls12Active = readingTLS12
        if !readingTLS12, clientChangeCipherSpec && serverChangeCipherSpec { decided = !fatalAlert }
        return .stop
    }

    /// Notes a handshake message of the server's read from a protected record.
    private mutating func protectedMessage(_ type: HandshakeType, fromClient: Bool) {
        guard decrypting, !fromClient, protectedMessages.count < Self.maximumProtectedMessagesKept else { return }
        protectedMessages.append(type.rawValue)
    }

    /// Still reading the server's protected records for tickets, within the decoder's bound.
    private var awaitingTickets: Bool {
        decrypting && (issuedTickets.isEmpty || serverProtectedRecords <= lastTicketRecord)
            && serverProtectedRecords < TLS13Decryption.maximumRecords
    }

    /// Whether `clientHello` holds one, kept beside it: asking the optional, through the class
    /// that holds the machine, copied the whole hello and destroyed the copy.
    private(set) var hasClientHello = false

    /// The stream was TLS, but bytes were lost before a whole ClientHello was seen.
    var lostClientHelloToGap: Bool { !hasClientHello && gapBeforeClientHello }

    private var negotiatedVersion: ProtocolVersion? { serverHello?.negotiatedVersion }
    private var isTLS13: Bool { negotiatedVersion?.isTLS13Family ?? false }

    mutating func handle(_ event: consuming TLSEvent, stream: Int) -> TLSDirective {
        let fromClient = clientStream == stream
        // A stored flag, so connections without a master secret pay one test per event.
        if tls12Active {
            if now &- tls12SinceNanos > TLS12Decryption.maximumReadNanos {
                // Renegotiations come early or not at all: the connection is not held longer.
                tls12Ended = (true, true)
                tls12Active = false
                if clientChangeCipherSpec && serverChangeCipherSpec { decided = !fatalAlert }
                return .stop
            }
            if readsTLS12(stream), let directive = tls12Event(event, stream: stream, fromClient: fromClient) {
                return directive
            }
        }
        switch consume event {
        case let .clientHello(hello):
            if clientStream == nil {
                clientStream = stream
                clientHello = consume hello
                hasClientHello = true
                clientHelloTime = now
            }
            // A second ClientHello after HelloRetryRequest keeps the first one's offers.
            return .proceed
        case let .serverHello(hello):
            guard let clientStream, clientStream != stream else { return noClientHello(stream) }
            if hello.isHelloRetryRequest {
                sawHelloRetryRequest = true
                return .proceed
            }
            if serverHello == nil {
                serverHello = hello
                serverHelloTime = now
                if let keys = protectedRecordKeys(hello) {
                    decrypting = true
                    return .decryptFromHere(keys)
                }
            }
            return .proceed
        case let .sslv2ServerHello(hello):
            guard clientStream != nil, !fromClient else { return noClientHello(stream) }
            sslv2Server = hello
            decided = true
            return .stop
        case let .certificate(chain):
            guard clientStream != nil else { return noClientHello(stream) }
            protectedMessage(.certificate, fromClient: fromClient)
            if !fromClient {
                if decrypting { decryptedAnything = true }
                fullHandshakeMessage = true
                if certificateChain.isEmpty { certificateChain = chain.certificates }
            }
            return .proceed
        case let .newSessionTicket(issued):
            guard clientStream != nil, !fromClient else { return .proceed }
            protectedMessage(.newSessionTicket, fromClient: fromClient)
            if let ageAdd = issued.ticketAgeAdd {
                // TLS 1.3, read from a protected record.
                decryptedAnything = true
                // Heard before the record that carried it is counted (`encryptedRecord`).
                lastTicketRecord = serverProtectedRecords + 1
                if issuedTickets.count < HandshakeMachine.maximumTicketsKept {
                    issuedTickets.append(
                        IssuedTicket(
                            digest: shortDigest(issued.ticket),
                            keyName: ticketKeyName(issued.ticket),
                            lifetime: issued.lifetimeHint,
                            ageAdd: ageAdd,
                            maxEarlyData: issued.maxEarlyData
                        )
                    )
                }
            } else if ticket == nil {
                ticket = issued
            }
            return .proceed
        case let .encryptedExtensions(extensions):
            protectedMessage(.encryptedExtensions, fromClient: fromClient)
            if clientStream != nil, !fromClient {
                decryptedAnything = true
                earlyDataAccepted = extensions.earlyDataAccepted
            }
            return .proceed
        case .undecryptable:
            decrypting = false
            if clientEncrypted && serverEncrypted { decided = true }
            return isTLS13 ? .stop : .proceed
        case let .handshake(type, _):
            guard clientStream != nil else { return noClientHello(stream) }
            protectedMessage(type, fromClient: fromClient)
            if !fromClient, [HandshakeType.serverKeyExchange, .certificateRequest, .serverHelloDone].contains(type) {
                fullHandshakeMessage = true
            }
            return .proceed
        case .changeCipherSpec:
            guard clientStream != nil else { return noClientHello(stream) }
            if fromClient { clientChangeCipherSpec = true } else { serverChangeCipherSpec = true }
            // TLS 1.3 sends ChangeCipherSpec only for middlebox compatibility (RFC 8446 D.4),
            // possibly before the second ClientHello; before ServerHello the version is open.
            guard let serverHello, !isTLS13 else { return .proceed }
            // With the key log's master secret the records after it open: a renegotiation
            // may follow (RFC 5246 7.4.1.1).
            if let store = keyLogStore, !store.keyLog.isEmpty, let clientHello,
                let keys = tls12Keys(
                    clientRandom: Array(clientHello.random),
                    serverRandom: serverHello.random,
                    suite: serverHello.cipherSuite,
                    fromClient: fromClient
                )
            {
                if !tls12Active { tls12SinceNanos = now }
                if stream == 0 { tls12Reading.0 = true } else { tls12Reading.1 = true }
                tls12Active = true
                return .decryptTLS12FromHere(keys)
            }
            if stream == 0 { tls12Ended.0 = true } else { tls12Ended.1 = true }
            if clientChangeCipherSpec && serverChangeCipherSpec && !tls12Active { decided = !fatalAlert }
            // Everything after ChangeCipherSpec is ciphertext (RFC 5246 7.1): nothing more to read here.
            return .stop
        case let .alert(alert):
            lastAlert = alert
            if alert.isFatal {
                fatalAlert = true
                decided = true
                return .stop
            }
            return .proceed
        case let .encryptedRecord(type, _):
            guard clientStream != nil else { return noClientHello(stream) }
            guard serverHello != nil, type == .applicationData else { return .proceed }
            // 0-RTT data sent before the ServerHello arrived does not count (RFC 8446 2.3).
            if fromClient {
                guard now >= serverHelloTime else { return .proceed }
                clientEncrypted = true
            } else {
                serverEncrypted = true
                serverProtectedRecords += 1
            }
            if clientEncrypted && serverEncrypted && !awaitingTickets && !tls12Active { decided = true }
            guard isTLS13 else { return .proceed }
            // Nothing more is readable, except the server's records when a key log opens them.
            return !fromClient && awaitingTickets ? .proceed : .stop
        case .heartbeat:
            return .proceed
        case .notTLS:
            // The side that has not sent a ClientHello may be a server-first protocol; the
            // connection is not TLS once the other side also shows it is not.
            if clientStream == nil, stream == 0 { decided = true }
            return .stop
        case let .malformed(error):
            if malformed == nil { malformed = error }
            return .proceed
        case .gap:
            gaps += 1
            if clientStream == nil { gapBeforeClientHello = true }
            return .proceed
        }
    }

    /// QUIC (RFC 9001 5.1): the key log's server handshake and application traffic secrets of
    /// this connection, once its ServerHello is read and the key log names it.
    var serverTrafficSecrets: (suite: CipherSuite, handshake: [UInt8], application: [UInt8]?)? {
        guard decrypting, let serverHello, let clientHello, let random = ClientRandom(clientHello.random),
            let secrets = keyLogStore?.keyLog.secrets(for: random), let handshake = secrets.serverHandshakeTraffic
        else { return nil }
        return (serverHello.cipherSuite, handshake.bytes, secrets.serverApplicationTraffic?.bytes)
    }

    /// The server's TLS 1.3 record keys from the key log, when it names this connection
    /// (RFC 8446 7.1: server_handshake_traffic_secret, then server_application_traffic_secret_0).
    private func protectedRecordKeys(_ hello: ServerHello) -> TLS13Decryption? {
        guard let keyLog = keyLogStore?.keyLog, !keyLog.isEmpty, hello.negotiatedVersion == .tls1_3, let clientHello,
            let random = ClientRandom(clientHello.random),
            let secrets = keyLog.secrets(for: random), let handshake = secrets.serverHandshakeTraffic
        else { return nil }
        return TLS13Decryption(
            suite: hello.cipherSuite,
            handshakeSecret: handshake.bytes,
            applicationSecret: secrets.serverApplicationTraffic?.bytes
        )
    }

    /// A server message with no ClientHello before it: the capture began mid-handshake.
    private mutating func noClientHello(_ stream: Int) -> TLSDirective {
        if clientStream == nil {
            decided = true
            sawServerMessageFirst = true
        }
        return .stop
    }

    /// Builds the record; nil when no ClientHello was seen. `serverTraits` are the
    /// responder's, used only when the responder is the server.
    /// The last call on a machine: it moves the ClientHello out rather than copy it, so
    /// `clientHello` is nil afterwards.
    mutating func makeRecord(
        start: FlowStart,
        responderTraits: ServerTraits?,
        fingerprints: FingerprintCache,
        transport: Transport = .tcp
    ) -> HandshakeRecord? {
        guard hasClientHello, let clientStream, let hello = clientHello.take() else { return nil }
        hasClientHello = false
        let (client, server) =
            clientStream == 0 ? (start.originator, start.responder) : (start.responder, start.originator)
        let uid = connectionUID(
            timestampNanos: clientHelloTime,
            client: client.address,
            clientPort: client.port,
            server: server.address,
            serverPort: server.port
        )
        var record = HandshakeRecord(
            uid: uid,
            timestampNanos: clientHelloTime,
            client: client.address,
            clientPort: client.port,
            server: server.address,
            serverPort: server.port
        )
        record.transport = transport
        record.fill(from: hello, lists: fingerprints.lists, digests: fingerprints.digests)
        if fingerprints.computesHelloFingerprints {
            (record.ja3, record.ja4) = fingerprints.client(hello, transport: transport)
        }
        if clientStream == 0 { record.serverTraits = responderTraits }
        if let serverHello {
            record.version = serverHello.negotiatedVersion
            record.cipher = serverHello.cipherSuite
            record.serverSessionID = ShortBytes(serverHello.sessionID ?? [])
            record.alpnSelected = serverHello.alpn
            record.pskSelected = serverHello.selectedPSKIdentity.map(Int.init)
            let lists = fingerprints.lists
            record.serverExtensions =
                serverHello.extensionTypes.elementsEqual(lists.serverExtensions) { $0.rawValue == $1 }
                ? lists.serverExtensions
                : lists.shared(serverHello.extensionTypes.map(\.rawValue), as: \.serverExtensions)
            if fingerprints.computesHelloFingerprints { record.ja3s = fingerprints.server(serverHello) }
        } else if let sslv2Server {
            record.version = sslv2Server.version
        }
        record.hrr = sawHelloRetryRequest
        record.decrypted = decryptedAnything
        record.issuedTickets = issuedTickets
        record.protectedMessages = protectedMessages
        var renegotiations = renegotiations
        if let current = renegotiation, renegotiations.count < Self.maximumRenegotiationsKept {
            renegotiations.append(current.finished)
        }
        record.renegotiations = renegotiations
        record.earlyDataAccepted = earlyDataAccepted
        if let ticket {
            record.ticketIssued = true
            record.ticketLifetimeHint = ticket.lifetimeHint
            if !ticket.ticket.isEmpty {
                record.issuedTicketDigest = fingerprints.digests.shortDigest(ticket.ticket)
                record.issuedTicketKeyName = ticketKeyNameBytes(ticket.ticket)
            }
        }
        if !certificateChain.isEmpty {
            let lists = fingerprints.lists
            let kept = lists.certificateFingerprints
            // The chain's fingerprints, compared with the last record's before an array is built.
            record.certificateFingerprints =
                certificateChain.count == kept.count
                    && zip(certificateChain, kept).allSatisfy { fingerprints.fingerprint($0) == $1 }
                ? kept : lists.shared(certificateChain.map(fingerprints.fingerprint), as: \.certificateFingerprints)
        }
        if let leaf = certificateChain.first, let summary = fingerprints.summary(leaf) {
            record.certificate = summary
            record.sniMatchesCertificate = record.sni.map(summary.covers)
        }
        record.alert = lastAlert.map { $0.description.description }
        record.malformed = malformed.map { gaps > 0 ? "\($0.reason) (after a capture gap)" : $0.reason }
        record.gaps = gaps
        (record.resumed, record.resumption) = resumption(hello)
        record.established = established
        return record
    }

    private var established: Bool {
        if sslv2Server != nil { return false }
        guard serverHello != nil, !fatalAlert else { return false }
        if isTLS13 { return clientEncrypted && serverEncrypted }
        // A capture gap may hide a ChangeCipherSpec; application data both ways also proves it.
        return (clientChangeCipherSpec && serverChangeCipherSpec) || (clientEncrypted && serverEncrypted)
    }

    private func resumption(_ hello: ClientHello) -> (Bool?, Mechanism?) {
        if let sslv2Server {
            return (sslv2Server.sessionIDHit, sslv2Server.sessionIDHit ? .sessionID : nil)
        }
        guard let serverHello else { return (nil, nil) }
        let version = serverHello.negotiatedVersion
        if version.isTLS13Family {
            guard let selected = serverHello.selectedPSKIdentity else { return (false, nil) }
            let identity =
                Int(selected) < hello.pskIdentities.count
                ? hello.pskIdentities[Int(selected)] : hello.pskIdentities.first
            if let identity, HandshakeMachine.isExternalPSK(identity) { return (false, nil) }
            return (true, .psk)
        }
        let resumed: Bool
        if fullHandshakeMessage {
            resumed = false
        } else if serverChangeCipherSpec {
            resumed = true
        } else {
            // The capture ends after the ServerHello: the session ID echo decides.
            resumed =
                !hello.sessionID.isEmpty && (serverHello.sessionID.map { $0.elementsEqual(hello.sessionID) } ?? false)
        }
        guard resumed else { return (false, nil) }
        let ticketOffered = !(hello.sessionTicket ?? []).isEmpty
        return (true, ticketOffered ? .ticket : .sessionID)
    }

    /// An external PSK (RFC 8446 4.2.11: "For identities established externally, an
    /// obfuscated_ticket_age of 0 SHOULD be used") is named by a short printable identity.
    /// Resumption tickets are opaque binary with a random age offset.
    static func isExternalPSK(_ identity: OfferedPSKIdentity) -> Bool {
        identity.obfuscatedTicketAge == 0 && identity.identity.count <= 128
            && !identity.identity.isEmpty && identity.identity.allSatisfy { (0x20...0x7e).contains($0) }
    }
}

/// RFC 5077 4's recommended ticket layout begins with a 16-byte key_name; OpenSSL, nginx,
/// haproxy and most others follow it. Tickets shorter than that carry no key name.
func ticketKeyName(_ ticket: some Collection<UInt8>) -> String? {
    ticket.count >= 32 ? hexString(ticket.prefix(16)) : nil
}

/// `ticketKeyName` as bytes, for the record.
func ticketKeyNameBytes(_ ticket: some Collection<UInt8>) -> ShortBytes? {
    ticket.count >= 32 ? ShortBytes(ticket.prefix(16)) : nil
}

/// A value that is rarely there (key-log paths), kept out of line so that it costs a flow
/// one word until it is set; each change stores a new box.
@propertyWrapper
struct OutOfLine<Wrapped> {
    private final class Box {
        let value: Wrapped
        init(_ value: Wrapped) { self.value = value }
    }

    private var box: Box?

    init(wrappedValue: Wrapped?) { box = wrappedValue.map(Box.init) }

    var wrappedValue: Wrapped? {
        get { box?.value }
        set { box = newValue.map(Box.init) }
    }
}
