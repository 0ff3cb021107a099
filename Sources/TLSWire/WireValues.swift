// Values that travel on the wire. Each is an open RawRepresentable struct rather than a
// closed enum, so GREASE (RFC 8701) and values registered after this code was written
// survive parsing and can be printed and fingerprinted.

/// RFC 8701 2: 0x0A0A, 0x1A1A, ... 0xFAFA.
@inline(__always)
public func isGREASE(_ value: UInt16) -> Bool { value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff }

/// TLS record content type (RFC 8446 5.1, RFC 6520 for heartbeat).
public struct ContentType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let changeCipherSpec = ContentType(rawValue: 20)
    public static let alert = ContentType(rawValue: 21)
    public static let handshake = ContentType(rawValue: 22)
    public static let applicationData = ContentType(rawValue: 23)
    public static let heartbeat = ContentType(rawValue: 24)
}

/// ProtocolVersion (RFC 8446 4.1.2), including drafts (0x7fNN), Chrome's experiments
/// (0x7e01-0x7e02), Facebook's (0xfbNN) and DTLS.
public struct ProtocolVersion: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let sslv2 = ProtocolVersion(rawValue: 0x0002)
    public static let sslv3 = ProtocolVersion(rawValue: 0x0300)
    public static let tls1_0 = ProtocolVersion(rawValue: 0x0301)
    public static let tls1_1 = ProtocolVersion(rawValue: 0x0302)
    public static let tls1_2 = ProtocolVersion(rawValue: 0x0303)
    public static let tls1_3 = ProtocolVersion(rawValue: 0x0304)
    public static let dtls1_0 = ProtocolVersion(rawValue: 0xfeff)
    public static let dtls1_2 = ProtocolVersion(rawValue: 0xfefd)
    public static let dtls1_3 = ProtocolVersion(rawValue: 0xfefc)

    public var isGREASE: Bool { TLSWire.isGREASE(rawValue) }

    /// A TLS 1.3 draft or pre-standard variant: 0x7fNN (IETF drafts), 0x7e0N (Chrome's 2017
    /// experiments), 0xfbNN (Facebook's). These decide resumption as TLS 1.3 does.
    public var isTLS13Draft: Bool {
        rawValue >> 8 == 0x7f || rawValue == 0x7e01 || rawValue == 0x7e02 || rawValue >> 8 == 0xfb
    }

    /// TLS 1.3 or one of its drafts: resumption only by pre_shared_key (RFC 8446 2.2).
    public var isTLS13Family: Bool { self == .tls1_3 || isTLS13Draft }

    /// The draft number for 0x7fNN, 0xfbNN (Facebook drafts number their base draft) and
    /// Chrome's experiments (based on draft 18).
    public var draftNumber: Int? {
        if rawValue >> 8 == 0x7f || rawValue >> 8 == 0xfb { return Int(rawValue & 0xff) }
        if rawValue == 0x7e01 || rawValue == 0x7e02 { return 18 }
        return nil
    }

    public static func < (a: ProtocolVersion, b: ProtocolVersion) -> Bool { a.rawValue < b.rawValue }

    /// "SSLv3", "TLSv1.0" ... "TLSv1.3", "DTLSv1.2", else "0x7f17".
    public var description: String {
        switch self {
        case .sslv2: "SSLv2"
        case .sslv3: "SSLv3"
        case .tls1_0: "TLSv1.0"
        case .tls1_1: "TLSv1.1"
        case .tls1_2: "TLSv1.2"
        case .tls1_3: "TLSv1.3"
        case .dtls1_0: "DTLSv1.0"
        case .dtls1_2: "DTLSv1.2"
        case .dtls1_3: "DTLSv1.3"
        default: hex4(rawValue)
        }
    }
}

/// "0x" and four lowercase hex digits.
public func hex4(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 4 - digits.count) + digits
}

/// HandshakeType (RFC 8446 4, RFC 5246 7.4, RFC 6066, draft 21 for hello_retry_request).
public struct HandshakeType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let helloRequest = HandshakeType(rawValue: 0)
    public static let clientHello = HandshakeType(rawValue: 1)
    public static let serverHello = HandshakeType(rawValue: 2)
    public static let helloVerifyRequest = HandshakeType(rawValue: 3)
    public static let newSessionTicket = HandshakeType(rawValue: 4)
    public static let endOfEarlyData = HandshakeType(rawValue: 5)
    /// A separate message type in TLS 1.3 drafts up to 21; a special ServerHello since.
    public static let draftHelloRetryRequest = HandshakeType(rawValue: 6)
    public static let encryptedExtensions = HandshakeType(rawValue: 8)
    public static let certificate = HandshakeType(rawValue: 11)
    public static let serverKeyExchange = HandshakeType(rawValue: 12)
    public static let certificateRequest = HandshakeType(rawValue: 13)
    public static let serverHelloDone = HandshakeType(rawValue: 14)
    public static let certificateVerify = HandshakeType(rawValue: 15)
    public static let clientKeyExchange = HandshakeType(rawValue: 16)
    public static let finished = HandshakeType(rawValue: 20)
    public static let certificateURL = HandshakeType(rawValue: 21)
    public static let certificateStatus = HandshakeType(rawValue: 22)
    public static let keyUpdate = HandshakeType(rawValue: 24)
}

/// ExtensionType (IANA TLS ExtensionType Values).
public struct ExtensionType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let serverName = ExtensionType(rawValue: 0)
    public static let statusRequest = ExtensionType(rawValue: 5)
    public static let supportedGroups = ExtensionType(rawValue: 10)
    public static let ecPointFormats = ExtensionType(rawValue: 11)
    public static let signatureAlgorithms = ExtensionType(rawValue: 13)
    public static let applicationLayerProtocolNegotiation = ExtensionType(rawValue: 16)
    public static let padding = ExtensionType(rawValue: 21)
    public static let extendedMasterSecret = ExtensionType(rawValue: 23)
    public static let sessionTicket = ExtensionType(rawValue: 35)
    /// TLS 1.3 drafts before 23 numbered key_share 40.
    public static let draftKeyShare = ExtensionType(rawValue: 40)
    public static let preSharedKey = ExtensionType(rawValue: 41)
    public static let earlyData = ExtensionType(rawValue: 42)
    public static let supportedVersions = ExtensionType(rawValue: 43)
    public static let cookie = ExtensionType(rawValue: 44)
    public static let pskKeyExchangeModes = ExtensionType(rawValue: 45)
    public static let keyShare = ExtensionType(rawValue: 51)
    public static let encryptedClientHello = ExtensionType(rawValue: 0xfe0d)
    public static let renegotiationInfo = ExtensionType(rawValue: 0xff01)

    public var isGREASE: Bool { TLSWire.isGREASE(rawValue) }
}

/// CipherSuite (IANA TLS Cipher Suites).
public struct CipherSuite: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public var isGREASE: Bool { TLSWire.isGREASE(rawValue) }
    /// The registered name, or nil when the number is not registered.
    public var name: String? { CipherSuite.registeredNames[rawValue] }
    /// The registered name, or "0x1302" style hex.
    public var description: String { name ?? hex4(rawValue) }
}

/// NamedGroup (RFC 8446 4.2.7 and IANA).
public struct NamedGroup: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public var isGREASE: Bool { TLSWire.isGREASE(rawValue) }
}

/// AlertLevel and AlertDescription (RFC 8446 6, RFC 5246 7.2, IANA).
public struct AlertDescription: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let closeNotify = AlertDescription(rawValue: 0)
    public static let handshakeFailure = AlertDescription(rawValue: 40)

    static let names: [UInt8: String] = [
        0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
        22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure", 41: "no_certificate",
        42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
        46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied",
        50: "decode_error", 51: "decrypt_error", 52: "too_many_cids_requested", 60: "export_restriction",
        70: "protocol_version", 71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
        90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension", 110: "unsupported_extension",
        111: "certificate_unobtainable", 112: "unrecognized_name", 113: "bad_certificate_status_response",
        114: "bad_certificate_hash_value", 115: "unknown_psk_identity", 116: "certificate_required",
        117: "general_error", 120: "no_application_protocol", 121: "ech_required",
    ]

    /// The registered name, or "alert_N".
    public var description: String { AlertDescription.names[rawValue] ?? "alert_\(rawValue)" }
}

public struct Alert: Sendable, Hashable {
    /// 1 warning, 2 fatal.
    public var level: UInt8
    public var description: AlertDescription
    public var isFatal: Bool { level == 2 }
}
