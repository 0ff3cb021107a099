import CHints
import Packets
import TLSWire

/// A server address and port: what the analyses call a service.
public struct ServiceKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var server: IPAddress
    public var port: UInt16
    /// The host name a client asked its proxy for, when the service is reached through a
    /// tunnel by name (`server` is then the unspecified address).
    public var host: String?

    public init(server: IPAddress, port: UInt16, host: String? = nil) {
        self.server = server
        self.port = port
        self.host = host
    }

    /// Three words and the host name into the seeded hash (the synthesized hash feeds it
    /// five values, three of them one or two bytes long); several tables per record use it.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(server.high)
        hasher.combine(server.low)
        hasher.combine(UInt64(port) | (server.isIPv6 ? 1 << 16 : 0) | (host == nil ? 0 : 1 << 17))
        if let host { hasher.combine(host) }
    }

    /// Where a record's resumption is judged: the target a client named to its proxy (HTTP
    /// CONNECT, SOCKS), else the server it connected to. Many clients reach many targets
    /// through one proxy address; a session belongs to the target.
    public init(of record: HandshakeRecord) {
        if let host = record.tunnelTargetHost, let port = record.tunnelTargetPort {
            if let address = IPAddress(host) {
                self.init(server: address, port: port)
            } else {
                self.init(server: IPAddress(high: 0, low: 0, isIPv6: false), port: port, host: host)
            }
        } else {
            self.init(server: record.server, port: record.serverPort)
        }
    }

    public static func < (a: ServiceKey, b: ServiceKey) -> Bool {
        (a.host ?? "", a.server, a.port) < (b.host ?? "", b.server, b.port)
    }
    /// "192.0.2.1:443", "[2001:db8::1]:443", or "example.com:443" for a named tunnel target.
    public var description: String { host.map { "\($0):\(port)" } ?? server.endpoint(port: port) }
    /// The server's address, or the target's name.
    public var serverText: String { host ?? server.description }
}

/// The resumption mechanisms, as they appear in records and reports.
public enum Mechanism: String, CaseIterable, Sendable, Hashable, WireSpelling {
    case sessionID = "session_id"
    case ticket
    case psk

    /// Hashed by case: the default for a raw-value enum hashes the raw value's text, about
    /// 300 instructions per lookup in the reuse statistics' tables keyed by mechanism (one
    /// per offer). Three values, none chosen by a peer.
    public func hash(into hasher: inout Hasher) { hasher.combine(caseNumber) }
    public func _rawHashValue(seed: Int) -> Int {
        Int(truncatingIfNeeded: UInt64(UInt(bitPattern: seed ^ caseNumber)) &* 0x9E37_79B9_7F4A_7C15)
    }

    private var caseNumber: Int {
        switch self {
        case .sessionID: 0
        case .ticket: 1
        case .psk: 2
        }
    }
}

/// How much of each record extraction fills in. The analyses read neither JA3, JA4 nor
/// JA3S, so a run that writes no records (`report`) leaves them out: for hellos that differ,
/// they are the dearest part of a record (issue 20: built only where output needs them).
public enum RecordContent: Sendable {
    /// Everything, fingerprints included.
    case full
    /// What the analyses read.
    case forAnalysis
}

/// What extraction puts in each record beyond the handshake in the clear.
public struct RecordOptions: Sendable {
    public var content: RecordContent
    /// Key logs' secrets by client random: the TLS 1.3 connections they name are read through
    /// the server's protected records (certificate, tickets, early data acceptance).
    public var keyLog: KeyLog?

    public init(content: RecordContent = .full, keyLog: KeyLog? = nil) {
        self.content = content
        self.keyLog = keyLog.flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// What carried the handshake: TCP, DTLS over UDP, or QUIC (`transport`).
public enum Transport: String, CaseIterable, Sendable, Hashable, WireSpelling {
    case tcp
    /// DTLS (RFC 9147) over UDP.
    case udp
    case quic
}

/// Where an offered PSK came from (RFC 8446 4.2.11): a ticket the server issued, or a key
/// provisioned outside TLS.
public enum PSKKind: String, CaseIterable, Sendable, Hashable, WireSpelling {
    case ticket
    case external
}

/// What a session's age counts from (`session_age_from`).
public enum SessionAgeOrigin: String, CaseIterable, Sendable, Hashable, WireSpelling {
    /// TLS 1.2 and earlier: the connection that issued the session ID or ticket.
    case issue
    /// TLS 1.3: the client's last full handshake with the service before the identity's
    /// first offer, where the ticket was issued.
    case fullHandshake = "full_handshake"
    /// TLS 1.3 without such a handshake in the capture: the identity's first offer.
    case firstOffer = "first_offer"
}

/// One PSK identity a client offered (RFC 8446 4.2.11), reduced to what analysis needs.
public struct PSKOffer: Sendable, Hashable {
    /// SHA-256 of the identity, first 16 bytes in hex: links repeated offers.
    public var digest: String
    /// First 16 bytes in hex when the identity is long enough to be an RFC 5077-style
    /// ticket (key_name, RFC 5077 4): groups tickets by the key that sealed them.
    public var keyName: String?
    public var obfuscatedTicketAge: UInt32
    public var length: Int
    /// The identity itself when it is short printable text (an external PSK's name).
    public var text: String?

    public init(digest: String, keyName: String?, obfuscatedTicketAge: UInt32, length: Int, text: String?) {
        self.digest = digest
        self.keyName = keyName
        self.obfuscatedTicketAge = obfuscatedTicketAge
        self.length = length
        self.text = text
    }
}

/// A TLS 1.2 renegotiation (RFC 5246 7.4.1.1, RFC 5746): a handshake inside the protected
/// records of a connection, read only with a key log's master secret (CLIENT_RANDOM).
public struct Renegotiation: Sendable, Hashable {
    /// When its ClientHello was seen.
    public var timestampNanos: Int64
    /// Abbreviated (a session resumed: no Certificate or key exchange from the server), or
    /// full; nil when its end was not read.
    public var resumed: Bool?
    /// The session the ClientHello offered: its session ID (hex, empty for none) and the
    /// digest of its SessionTicket (RFC 5077), as for a connection's first handshake.
    public var offeredSessionID: String
    public var offeredTicketDigest: String?
    /// The server's session ID, and the digest of the ticket it issued, if any: sessions a
    /// later connection may resume.
    public var serverSessionID: String?
    public var issuedTicketDigest: String?
    public var ticketLifetimeHint: UInt32?

    public init(
        timestampNanos: Int64,
        resumed: Bool?,
        offeredSessionID: String,
        offeredTicketDigest: String?,
        serverSessionID: String?,
        issuedTicketDigest: String?,
        ticketLifetimeHint: UInt32?
    ) {
        self.timestampNanos = timestampNanos
        self.resumed = resumed
        self.offeredSessionID = offeredSessionID
        self.offeredTicketDigest = offeredTicketDigest
        self.serverSessionID = serverSessionID
        self.issuedTicketDigest = issuedTicketDigest
        self.ticketLifetimeHint = ticketLifetimeHint
    }
}

/// A TLS 1.3 ticket the server issued (RFC 8446 4.6.1), reduced to what analysis needs; read
/// only with a key log.
public struct IssuedTicket: Sendable, Hashable {
    /// SHA-256 of the ticket, first 16 bytes in hex: the digest of the PSK identity that
    /// offers it again (`PSKOffer.digest`).
    public var digest: String
    /// The ticket's first 16 bytes in hex, as `PSKOffer.keyName`: the key name of servers
    /// that start their tickets with one (RFC 5077 4's recommended format), which stays
    /// the same for every ticket one backend issues.
    public var keyName: String?
    /// ticket_lifetime: seconds the server lets the ticket be used.
    public var lifetime: UInt32
    /// ticket_age_add: what the client adds to the ticket's age when it offers it.
    public var ageAdd: UInt32
    /// max_early_data_size, when the ticket allows early data.
    public var maxEarlyData: UInt32?

    public init(digest: String, keyName: String?, lifetime: UInt32, ageAdd: UInt32, maxEarlyData: UInt32?) {
        self.digest = digest
        self.keyName = keyName
        self.lifetime = lifetime
        self.ageAdd = ageAdd
        self.maxEarlyData = maxEarlyData
    }
}

/// TCP/IP traits of the server side, for telling backends apart when a balancer does
/// not terminate TCP.
public struct ServerTraits: Sendable, Hashable {
    /// IP TTL or hop limit of the server's packets.
    public var ttl: UInt8
    /// Window in the SYN-ACK (unscaled), when the SYN-ACK was seen.
    public var synAckWindow: UInt16?
    /// TCP option kinds of the SYN-ACK in order, e.g. "2,4,8,1,3".
    public var synAckOptions: String?
    /// TCP timestamp value (RFC 7323) of the server's first and last packet seen during the
    /// handshake, with capture times: the clock's offset and rate tell hosts apart.
    public var firstTimestampValue: UInt32?
    public var firstTimestampNanos: Int64?
    public var lastTimestampValue: UInt32?
    public var lastTimestampNanos: Int64?

    public init(ttl: UInt8) { self.ttl = ttl }

    /// The SYN-ACK's option kinds as the host lays them out for any connection: without a
    /// TCP Fast Open cookie (kind 34, RFC 7413 4.1.1; kind 254, the experimental form of
    /// RFC 6994), which a server sends only to a client that asked for one, and without the
    /// NOPs that padded it at the end.
    static func hostOptionLayout(_ layout: [UInt8]) -> String {
        func isCookie(_ kind: UInt8) -> Bool { kind == 34 || kind == 254 }
        // Kinds written: all but cookies, and with a cookie dropped, no NOPs after the last other.
        var end = layout.count
        if layout.contains(where: isCookie) {
            while end > 0, layout[end - 1] == 1 || isCookie(layout[end - 1]) { end -= 1 }
        }
        // Once per SYN-ACK: digits into a buffer on the stack (at most "255," a kind), then a
        // String that, as usual ("2,4,8,1,3"), fits inline with no allocation.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(end * 4, 1)) { buffer in
            var written = 0
            for kind in layout[..<end] where !isCookie(kind) {
                if written > 0 {
                    buffer[written] = UInt8(ascii: ",")
                    written += 1
                }
                buffer.writeDecimal(kind, at: &written)
            }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<written]), as: UTF8.self)
        }
    }
}

/// Everything tlsreuse knows about one TLS connection's handshake. This is the only thing
/// the analysis stages (Resumption, Stickiness, Reports) read: any trait they need travels here.
@dynamicMemberLookup
public struct HandshakeRecord: Sendable, Equatable {
    /// The record's fields (`Fields`) behind one reference, copied on write: a record moves
    /// through a dozen stages and queues between its ClientHello and the report, and a move
    /// is then one word, not the whole record with each of its strings retained (issue 20).
    @usableFromInline final class Storage: @unchecked Sendable {
        @usableFromInline var fields: Fields
        @usableFromInline init(_ fields: Fields) { self.fields = fields }
    }
    @usableFromInline var storage: Storage

    /// Starts loading the fields of the record at `index` of `records` into the cache,
    /// without retaining it (a retain would touch the cold object first): a holder that
    /// releases records in order (`LegPairer`) asks this for the next one, which waited long
    /// enough to go cold.
    public static func prefetch(_ records: UnsafeBufferPointer<HandshakeRecord?>, at index: Int) {
        guard MemoryLayout<HandshakeRecord?>.size == MemoryLayout<UInt>.size, let base = records.baseAddress,
            let storage = UnsafeRawPointer(base + index).load(as: UnsafeRawPointer?.self)
        else { return }
        for offset in stride(from: 0, to: 16 + MemoryLayout<Fields>.size, by: 64) {
            tlsreuse_prefetch(storage + offset)
        }
    }

    /// The fields for writing: the storage is copied first when another record shares it.
    @inlinable var mutableFields: Fields {
        get { storage.fields }
        _modify {
            if !isKnownUniquelyReferenced(&storage) { copyStorage() }
            yield &storage.fields
        }
    }

    /// The copy of a shared record's fields, kept out of line: inlined at each write it made
    /// the function that fills a new record 100 KB of code, most of it never run, and the
    /// instruction cache missed through it for every record.
    @inline(never) @usableFromInline mutating func copyStorage() { storage = Storage(storage.fields) }

    public static func == (a: HandshakeRecord, b: HandshakeRecord) -> Bool {
        a.storage === b.storage || a.storage.fields == b.storage.fields
    }

    /// Everything tlsreuse records about a handshake; read and written through the
    /// record's properties of the same names.
    public struct Fields: Sendable, Equatable {
        /// Unique within a run; derived from the first ClientHello's time and the 4-tuple,
        /// so the same capture always gives the same uids.
        public var uid: String
        /// Capture time of the first ClientHello, nanoseconds since the epoch.
        public var timestampNanos: Int64
        /// The side that sent the ClientHello.
        public var client: IPAddress
        public var clientPort: UInt16
        public var server: IPAddress
        public var serverPort: UInt16
        public var transport: Transport = Transport.tcp
        /// The plaintext protocol that upgraded to TLS (smtp, imap, pop3, ftp, xmpp, ldap,
        /// postgres, mysql); nil when the connection began with TLS.
        public var starttls: StartTLSProtocol?
        /// The proxy tunnel the TLS went through (HTTP CONNECT, SOCKS 4 or 5), and the host and
        /// port the client asked the proxy for; `server` and `server_port` stay the proxy's.
        public var tunnel: ProxyTunnelKind?
        public var tunnelTargetHost: String?
        public var tunnelTargetPort: UInt16?

        // From the ClientHello
        public var sni: String?
        /// The SNI as tables that outlive the record keep it (see `keptName(of:)`); set with `sni`.
        public internal(set) var keptServerName: String?
        public var alpnOffered: [String] = []
        /// supported_versions, or the ClientHello version when absent; GREASE left out.
        public var versionsOffered: [ProtocolVersion] = []
        /// Session IDs, ticket digests and key names are kept as bytes (hex only when written).
        public var clientSessionID: ShortBytes = ShortBytes()
        /// A non-empty session_ticket extension was offered.
        public var offeredTicket: Bool = false
        /// The client sent the session_ticket extension at all (empty or not): it accepts tickets.
        public var ticketSupported: Bool = false
        /// SHA-256 prefix and key name of the offered ticket, when one was offered.
        public var offeredTicketDigest: ShortBytes?
        public var offeredTicketKeyName: ShortBytes?
        public var offeredPSK: Bool = false
        public var pskIdentities: [PSKOffer] = []
        /// nil when no PSK was offered.
        public var pskKind: PSKKind?
        public var earlyDataOffered: Bool = false
        public var echOffered: Bool = false
        public var clientRandom: ShortBytes = ShortBytes()
        public var sslv2Hello: Bool = false

        // From the server
        public var version: ProtocolVersion?
        public var cipher: CipherSuite?
        /// nil without a ServerHello.
        public var serverSessionID: ShortBytes?
        public var alpnSelected: String?
        /// Which PSK identity the server accepted (index into `pskIdentities`).
        public var pskSelected: Int?
        /// Extension types of the ServerHello in wire order.
        public var serverExtensions: [UInt16] = []
        public var hrr: Bool = false
        public var ticketIssued: Bool = false
        public var issuedTicketDigest: ShortBytes?
        public var issuedTicketKeyName: ShortBytes?
        public var ticketLifetimeHint: UInt32?
        // TLS 1.3 read with a key log (--keylog)
        /// The server's protected records were opened with a key log's secrets.
        public var decrypted: Bool = false
        /// The TLS 1.3 tickets the server issued, in order.
        public var issuedTickets: [IssuedTicket] = []
        /// The server accepted the client's early data (early_data in EncryptedExtensions).
        public var earlyDataAccepted: Bool?
        /// TLS 1.2 renegotiations read with a key log's master secret, in order (at most 8).
        public var renegotiations: [Renegotiation] = []
        /// The handshake message types read from the server's protected records, in order
        /// (RFC 8446 4: 8 EncryptedExtensions, 11 Certificate, 15 CertificateVerify,
        /// 20 Finished, 4 NewSessionTicket, 24 KeyUpdate), at most 16.
        public var protectedMessages: [UInt8] = []
        /// SHA-256 of each certificate's DER, leaf first (TLS 1.2 and earlier).
        public var certificateFingerprints: [String] = []
        public var serverTraits: ServerTraits?
        /// The leaf certificate (TLS 1.2 and earlier), and whether it covers the SNI.
        public var certificate: CertificateSummary?
        public var sniMatchesCertificate: Bool?
        /// Client fingerprints: JA3 (MD5 hex) and JA4; JA3S of the ServerHello.
        public var ja3: String?
        public var ja4: String?
        public var ja3s: String?

        // Outcome
        /// nil when the handshake was not seen far enough to decide.
        public var resumed: Bool?
        /// How, when resumed.
        public var resumption: Mechanism?
        public var established: Bool = false
        /// The last cleartext alert's description.
        public var alert: String?
        /// The first parse failure, when a message or record was malformed.
        public var malformed: String?
        /// Capture gaps inside the handshake bytes.
        public var gaps: Int = 0

        // Filled by the Resumption stage (SessionLinker), which sees records in ClientHello order.
        /// What the client offered to resume, accepted or not.
        public var offer: Mechanism?
        /// uid of the connection that issued the offered session ID or ticket: TLS 1.2 and
        /// earlier, and TLS 1.3 when a key log opened the issuing connection.
        public var resumes: String?
        /// For TLS 1.3: uid of the first connection seen offering the same PSK identity.
        public var pskFirstOfferedBy: String?
        /// Seconds since the offered session was issued (TLS 1.2), or for TLS 1.3 since the
        /// client's last full handshake with the service before the identity's first offer
        /// (where tickets are issued), else since that first offer.
        public var sessionAge: Double?
        /// What `sessionAge` counts from.
        public var sessionAgeFrom: SessionAgeOrigin?
        /// TLS 1.3 with the issuing connection read through a key log: the ticket's age as the
        /// client gave it (obfuscated_ticket_age less the ticket's ticket_age_add, RFC 8446
        /// 4.2.11.1), in seconds, beside the capture's `sessionAge`.
        public var clientTicketAge: Double?

        // Filled by the Stickiness stage's LegPairer, before linking.
        /// The backend ("address:port") that a balancer forwarded this connection to, when the
        /// back-side connection (same ClientHello random) is in the capture too.
        public var backend: String?
        /// uid of that back-side connection.
        public var backendLeg: String?
        /// Set on a back-side connection: uid of the client-side connection it carries.
        public var backsideOf: String?
    }

    public init(
        uid: String,
        timestampNanos: Int64,
        client: IPAddress,
        clientPort: UInt16,
        server: IPAddress,
        serverPort: UInt16
    ) {
        let fields = Fields(
            uid: uid,
            timestampNanos: timestampNanos,
            client: client,
            clientPort: clientPort,
            server: server,
            serverPort: serverPort
        )
        storage = Storage(fields)
    }
}

/// Each field of `HandshakeRecord.Fields` by its name (`record.uid`), read from the shared
/// storage and written in place; the server name is set through `sni`, which keeps
/// `keptServerName` with it.
extension HandshakeRecord {
    @inlinable public subscript<Value>(dynamicMember field: WritableKeyPath<Fields, Value>) -> Value {
        get { storage.fields[keyPath: field] }
        _modify { yield &mutableFields[keyPath: field] }
    }

    public var sni: String? {
        get { storage.fields.sni }
        // Worked out once per name: the analysis stages read it several times per record,
        // and for a long name it takes a digest of the whole name.
        set {
            mutableFields.sni = newValue
            mutableFields.keptServerName = HandshakeRecord.keptName(of: newValue)
        }
    }
    /// The SNI as tables that outlive the record keep it (see `keptName(of:)`).
    @inlinable public var keptServerName: String? { storage.fields.keptServerName }
    /// True when no server answered: no ServerHello, not even the server's TCP traits or
    /// datagrams. Read in place (the fields it tests are not copied out).
    @inlinable public var serverSilent: Bool {
        storage.fields.version == nil && storage.fields.serverTraits?.ttl == nil
    }
}

extension HandshakeRecord {
    /// Copies what the ClientHello offered.
    mutating func fill(from hello: ClientHello, lists: RepeatedLists, digests: DigestMemo) {
        sni = hello.serverName
        // Compared with the last record's list in place: most hellos repeat it.
        let lastALPN = lists.alpn
        self.alpnOffered =
            !lastALPN.isEmpty && hello.offersALPN(lastALPN) ? lastALPN : lists.shared(hello.alpn, as: \.alpn)
        if !lists.versions.isEmpty, hello.offersVersions(lists.versions) {
            self.versionsOffered = lists.versions
        } else {
            var listed = hello.supportedVersions
            listed.removeAll { $0.isGREASE }  // in place: one array, not two
            self.versionsOffered = lists.shared(listed.isEmpty ? [hello.legacyVersion] : listed, as: \.versions)
        }
        self.clientSessionID = ShortBytes(hello.sessionID)
        self.ticketSupported = hello.sessionTicket != nil
        if let ticket = hello.sessionTicket, !ticket.isEmpty {
            self.offeredTicket = true
            self.offeredTicketDigest = digests.shortDigest(ticket)
            self.offeredTicketKeyName = ticketKeyNameBytes(ticket)
        }
        self.offeredPSK = hello.offersPSK
        self.pskIdentities = hello.pskIdentities.map { identity in
            let printable =
                identity.identity.count <= 128 && identity.identity.allSatisfy { (0x20...0x7e).contains($0) }
            return PSKOffer(
                digest: digests.shortDigest(identity.identity).hex,
                keyName: ticketKeyName(identity.identity),
                obfuscatedTicketAge: identity.obfuscatedTicketAge,
                length: identity.identity.count,
                text: printable && !identity.identity.isEmpty ? WireText.decode(identity.identity) : nil
            )
        }
        if let first = hello.pskIdentities.first {
            self.pskKind = HandshakeMachine.isExternalPSK(first) ? .external : .ticket
        }
        self.earlyDataOffered = hello.earlyData
        self.echOffered = hello.encryptedClientHello
        self.clientRandom = ShortBytes(hello.random)
        self.sslv2Hello = hello.isSSLv2Compatible
    }
}
