import Packets
import TLSWire

// The handshake record's fields are declared once, in `HandshakeRecord.visitFields`: key,
// kind, origin and output order. JSON writing and reading, the spill file, the CSV and Zeek
// columns and the key table in ARCHITECTURE.md all walk that one list with a visitor, so
// adding a field is one edit and no format can leave it out.

/// How a scalar field is written, and what Zeek calls its type.
public enum FieldKind: Sendable, Equatable {
    case text
    case flag
    case count
    case port
    /// Nanoseconds since the epoch, written as seconds with microseconds.
    case time
    /// Whole seconds since the epoch (certificate validity), written like `time`.
    case wholeSeconds
    /// Seconds as a fraction (ages), three decimals.
    case interval
    case address
    /// A wire value by its name ("TLSv1.3", "TLS_AES_128_GCM_SHA256").
    case name
}

/// Who fills a field in, which decides what reading records back takes from it.
public enum FieldOrigin: Sendable, Equatable {
    /// Read from the capture: written, spilled and read back.
    case captured
    /// Filled by a later stage (leg pairing, session linking): written and spilled; reading
    /// records back leaves it out, as the analysis works it out again.
    case derived
    /// Another field shown another way (the cipher's name beside its number): written only.
    case shown
}

/// A scalar in the form every format works from.
public enum ScalarValue: Sendable, Equatable {
    case text(String)
    case integer(Int64)
    case flag(Bool)
    case number(Double)
}

/// A type a record field can hold: it converts to and from a `ScalarValue` for a kind.
public protocol RecordScalar {
    /// A value of the type, for readers to fill in and for column templates.
    static var placeholder: Self { get }
    func scalar(_ kind: FieldKind) -> ScalarValue
    /// The value's spelling when it is a name of a fixed set (a version, a cipher suite, an
    /// enumeration's case): ASCII letters, digits, `_`, `-`, `.`, spaces and parentheses, not
    /// starting with `-`, which no format escapes or quotes, so writers copy it with no
    /// `ScalarValue` between. Nil otherwise.
    func plainName(_ kind: FieldKind) -> String?
    /// Nil when the scalar is of the wrong form or out of range.
    init?(scalar: ScalarValue, _ kind: FieldKind)
}

extension RecordScalar {
    public func plainName(_ kind: FieldKind) -> String? { nil }
}

/// A nested object of the record (server traits, a PSK identity, the certificate).
public protocol RecordObject {
    static var placeholder: Self { get }
    mutating func visitFields<V: RecordFieldVisitor>(_ visitor: inout V)
}

/// Walks the record's fields in order. A writer reads each value it is handed; a reader
/// replaces it.
public protocol RecordFieldVisitor {
    /// True for a visitor that fills a record in: the schema then rebuilds the values it
    /// keeps in a shared form (the certificate summary).
    static var fillsRecord: Bool { get }
    /// True for a visitor that never changes a value it is handed (writers, listers): the
    /// record is then visited in place, even when a copy of it shares its fields.
    static var onlyReads: Bool { get }
    mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    )
    mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    )
    mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    )
    mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin)
    mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin)
    /// The summary for certificate fields just read; readers share one instance per leaf.
    mutating func certificate(_ fields: CertificateFields?, leaf: String?) -> CertificateSummary?
}

extension RecordFieldVisitor {
    public static var fillsRecord: Bool { false }
    public static var onlyReads: Bool { false }

    public mutating func certificate(_ fields: CertificateFields?, leaf: String?) -> CertificateSummary? {
        fields?.summary
    }

    // Captured fields, the common case.
    @inline(__always) mutating func scalar<T: RecordScalar>(_ key: StaticString, _ value: inout T, _ kind: FieldKind) {
        scalar(key, &value, kind, .captured)
    }

    @inline(__always) mutating func optional<T: RecordScalar>(_ key: StaticString, _ value: inout T?, _ kind: FieldKind)
    {
        optional(key, &value, kind, .captured)
    }

    @inline(__always) mutating func list<T: RecordScalar>(_ key: StaticString, _ values: inout [T], _ kind: FieldKind) {
        list(key, &values, kind, .captured)
    }
}

extension HandshakeRecord {
    /// The record's fields, each once, in output order.
    public mutating func visitFields<V: RecordFieldVisitor>(_ v: inout V) {
        if V.onlyReads {
            // Writers only read: the fields are visited where they are, not copied first when
            // a queue still shares the record (issue 20: a copy retains every string and array).
            storage.fields.visit(&v)
        } else {
            mutableFields.visit(&v)
            if V.fillsRecord { mutableFields.keptServerName = HandshakeRecord.keptName(of: storage.fields.sni) }
        }
    }

    /// A record with every field at its initial value, for readers to fill in.
    public static var placeholder: HandshakeRecord {
        let unset = IPAddress(high: 0, low: 0, isIPv6: false)
        return HandshakeRecord(uid: "", timestampNanos: 0, client: unset, clientPort: 0, server: unset, serverPort: 0)
    }
}

extension HandshakeRecord.Fields {
    /// The fields, each once, in output order (`HandshakeRecord.visitFields`).
    mutating func visit<V: RecordFieldVisitor>(_ v: inout V) {
        v.scalar("uid", &self.uid, .text)
        v.scalar("ts", &self.timestampNanos, .time)
        v.scalar("client", &self.client, .address)
        v.scalar("client_port", &self.clientPort, .port)
        v.scalar("server", &self.server, .address)
        v.scalar("server_port", &self.serverPort, .port)
        v.scalar("transport", &self.transport, .name)
        v.optional("starttls", &self.starttls, .name)
        v.optional("tunnel", &self.tunnel, .name)
        v.optional("tunnel_target_host", &self.tunnelTargetHost, .text)
        v.optional("tunnel_target_port", &self.tunnelTargetPort, .port)
        v.optional("sni", &self.sni, .text)
        v.list("alpn_offered", &self.alpnOffered, .text)
        v.list("versions_offered", &self.versionsOffered, .name)
        v.optional("version", &self.version, .name)
        v.optional("cipher", &self.cipher, .name, .shown)
        v.optional("cipher_id", &self.cipher, .count)
        v.scalar("client_session_id", &self.clientSessionID, .text)
        v.optional("server_session_id", &self.serverSessionID, .text)
        v.scalar("offered_ticket", &self.offeredTicket, .flag)
        v.scalar("offered_psk", &self.offeredPSK, .flag)
        v.scalar("hrr", &self.hrr, .flag)
        v.scalar("ticket_issued", &self.ticketIssued, .flag)
        v.optional("resumed", &self.resumed, .flag)
        v.optional("resumption", &self.resumption, .name)
        v.scalar("established", &self.established, .flag)
        v.optional("alert", &self.alert, .text)
        v.optional("malformed", &self.malformed, .text)
        v.optional("offer", &self.offer, .name, .derived)
        v.optional("resumes", &self.resumes, .text, .derived)
        v.optional("session_age", &self.sessionAge, .interval, .derived)
        v.optional("session_age_from", &self.sessionAgeFrom, .name, .derived)
        v.optional("client_ticket_age", &self.clientTicketAge, .interval, .derived)
        v.optional("psk_first_offered_by", &self.pskFirstOfferedBy, .text, .derived)
        v.optional("backend", &self.backend, .text, .derived)
        v.optional("backend_leg", &self.backendLeg, .text, .derived)
        v.optional("backside_of", &self.backsideOf, .text, .derived)
        v.scalar("ticket_supported", &self.ticketSupported, .flag)
        v.optional("psk_kind", &self.pskKind, .name)
        v.objects("psk_identities", &self.pskIdentities, .captured)
        v.optional("psk_selected", &self.pskSelected, .count)
        v.optional("offered_ticket_digest", &self.offeredTicketDigest, .text)
        v.optional("offered_ticket_key_name", &self.offeredTicketKeyName, .text)
        v.optional("issued_ticket_digest", &self.issuedTicketDigest, .text)
        v.optional("issued_ticket_key_name", &self.issuedTicketKeyName, .text)
        v.optional("ticket_lifetime_hint", &self.ticketLifetimeHint, .count)
        v.scalar("decrypted", &self.decrypted, .flag)
        v.objects("tickets_issued", &self.issuedTickets, .captured)
        v.optional("early_data_accepted", &self.earlyDataAccepted, .flag)
        v.list("protected_messages", &self.protectedMessages, .count)
        v.objects("renegotiations", &self.renegotiations, .captured)
        v.optional("alpn_selected", &self.alpnSelected, .text)
        v.scalar("early_data_offered", &self.earlyDataOffered, .flag)
        v.scalar("ech_offered", &self.echOffered, .flag)
        v.scalar("sslv2_hello", &self.sslv2Hello, .flag)
        v.scalar("client_random", &self.clientRandom, .text)
        v.list("server_extensions", &self.serverExtensions, .count)
        v.list("cert_chain_fps", &self.certificateFingerprints, .text)
        var leaf = self.certificate.map(CertificateFields.init)
        v.object("certificate", &leaf, .captured)
        if V.fillsRecord { self.certificate = v.certificate(leaf, leaf: self.certificateFingerprints.first) }
        v.optional("sni_matches_cert", &self.sniMatchesCertificate, .flag)
        v.optional("ja3", &self.ja3, .text)
        v.optional("ja3s", &self.ja3s, .text)
        v.optional("ja4", &self.ja4, .text)
        v.object("server_traits", &self.serverTraits, .captured)
        v.scalar("gaps", &self.gaps, .count)
    }
}

extension PSKOffer: RecordObject {
    public static let placeholder = PSKOffer(digest: "", keyName: nil, obfuscatedTicketAge: 0, length: 0, text: nil)

    public mutating func visitFields<V: RecordFieldVisitor>(_ v: inout V) {
        v.scalar("digest", &digest, .text)
        v.optional("key_name", &keyName, .text)
        v.scalar("obfuscated_age", &obfuscatedTicketAge, .count)
        v.scalar("length", &length, .count)
        v.optional("text", &text, .text)
    }
}

extension Renegotiation: RecordObject {
    public static let placeholder = Renegotiation(
        timestampNanos: 0,
        resumed: nil,
        offeredSessionID: "",
        offeredTicketDigest: nil,
        serverSessionID: nil,
        issuedTicketDigest: nil,
        ticketLifetimeHint: nil
    )

    public mutating func visitFields<V: RecordFieldVisitor>(_ v: inout V) {
        v.scalar("ts", &timestampNanos, .time)
        v.optional("resumed", &resumed, .flag)
        v.scalar("offered_session_id", &offeredSessionID, .text)
        v.optional("offered_ticket_digest", &offeredTicketDigest, .text)
        v.optional("server_session_id", &serverSessionID, .text)
        v.optional("issued_ticket_digest", &issuedTicketDigest, .text)
        v.optional("ticket_lifetime_hint", &ticketLifetimeHint, .count)
    }
}

extension IssuedTicket: RecordObject {
    public static let placeholder = IssuedTicket(digest: "", keyName: nil, lifetime: 0, ageAdd: 0, maxEarlyData: nil)

    public mutating func visitFields<V: RecordFieldVisitor>(_ v: inout V) {
        v.scalar("digest", &digest, .text)
        v.optional("key_name", &keyName, .text)
        v.scalar("lifetime", &lifetime, .count)
        v.scalar("age_add", &ageAdd, .count)
        v.optional("max_early_data", &maxEarlyData, .count)
    }
}

extension ServerTraits: RecordObject {
    public static let placeholder = ServerTraits(ttl: 0)

    public mutating func visitFields<V: RecordFieldVisitor>(_ v: inout V) {
        v.scalar("ttl", &ttl, .count)
        v.optional("syn_ack_window", &synAckWindow, .count)
        v.optional("syn_ack_options", &synAckOptions, .text)
        v.optional("tsval_first", &firstTimestampValue, .count)
        v.optional("tsval_first_ts", &firstTimestampNanos, .time)
        v.optional("tsval_last", &lastTimestampValue, .count)
        v.optional("tsval_last_ts", &lastTimestampNanos, .time)
    }
}

/// A certificate summary's fields as the schema walks them (the summary itself is immutable
/// and shared between the records of one leaf).
public struct CertificateFields: RecordObject, Sendable {
    public var subject = ""
    public var issuer = ""
    public var commonName: String?
    public var subjectAlternativeNames: [String] = []
    public var notBeforeSeconds: Int64 = 0
    public var notAfterSeconds: Int64 = 0

    public static let placeholder = CertificateFields()

    init() {}

    init(_ summary: CertificateSummary) {
        subject = summary.subject
        issuer = summary.issuer
        commonName = summary.commonName
        subjectAlternativeNames = summary.subjectAlternativeNames
        notBeforeSeconds = summary.notBeforeSeconds
        notAfterSeconds = summary.notAfterSeconds
    }

    public var summary: CertificateSummary {
        CertificateSummary(
            subject: subject,
            issuer: issuer,
            commonName: commonName,
            subjectAlternativeNames: subjectAlternativeNames,
            notBeforeSeconds: notBeforeSeconds,
            notAfterSeconds: notAfterSeconds
        )
    }

    public mutating func visitFields<V: RecordFieldVisitor>(_ v: inout V) {
        v.scalar("subject", &subject, .text)
        v.optional("cn", &commonName, .text)
        v.scalar("issuer", &issuer, .text)
        v.list("sans", &subjectAlternativeNames, .text)
        v.scalar("not_before", &notBeforeSeconds, .wholeSeconds)
        v.scalar("not_after", &notAfterSeconds, .wholeSeconds)
    }
}

// MARK: Scalar types

extension String: RecordScalar {
    public static var placeholder: String { "" }
    public func scalar(_ kind: FieldKind) -> ScalarValue { .text(self) }
    public init?(scalar: ScalarValue, _ kind: FieldKind) {
        guard case let .text(text) = scalar else { return nil }
        self = text
    }
}

extension ShortBytes: RecordScalar {
    public static var placeholder: ShortBytes { ShortBytes() }
    public func scalar(_ kind: FieldKind) -> ScalarValue { .text(hex) }
    public init?(scalar: ScalarValue, _ kind: FieldKind) {
        guard case let .text(text) = scalar else { return nil }
        self.init(hex: text)
    }
}

extension Bool: RecordScalar {
    public static var placeholder: Bool { false }
    public func scalar(_ kind: FieldKind) -> ScalarValue { .flag(self) }
    public init?(scalar: ScalarValue, _ kind: FieldKind) {
        guard case let .flag(flag) = scalar else { return nil }
        self = flag
    }
}

extension Double: RecordScalar {
    public static var placeholder: Double { 0 }
    public func scalar(_ kind: FieldKind) -> ScalarValue { .number(self) }
    public init?(scalar: ScalarValue, _ kind: FieldKind) {
        guard case let .number(number) = scalar else { return nil }
        self = number
    }
}

/// Integers of every width the record uses, range-checked when read.
public protocol RecordInteger: FixedWidthInteger, RecordScalar {}

extension RecordInteger {
    public static var placeholder: Self { 0 }
    public func scalar(_ kind: FieldKind) -> ScalarValue { .integer(Int64(truncatingIfNeeded: self)) }
    public init?(scalar: ScalarValue, _ kind: FieldKind) {
        guard case let .integer(integer) = scalar, let exact = Self(exactly: integer) else { return nil }
        self = exact
    }
}

extension UInt8: RecordInteger {}
extension UInt16: RecordInteger {}
extension UInt32: RecordInteger {}
extension Int: RecordInteger {}
extension Int64: RecordInteger {}

/// A value of a fixed set, written by its wire spelling; an unknown spelling does not read.
public protocol WireSpelling: RawRepresentable<String>, CaseIterable, RecordScalar {}

extension WireSpelling {
    /// Every spelling, in declaration order.
    public static var spellings: [String] { allCases.map(\.rawValue) }
    public static var placeholder: Self { allCases.first! }
    public func scalar(_ kind: FieldKind) -> ScalarValue { .text(rawValue) }
    public func plainName(_ kind: FieldKind) -> String? { rawValue }
    public init?(scalar: ScalarValue, _ kind: FieldKind) {
        guard case let .text(text) = scalar else { return nil }
        self.init(rawValue: text)
    }
}

extension StartTLSProtocol: WireSpelling {}
extension ProxyTunnelKind: WireSpelling {}

extension IPAddress: RecordScalar {
    public static var placeholder: IPAddress { IPAddress(high: 0, low: 0, isIPv6: false) }
    public func scalar(_ kind: FieldKind) -> ScalarValue { .text(description) }
    public init?(scalar: ScalarValue, _ kind: FieldKind) {
        guard case let .text(text) = scalar, let address = IPAddress(text) else { return nil }
        self = address
    }
}

extension ProtocolVersion: RecordScalar {
    public static var placeholder: ProtocolVersion { ProtocolVersion(rawValue: 0) }
    public func scalar(_ kind: FieldKind) -> ScalarValue {
        kind == .name ? .text(description) : .integer(Int64(rawValue))
    }
    public func plainName(_ kind: FieldKind) -> String? { kind == .name ? description : nil }
    public init?(scalar: ScalarValue, _ kind: FieldKind) {
        switch scalar {
        case let .text(name): self.init(name: name)
        case let .integer(raw):
            guard let exact = UInt16(exactly: raw) else { return nil }
            self.init(rawValue: exact)
        default: return nil
        }
    }

    /// The inverse of `description`: "TLSv1.2", "DTLSv1.2", "SSLv3", or "0x7f17".
    public init?(name: String) {
        let known: [ProtocolVersion] = [
            .sslv2, .sslv3, .tls1_0, .tls1_1, .tls1_2, .tls1_3, .dtls1_0, .dtls1_2, .dtls1_3,
        ]
        if let match = known.first(where: { $0.description == name }) {
            self = match
        } else if name.hasPrefix("0x"), name.count == 6, let raw = UInt16(name.dropFirst(2), radix: 16) {
            self.init(rawValue: raw)
        } else {
            return nil
        }
    }
}

extension CipherSuite: RecordScalar {
    public static var placeholder: CipherSuite { CipherSuite(rawValue: 0) }
    /// By name only for showing (`.shown`); read back from the number.
    public func scalar(_ kind: FieldKind) -> ScalarValue {
        kind == .name ? .text(description) : .integer(Int64(rawValue))
    }
    public func plainName(_ kind: FieldKind) -> String? { kind == .name ? description : nil }
    public init?(scalar: ScalarValue, _ kind: FieldKind) {
        guard case let .integer(raw) = scalar, let exact = UInt16(exactly: raw) else { return nil }
        self.init(rawValue: exact)
    }
}
