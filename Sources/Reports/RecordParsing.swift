import Handshakes
import Packets
import TLSWire

public struct RecordParseError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension HandshakeRecord {
    /// Rebuilds a record from one line of `handshakes --format jsonl` (or one record line of
    /// `--format json`). What the analysis stages derive (links, ages, balancer legs) is left
    /// out: the analysis works it out again, as it does from a capture.
    public init(json: JSONValue) throws(RecordParseError) {
        func fail(_ field: String) -> RecordParseError { RecordParseError(message: "field \"\(field)\" missing or of the wrong type") }
        guard case .object = json else { throw RecordParseError(message: "not a JSON object") }
        guard let uid = json["uid"]?.string else { throw fail("uid") }
        guard let ts = json["ts"]?.epochNanos else { throw fail("ts") }
        guard let client = json["client"]?.string.flatMap({ IPAddress($0) }) else { throw fail("client") }
        guard let server = json["server"]?.string.flatMap({ IPAddress($0) }) else { throw fail("server") }
        guard let clientPort = json["client_port"]?.int.flatMap({ UInt16(exactly: $0) }) else { throw fail("client_port") }
        guard let serverPort = json["server_port"]?.int.flatMap({ UInt16(exactly: $0) }) else { throw fail("server_port") }
        self.init(uid: uid, timestampNanos: ts, client: client, clientPort: clientPort, server: server, serverPort: serverPort)

        func string(_ key: String) throws(RecordParseError) -> String? {
            guard let value = json[key], !value.isNull else { return nil }
            guard let s = value.string else { throw fail(key) }
            return s
        }
        func bool(_ key: String) throws(RecordParseError) -> Bool {
            guard let b = json[key]?.bool else { throw fail(key) }
            return b
        }
        func optionalBool(_ key: String) throws(RecordParseError) -> Bool? {
            guard let value = json[key], !value.isNull else { return nil }
            guard let b = value.bool else { throw fail(key) }
            return b
        }
        func int<I: FixedWidthInteger>(_ key: String, as: I.Type) throws(RecordParseError) -> I? {
            guard let value = json[key], !value.isNull else { return nil }
            guard let i = value.int.flatMap({ I(exactly: $0) }) else { throw fail(key) }
            return i
        }
        func strings(_ key: String) throws(RecordParseError) -> [String] {
            guard let list = json[key]?.array else { throw fail(key) }
            var out: [String] = []
            for element in list {
                guard let s = element.string else { throw fail(key) }
                out.append(s)
            }
            return out
        }

        transport = try string("transport") ?? "tcp"
        sni = try string("sni")
        alpnOffered = try strings("alpn_offered")
        versionsOffered = []
        for name in try strings("versions_offered") {
            guard let version = ProtocolVersion(name: name) else { throw fail("versions_offered") }
            versionsOffered.append(version)
        }
        if let name = try string("version") {
            guard let parsed = ProtocolVersion(name: name) else { throw fail("version") }
            version = parsed
        }
        cipher = try int("cipher_id", as: UInt16.self).map(CipherSuite.init(rawValue:))
        clientSessionID = try string("client_session_id") ?? ""
        serverSessionID = try string("server_session_id")
        offeredTicket = try bool("offered_ticket")
        offeredPSK = try bool("offered_psk")
        hrr = try bool("hrr")
        ticketIssued = try bool("ticket_issued")
        resumed = try optionalBool("resumed")
        resumption = try string("resumption")
        established = try bool("established")
        alert = try string("alert")
        malformed = try string("malformed")
        ticketSupported = try bool("ticket_supported")
        pskKind = try string("psk_kind")
        guard let identities = json["psk_identities"]?.array else { throw fail("psk_identities") }
        for identity in identities {
            guard let digest = identity["digest"]?.string, let age = identity["obfuscated_age"]?.int.flatMap({ UInt32(exactly: $0) }),
                  let length = identity["length"]?.int.flatMap({ Int(exactly: $0) }) else { throw fail("psk_identities") }
            pskIdentities.append(PSKOffer(digest: digest, keyName: identity["key_name"]?.string, obfuscatedTicketAge: age,
                                          length: length, text: identity["text"]?.string))
        }
        pskSelected = try int("psk_selected", as: Int.self)
        offeredTicketDigest = try string("offered_ticket_digest")
        offeredTicketKeyName = try string("offered_ticket_key_name")
        issuedTicketDigest = try string("issued_ticket_digest")
        issuedTicketKeyName = try string("issued_ticket_key_name")
        ticketLifetimeHint = try int("ticket_lifetime_hint", as: UInt32.self)
        alpnSelected = try string("alpn_selected")
        earlyDataOffered = try bool("early_data_offered")
        echOffered = try bool("ech_offered")
        sslv2Hello = try bool("sslv2_hello")
        clientRandom = try string("client_random") ?? ""
        guard let extensions = json["server_extensions"]?.array else { throw fail("server_extensions") }
        for element in extensions {
            guard let type = element.int.flatMap({ UInt16(exactly: $0) }) else { throw fail("server_extensions") }
            serverExtensions.append(type)
        }
        certificateFingerprints = try strings("cert_chain_fps")
        if let leaf = json["certificate"], !leaf.isNull {
            guard let subject = leaf["subject"]?.string, let issuer = leaf["issuer"]?.string,
                  let sans = leaf["sans"]?.array, let notBefore = leaf["not_before"]?.epochWholeSeconds,
                  let notAfter = leaf["not_after"]?.epochWholeSeconds else { throw fail("certificate") }
            certificate = CertificateSummary(subject: subject, issuer: issuer, commonName: leaf["cn"]?.string,
                                             subjectAlternativeNames: sans.compactMap(\.string),
                                             notBeforeSeconds: notBefore, notAfterSeconds: notAfter)
        }
        if let matches = json["sni_matches_cert"], !matches.isNull {
            guard let value = matches.bool else { throw fail("sni_matches_cert") }
            sniMatchesCertificate = value
        }
        starttls = try string("starttls")
        ja3 = try string("ja3")
        ja3s = try string("ja3s")
        ja4 = try string("ja4")
        if let traits = json["server_traits"], !traits.isNull {
            guard let ttl = traits["ttl"]?.int.flatMap({ UInt8(exactly: $0) }) else { throw fail("server_traits.ttl") }
            var parsed = ServerTraits(ttl: ttl)
            parsed.synAckWindow = traits["syn_ack_window"]?.int.flatMap { UInt16(exactly: $0) }
            parsed.synAckOptions = traits["syn_ack_options"]?.string
            parsed.firstTimestampValue = traits["tsval_first"]?.int.flatMap { UInt32(exactly: $0) }
            parsed.firstTimestampNanos = traits["tsval_first_ts"]?.epochNanos
            parsed.lastTimestampValue = traits["tsval_last"]?.int.flatMap { UInt32(exactly: $0) }
            parsed.lastTimestampNanos = traits["tsval_last_ts"]?.epochNanos
            serverTraits = parsed
        }
        gaps = try int("gaps", as: Int.self) ?? 0
    }
}

extension ProtocolVersion {
    /// The inverse of `description`: "TLSv1.2", "DTLSv1.2", "SSLv3", or "0x7f17".
    public init?(name: String) {
        let known: [ProtocolVersion] = [.sslv2, .sslv3, .tls1_0, .tls1_1, .tls1_2, .tls1_3, .dtls1_0, .dtls1_2, .dtls1_3]
        if let match = known.first(where: { $0.description == name }) {
            self = match
        } else if name.hasPrefix("0x"), name.count == 6, let raw = UInt16(name.dropFirst(2), radix: 16) {
            self.init(rawValue: raw)
        } else {
            return nil
        }
    }
}
