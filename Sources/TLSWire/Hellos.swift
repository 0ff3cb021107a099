#if canImport(Glibc)
import Glibc
#endif

/// The fixed ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest")
/// (RFC 8446 4.1.3).
public let helloRetryRequestRandom: [UInt8] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
]

/// The hello parsers' limits (the stream decoder's are beside it).
extension TLSLimits {
    /// Extensions in one hello: a 2^16-1 byte block of 4-byte empty extensions holds 16383.
    public static let maximumExtensions = 16_383
    /// legacy_session_id<0..32> (RFC 8446 4.1.2).
    public static let maximumSessionIDLength = 32
}

/// Finds a repeated extension type (RFC 8446 4.2: "There MUST NOT be more than one extension
/// of the same type"). Types below 64 (nearly all registered ones) are one bit each; the
/// first 16 others sit inline and are compared at once; past those a set, so a hostile hello
/// with thousands of extensions stays linear and a usual one allocates nothing.
struct DuplicateCheck {
    private var low: UInt64 = 0
    /// Type 0 is below 64, so 0 marks an empty lane.
    private var high = SIMD16<UInt16>(repeating: 0)
    private var highCount = 0
    private var overflow: Set<UInt16> = []

    /// True if `type` was seen before; records it.
    mutating func isDuplicate(_ type: UInt16) -> Bool {
        if type < 64 {
            let bit: UInt64 = 1 << type
            defer { low |= bit }
            return low & bit != 0
        }
        if any(high .== SIMD16(repeating: type)) { return true }
        if highCount < 16 {
            high[highCount] = type
            highCount += 1
            return false
        }
        return !overflow.insert(type).inserted
    }
}

/// One PSK identity offered in pre_shared_key (RFC 8446 4.2.11).
public struct OfferedPSKIdentity: Sendable, Hashable {
    public var identity: [UInt8]
    public var obfuscatedTicketAge: UInt32
}

/// A ClientHello with the fields tlsreuse uses. `extensionTypes` keeps the wire order
/// (GREASE included) for fingerprints.
///
///     struct {
///         ProtocolVersion legacy_version = 0x0303;    /* TLS v1.2 */
///         Random random;
///         opaque legacy_session_id<0..32>;
///         CipherSuite cipher_suites<2..2^16-2>;
///         opaque legacy_compression_methods<1..2^8-1>;
///         Extension extensions<8..2^16-1>;
///     } ClientHello;                                  (RFC 8446 4.1.2)
public struct ClientHello: Sendable {
    /// The message body as sent, kept once: the byte lists are slices of it and the number
    /// lists are read from it when asked for, so a parse allocates this buffer rather than one
    /// per list, and what fingerprints alone read costs nothing until they do (issue 20).
    private var body: [UInt8] = []
    @BodyRange private var randomBytes = 0..<0
    @BodyRange private var sessionIDBytes = 0..<0
    @BodyRange private var cipherSuiteBytes = 0..<0
    @BodyRange private var compressionBytes = 0..<0
    @OptionalBodyRange private var firstALPNBytes: Range<Int>?
    @BodyRange private var supportedVersionBytes = 0..<0
    @OptionalBodyRange private var sessionTicketBytes: Range<Int>?
    @BodyRange private var pskModeBytes = 0..<0
    /// The client_shares list: KeyShareEntry structs, read for their groups.
    @BodyRange private var keyShareBytes = 0..<0
    @BodyRange private var supportedGroupBytes = 0..<0
    @BodyRange private var pointFormatBytes = 0..<0
    @BodyRange private var signatureAlgorithmBytes = 0..<0
    @OptionalBodyRange private var cookieBytes: Range<Int>?
    /// The extensions block's contents, checked when parsed: read for the types in wire order.
    @BodyRange private var extensionBytes = 0..<0
    /// ALPN's protocol_name_list contents (RFC 7301 3.1), checked when parsed.
    @BodyRange private var alpnListBytes = 0..<0

    public var legacyVersion = ProtocolVersion.tls1_2
    /// How many extensions the hello carries.
    public private(set) var extensionCount = 0
    /// pre_shared_key is present (RFC 8446 4.2.11).
    public private(set) var offersPSK = false
    public var serverName: String?
    public var pskIdentities: [OfferedPSKIdentity] = []
    public var pskBinderCount = 0
    public var earlyData = false
    public var encryptedClientHello = false
    public var extendedMasterSecret = false
    public var renegotiationInfo = false
    /// Sent as an SSL 2.0-compatible CLIENT-HELLO (RFC 5246 E.2).
    public var isSSLv2Compatible = false

    /// Extension types in wire order, GREASE included, for fingerprints.
    public var extensionTypes: [ExtensionType] {
        var types: [ExtensionType] = []
        types.reserveCapacity(extensionCount)
        forEachExtensionType { types.append($0) }
        return types
    }

    /// Calls `body` with each extension type in wire order, read in place.
    @inline(__always)
    private func forEachExtensionType(_ each: (ExtensionType) -> Void) {
        var offset = extensionBytes.lowerBound
        while offset + 4 <= extensionBytes.upperBound {
            each(ExtensionType(rawValue: UInt16(body[offset]) << 8 | UInt16(body[offset + 1])))
            offset += 4 + (Int(body[offset + 2]) << 8 | Int(body[offset + 3]))
        }
    }

    /// The protocol names offered in ALPN (RFC 7301 3.1), in order; empty when absent.
    public var alpn: [String] {
        var names: [String] = []
        forEachALPNName { names.append(WireText.decode($0)) }
        return names
    }

    /// Whether the ALPN names offered are `names`, compared in place: a printable ASCII name
    /// reads as its bytes, any other is decoded as `alpn` decodes it.
    public func offersALPN(_ names: [String]) -> Bool {
        var index = 0
        var equal = true
        forEachALPNName { bytes in
            guard equal, index < names.count else {
                equal = false
                return
            }
            var name = names[index]
            index += 1
            // Equal bytes of printable ASCII are equal names (WireText keeps them as they are).
            let sameBytes = name.withUTF8 { utf8 in
                bytes.withUnsafeBytes {
                    $0.count == utf8.count && ($0.isEmpty || memcmp($0.baseAddress!, utf8.baseAddress!, $0.count) == 0)
                }
            }
            if !bytes.allSatisfy({ (0x20...0x7e).contains($0) }) {
                equal = WireText.decode(bytes) == name
            } else {
                equal = sameBytes
            }
        }
        return equal && index == names.count
    }

    @inline(__always)
    private func forEachALPNName(_ each: (ArraySlice<UInt8>) -> Void) {
        var offset = alpnListBytes.lowerBound
        while offset < alpnListBytes.upperBound {
            let length = Int(body[offset])
            // Checked when parsed; never read past the list all the same.
            guard offset + 1 + length <= alpnListBytes.upperBound else { return }
            each(body[(offset + 1)..<(offset + 1 + length)])
            offset += 1 + length
        }
    }

    public var random: ArraySlice<UInt8> { body[randomBytes] }
    public var sessionID: ArraySlice<UInt8> { body[sessionIDBytes] }
    public var cipherSuites: [CipherSuite] { uint16s(cipherSuiteBytes, as: CipherSuite.init) }
    public var compressionMethods: ArraySlice<UInt8> { body[compressionBytes] }
    /// The first ALPN protocol name as sent, for fingerprints that need its bytes.
    public var firstALPN: ArraySlice<UInt8>? { firstALPNBytes.map { body[$0] } }
    /// From supported_versions (RFC 8446 4.2.1), in the client's order; empty when absent.
    public var supportedVersions: [ProtocolVersion] { uint16s(supportedVersionBytes, as: ProtocolVersion.init) }
    /// Whether the versions offered are `list`: supported_versions without GREASE values
    /// (RFC 8701), or when it lists none, the legacy version alone. Read in place, with no
    /// array built.
    public func offersVersions(_ list: [ProtocolVersion]) -> Bool {
        var matched = 0
        for offset in stride(from: supportedVersionBytes.lowerBound, to: supportedVersionBytes.upperBound - 1, by: 2) {
            let version = ProtocolVersion(rawValue: UInt16(body[offset]) << 8 | UInt16(body[offset + 1]))
            if version.isGREASE { continue }
            guard matched < list.count, list[matched] == version else { return false }
            matched += 1
        }
        return matched == 0 ? list == [legacyVersion] : matched == list.count
    }
    /// The session_ticket extension's data (RFC 5077 3.2); nil when the extension is absent.
    public var sessionTicket: ArraySlice<UInt8>? { sessionTicketBytes.map { body[$0] } }
    public var pskKeyExchangeModes: ArraySlice<UInt8> { body[pskModeBytes] }
    public var keyShareGroups: [NamedGroup] {
        // Entries were checked when parsed: uint16 group, uint16 length, key_exchange.
        var groups: [NamedGroup] = []
        var offset = keyShareBytes.lowerBound
        while offset + 4 <= keyShareBytes.upperBound {
            groups.append(NamedGroup(rawValue: UInt16(body[offset]) << 8 | UInt16(body[offset + 1])))
            offset += 4 + (Int(body[offset + 2]) << 8 | Int(body[offset + 3]))
        }
        return groups
    }
    public var supportedGroups: [NamedGroup] { uint16s(supportedGroupBytes, as: NamedGroup.init) }
    public var ecPointFormats: ArraySlice<UInt8> { body[pointFormatBytes] }
    public var signatureAlgorithms: [UInt16] { uint16s(signatureAlgorithmBytes) { $0 } }
    /// DTLS only: the cookie from a HelloVerifyRequest, echoed (RFC 6347 4.2.1).
    public var cookie: ArraySlice<UInt8>? { cookieBytes.map { body[$0] } }

    /// Where the body's bytes are, and how many: for a prefetch hint only (the address is
    /// not to be read through: the hello may move its body).
    public var bodyLocation: (address: UnsafeRawPointer?, count: Int) {
        body.withUnsafeBytes { (UnsafeRawPointer($0.baseAddress), $0.count) }
    }

    /// What the hello holds in memory (its body), for memory accounting.
    public var retainedBytes: Int { body.capacity }

    /// Big-endian 16-bit values of a range of the body (its length is even: checked when parsed).
    @inline(__always)
    private func uint16s<Value>(_ range: Range<Int>, as make: (UInt16) -> Value) -> [Value] {
        var values: [Value] = []
        values.reserveCapacity(range.count / 2)
        for offset in stride(from: range.lowerBound, to: range.upperBound - 1, by: 2) {
            values.append(make(UInt16(body[offset]) << 8 | UInt16(body[offset + 1])))
        }
        return values
    }

    public init() {}

    /// Everything JA3 and JA4 read from the hello, in one buffer, with `tag` (the
    /// transport) in front: hellos with equal keys have equal fingerprints, so the key
    /// can stand for them in a memo. One allocation, where the lists as arrays took seven.
    public func fingerprintKey(tag: UInt8) -> [UInt8] {
        // The walk gives exactly this many bytes (the extension block was checked when
        // parsed); the writes are bounded all the same.
        [UInt8](unsafeUninitializedCapacity: fingerprintKeyCount) { key, count in
            var at = 0
            walkFingerprintKey(tag: tag) { byte in
                guard at < key.count else { return }
                key[at] = byte
                at += 1
            } list: { bytes in
                guard let source = bytes.baseAddress, let target = key.baseAddress, at + bytes.count <= key.count
                else { return }
                (target + at).update(from: source, count: bytes.count)
                at += bytes.count
            }
            count = at
        }
    }

    /// Whether `key` is `fingerprintKey(tag:)` of this hello, compared in place: a memo of
    /// fingerprints asks this of each entry, and builds the key only when none matches.
    public func matchesFingerprintKey(_ key: [UInt8], tag: UInt8) -> Bool {
        guard key.count == fingerprintKeyCount else { return false }
        return key.withUnsafeBufferPointer { key in
            var at = 0
            var equal = true
            walkFingerprintKey(tag: tag) { byte in
                equal = equal && at < key.count && key[at] == byte
                at += 1
            } list: { bytes in
                if equal, let source = bytes.baseAddress, let kept = key.baseAddress {
                    equal = at + bytes.count <= key.count && memcmp(kept + at, source, bytes.count) == 0
                }
                at += bytes.count
            }
            return equal && at == key.count
        }
    }

    private var fingerprintKeyCount: Int {
        7 + 2 * extensionCount + cipherSuiteBytes.count + supportedGroupBytes.count + pointFormatBytes.count
            + signatureAlgorithmBytes.count + supportedVersionBytes.count + (firstALPNBytes?.count ?? 0) + 12
    }

    /// The layout of `fingerprintKey`, for writing it and for comparing with it: a byte at a
    /// time (tag, SSLv2 form, ALPN present, version, the extension types), then each list
    /// behind its length, so no two different sets of lists read alike.
    @inline(__always)
    private func walkFingerprintKey(
        tag: UInt8,
        byte: (UInt8) -> Void,
        list: (UnsafeBufferPointer<UInt8>) -> Void
    ) {
        @inline(__always) func put16(_ value: Int) {
            byte(UInt8(truncatingIfNeeded: value >> 8))
            byte(UInt8(truncatingIfNeeded: value))
        }
        byte(tag)
        byte(isSSLv2Compatible ? 1 : 0)
        byte(firstALPNBytes == nil ? 0 : 1)
        put16(Int(legacyVersion.rawValue))
        put16(extensionCount)
        forEachExtensionType { put16(Int($0.rawValue)) }
        body.withUnsafeBufferPointer { body in
            @inline(__always) func putList(_ range: Range<Int>) {
                put16(range.count)
                if !range.isEmpty { list(UnsafeBufferPointer(rebasing: body[range])) }
            }
            putList(cipherSuiteBytes)
            putList(supportedGroupBytes)
            putList(pointFormatBytes)
            putList(signatureAlgorithmBytes)
            putList(supportedVersionBytes)
            putList(firstALPNBytes ?? 0..<0)
        }
    }

    /// Parses a ClientHello body (after the handshake header). DTLS hellos carry a cookie
    /// after the session ID (RFC 6347 4.2.1). Throws when a length contradicts its container.
    public init(parsing message: inout ByteCursor, datagram: Bool = false) throws(TLSWireError) {
        // A cursor over the body alone, so every range below is an index into the copy kept.
        // Read in place, not from the copy inside a closure: that copied the hello in and out.
        let bytes = message.unreadBytes
        _ = message.readSlice(length: message.remaining)
        var cursor = ByteCursor(bytes)
        try parseBody(&cursor, datagram: datagram)
        body = Array(bytes)
    }

    private mutating func parseBody(_ body: inout ByteCursor, datagram: Bool) throws(TLSWireError) {
        guard let version = body.readUInt16(), let random = body.readSlice(length: 32) else {
            throw TLSWireError(.decodeError, "ClientHello: shorter than version and random")
        }
        legacyVersion = ProtocolVersion(rawValue: version)
        randomBytes = random.range
        guard let sessionID = body.readLengthPrefixed(prefixBytes: 1),
            sessionID.remaining <= TLSLimits.maximumSessionIDLength
        else {
            throw TLSWireError(.decodeError, "ClientHello: bad session_id length")
        }
        sessionIDBytes = sessionID.range
        if datagram {
            // opaque cookie<0..2^8-1> (RFC 6347 4.2.1)
            guard let cookie = body.readLengthPrefixed(prefixBytes: 1) else {
                throw TLSWireError(.decodeError, "ClientHello: bad cookie length")
            }
            cookieBytes = cookie.range
        }
        guard let suites = body.readLengthPrefixed(prefixBytes: 2), suites.remaining % 2 == 0 else {
            throw TLSWireError(.decodeError, "ClientHello: bad cipher_suites length")
        }
        cipherSuiteBytes = suites.range
        guard let compression = body.readLengthPrefixed(prefixBytes: 1) else {
            throw TLSWireError(.decodeError, "ClientHello: bad compression_methods length")
        }
        compressionBytes = compression.range
        // SSLv3 and early TLS clients may end the message here (RFC 5246 7.4.1.2).
        if body.isEmpty { return }
        guard var extensions = body.readLengthPrefixed(prefixBytes: 2) else {
            throw TLSWireError(.decodeError, "ClientHello: extensions length exceeds message")
        }
        guard body.isEmpty else { throw TLSWireError(.decodeError, "ClientHello: bytes after extensions") }
        try parseExtensions(&extensions)
    }

    private mutating func parseExtensions(_ block: inout ByteCursor) throws(TLSWireError) {
        var duplicates = DuplicateCheck()
        extensionBytes = block.range
        while !block.isEmpty {
            guard extensionCount < TLSLimits.maximumExtensions,
                let rawType = block.readUInt16(), var data = block.readLengthPrefixed(prefixBytes: 2)
            else {
                throw TLSWireError(.decodeError, "ClientHello: extension length exceeds extensions block")
            }
            let type = ExtensionType(rawValue: rawType)
            extensionCount += 1
            // RFC 8446 4.2: no more than one extension of the same type.
            guard !duplicates.isDuplicate(rawType) || type.isGREASE else {
                throw TLSWireError(.illegalParameter, "ClientHello: duplicate extension \(rawType)")
            }
            try parseExtension(type, &data)
        }
    }

    private mutating func parseExtension(_ type: ExtensionType, _ data: inout ByteCursor) throws(TLSWireError) {
        switch type {
        case .serverName:
            // struct { NameType name_type; opaque HostName<1..2^16-1>; } ServerName;
            // struct { ServerName server_name_list<1..2^16-1> } ServerNameList;  (RFC 6066 3)
            guard var list = data.readLengthPrefixed(prefixBytes: 2), data.isEmpty else {
                throw TLSWireError(.decodeError, "server_name: bad list length")
            }
            while !list.isEmpty {
                guard let nameType = list.readUInt8(), let name = list.readLengthPrefixed(prefixBytes: 2) else {
                    throw TLSWireError(.decodeError, "server_name: bad name length")
                }
                if nameType == 0, serverName == nil { serverName = WireText.decode(name.unreadBytes) }
            }
        case .applicationLayerProtocolNegotiation:
            // opaque ProtocolName<1..2^8-1>; ProtocolName protocol_name_list<2..2^16-1>  (RFC 7301 3.1)
            guard var list = data.readLengthPrefixed(prefixBytes: 2), data.isEmpty else {
                throw TLSWireError(.decodeError, "ALPN: bad list length")
            }
            alpnListBytes = list.range
            while !list.isEmpty {
                guard let name = list.readLengthPrefixed(prefixBytes: 1) else {
                    throw TLSWireError(.decodeError, "ALPN: bad protocol length")
                }
                if firstALPNBytes == nil { firstALPNBytes = name.range }
            }
        case .supportedVersions:
            // ProtocolVersion versions<2..254>  (RFC 8446 4.2.1)
            guard let list = data.readLengthPrefixed(prefixBytes: 1), list.remaining % 2 == 0, data.isEmpty else {
                throw TLSWireError(.decodeError, "supported_versions: bad list length")
            }
            supportedVersionBytes = list.range
        case .sessionTicket:
            sessionTicketBytes = data.range
        case .preSharedKey:
            offersPSK = true
            // struct { opaque identity<1..2^16-1>; uint32 obfuscated_ticket_age; } PskIdentity;
            // struct { PskIdentity identities<7..2^16-1>; PskBinderEntry binders<33..2^16-1>; } OfferedPsks;
            guard var identities = data.readLengthPrefixed(prefixBytes: 2) else {
                throw TLSWireError(.decodeError, "pre_shared_key: bad identities length")
            }
            while !identities.isEmpty {
                guard var identity = identities.readLengthPrefixed(prefixBytes: 2), let age = identities.readUInt32()
                else {
                    throw TLSWireError(.decodeError, "pre_shared_key: bad identity length")
                }
                pskIdentities.append(
                    OfferedPSKIdentity(
                        identity: identity.readBytes(length: identity.remaining)!,
                        obfuscatedTicketAge: age
                    )
                )
            }
            guard var binders = data.readLengthPrefixed(prefixBytes: 2), data.isEmpty else {
                throw TLSWireError(.decodeError, "pre_shared_key: bad binders length")
            }
            while !binders.isEmpty {
                guard binders.readLengthPrefixed(prefixBytes: 1) != nil else {
                    throw TLSWireError(.decodeError, "pre_shared_key: bad binder length")
                }
                pskBinderCount += 1
            }
        case .pskKeyExchangeModes:
            // PskKeyExchangeMode ke_modes<1..255>  (RFC 8446 4.2.9)
            guard let modes = data.readLengthPrefixed(prefixBytes: 1), data.isEmpty else {
                throw TLSWireError(.decodeError, "psk_key_exchange_modes: bad length")
            }
            pskModeBytes = modes.range
        case .earlyData:
            earlyData = true
        case .keyShare, .draftKeyShare:
            // struct { NamedGroup group; opaque key_exchange<1..2^16-1>; } KeyShareEntry;
            // KeyShareEntry client_shares<0..2^16-1>  (RFC 8446 4.2.8)
            guard var shares = data.readLengthPrefixed(prefixBytes: 2), data.isEmpty else {
                throw TLSWireError(.decodeError, "key_share: bad client_shares length")
            }
            keyShareBytes = shares.range
            while !shares.isEmpty {
                guard shares.readUInt16() != nil, shares.readLengthPrefixed(prefixBytes: 2) != nil else {
                    throw TLSWireError(.decodeError, "key_share: bad key_exchange length")
                }
            }
        case .supportedGroups:
            // NamedGroup named_group_list<2..2^16-1>  (RFC 8446 4.2.7)
            guard let groups = data.readLengthPrefixed(prefixBytes: 2), groups.remaining % 2 == 0, data.isEmpty else {
                throw TLSWireError(.decodeError, "supported_groups: bad length")
            }
            supportedGroupBytes = groups.range
        case .ecPointFormats:
            // ECPointFormat ec_point_format_list<1..2^8-1>  (RFC 8422 5.1.2)
            guard let formats = data.readLengthPrefixed(prefixBytes: 1), data.isEmpty else {
                throw TLSWireError(.decodeError, "ec_point_formats: bad length")
            }
            pointFormatBytes = formats.range
        case .signatureAlgorithms:
            // SignatureScheme supported_signature_algorithms<2..2^16-2>  (RFC 8446 4.2.3)
            guard let schemes = data.readLengthPrefixed(prefixBytes: 2), schemes.remaining % 2 == 0, data.isEmpty else {
                throw TLSWireError(.decodeError, "signature_algorithms: bad length")
            }
            signatureAlgorithmBytes = schemes.range
        case .encryptedClientHello:
            encryptedClientHello = true
        case .extendedMasterSecret:
            extendedMasterSecret = true
        case .renegotiationInfo:
            renegotiationInfo = true
        default:
            break
        }
    }

    /// Parses an SSL 2.0-compatible CLIENT-HELLO body (RFC 5246 E.2), after the 2-byte
    /// record header and the msg_type byte:
    ///
    ///     Version version; uint16 cipher_spec_length; uint16 session_id_length;
    ///     uint16 challenge_length; V2CipherSpec cipher_specs[cipher_spec_length];
    ///     opaque session_id[session_id_length]; opaque challenge[challenge_length];
    public init(parsingSSLv2 body: inout ByteCursor) throws(TLSWireError) {
        guard let version = body.readUInt16(), let specLength = body.readUInt16(),
            let sessionLength = body.readUInt16(), let challengeLength = body.readUInt16(),
            specLength % 3 == 0, var specs = body.readSlice(length: Int(specLength)),
            let session = body.readBytes(length: Int(sessionLength)),
            let challenge = body.readBytes(length: Int(challengeLength)), body.isEmpty,
            challengeLength >= 16, challengeLength <= 32
        else {
            throw TLSWireError(.decodeError, "SSLv2 CLIENT-HELLO: lengths do not add up")
        }
        legacyVersion = ProtocolVersion(rawValue: version)
        // Kept in the TLS layout: random, session ID, cipher suites, compression methods.
        // The challenge is right-aligned into the 32-byte random (RFC 5246 E.2).
        self.body = [UInt8](repeating: 0, count: 32 - challenge.count) + challenge
        randomBytes = 0..<32
        self.body += session
        sessionIDBytes = 32..<self.body.count
        let suitesStart = self.body.count
        while let high = specs.readUInt8(), let suite = specs.readUInt16() {
            // V2CipherSpecs with a non-zero first byte are SSL 2.0 ciphers with no TLS number.
            if high == 0 { self.body += [UInt8(suite >> 8), UInt8(suite & 0xff)] }
        }
        cipherSuiteBytes = suitesStart..<self.body.count
        self.body.append(0)
        compressionBytes = (self.body.count - 1)..<self.body.count
        isSSLv2Compatible = true
    }
}

/// A ServerHello (or HelloRetryRequest) with the fields tlsreuse uses.
///
///     struct {
///         ProtocolVersion legacy_version = 0x0303;    /* TLS v1.2 */
///         Random random;
///         opaque legacy_session_id_echo<0..32>;
///         CipherSuite cipher_suite;
///         uint8 legacy_compression_method = 0;
///         Extension extensions<6..2^16-1>;
///     } ServerHello;                                  (RFC 8446 4.1.3)
///
/// TLS 1.3 drafts before 22 had no session ID and no compression method:
///     struct { ProtocolVersion version; Random random; CipherSuite cipher_suite;
///              Extension extensions<0..2^16-1>; } ServerHello;   (draft-ietf-tls-tls13-21 4.1.3)
public struct ServerHello: Sendable {
    public var legacyVersion = ProtocolVersion.tls1_2
    public var random: [UInt8] = []
    /// nil in the draft layout, which has no session ID.
    public var sessionID: [UInt8]?
    public var cipherSuite = CipherSuite(rawValue: 0)
    public var compressionMethod: UInt8 = 0
    public var extensionTypes: [ExtensionType] = []
    /// From supported_versions (RFC 8446 4.2.1).
    public var selectedVersion: ProtocolVersion?
    /// From pre_shared_key: which offered identity the server accepted.
    public var selectedPSKIdentity: UInt16?
    public var alpn: String?
    public var keyShareGroup: NamedGroup?
    public var extendedMasterSecret = false
    /// An empty session_ticket extension: the server will send a NewSessionTicket (RFC 5077 3.2).
    public var promisesTicket = false
    public var renegotiationInfo = false
    /// The random is the HelloRetryRequest constant, or the message was the draft
    /// hello_retry_request type.
    public var isHelloRetryRequest = false

    public init() {}

    /// The version the server chose: supported_versions when present, else legacy_version.
    public var negotiatedVersion: ProtocolVersion { selectedVersion ?? legacyVersion }

    /// Parses a ServerHello body (after the 4-byte handshake header).
    public init(parsing body: inout ByteCursor) throws(TLSWireError) {
        guard let version = body.readUInt16(), let random = body.readBytes(length: 32) else {
            throw TLSWireError(.decodeError, "ServerHello: shorter than version and random")
        }
        legacyVersion = ProtocolVersion(rawValue: version)
        self.random = random
        isHelloRetryRequest = random == helloRetryRequestRandom
        let draftLayout = legacyVersion.rawValue >> 8 == 0x7f && (legacyVersion.draftNumber ?? 99) < 22
        if !draftLayout {
            guard var session = body.readLengthPrefixed(prefixBytes: 1),
                session.remaining <= TLSLimits.maximumSessionIDLength
            else {
                throw TLSWireError(.decodeError, "ServerHello: bad session_id length")
            }
            sessionID = session.readBytes(length: session.remaining)!
        }
        guard let suite = body.readUInt16() else { throw TLSWireError(.decodeError, "ServerHello: no cipher_suite") }
        cipherSuite = CipherSuite(rawValue: suite)
        if !draftLayout {
            guard let compression = body.readUInt8() else {
                throw TLSWireError(.decodeError, "ServerHello: no compression_method")
            }
            compressionMethod = compression
        }
        if body.isEmpty { return }
        guard var extensions = body.readLengthPrefixed(prefixBytes: 2), body.isEmpty else {
            throw TLSWireError(.decodeError, "ServerHello: extensions length does not match message")
        }
        try parseExtensions(&extensions)
    }

    /// Parses a draft hello_retry_request (type 6, drafts up to 21):
    ///     struct { ProtocolVersion server_version; [CipherSuite cipher_suite;] Extension extensions<2..2^16-1>; }
    public init(parsingDraftRetryRequest body: inout ByteCursor) throws(TLSWireError) {
        guard let version = body.readUInt16() else { throw TLSWireError(.decodeError, "HelloRetryRequest: empty") }
        legacyVersion = ProtocolVersion(rawValue: version)
        isHelloRetryRequest = true
        // Drafts 19-21 added the cipher suite; the remaining length tells which layout this is.
        if body.remaining >= 4, let peeked = body.peekUInt8(), let second = body.peekUInt8(at: 1),
            (Int(peeked) << 8 | Int(second)) + 2 != body.remaining
        {
            cipherSuite = CipherSuite(rawValue: body.readUInt16()!)
        }
        guard var extensions = body.readLengthPrefixed(prefixBytes: 2), body.isEmpty else {
            throw TLSWireError(.decodeError, "HelloRetryRequest: extensions length does not match message")
        }
        try parseExtensions(&extensions)
    }

    private mutating func parseExtensions(_ block: inout ByteCursor) throws(TLSWireError) {
        var duplicates = DuplicateCheck()
        // Most hellos carry up to 24 extensions: one allocation for their types.
        extensionTypes.reserveCapacity(min(block.remaining / 4, 24))
        while !block.isEmpty {
            guard extensionTypes.count < TLSLimits.maximumExtensions,
                let rawType = block.readUInt16(), var data = block.readLengthPrefixed(prefixBytes: 2)
            else {
                throw TLSWireError(.decodeError, "ServerHello: extension length exceeds extensions block")
            }
            let type = ExtensionType(rawValue: rawType)
            guard !duplicates.isDuplicate(rawType) else {
                throw TLSWireError(.illegalParameter, "ServerHello: duplicate extension \(rawType)")
            }
            extensionTypes.append(type)
            switch type {
            case .supportedVersions:
                guard let version = data.readUInt16(), data.isEmpty else {
                    throw TLSWireError(.decodeError, "supported_versions: not one version")
                }
                selectedVersion = ProtocolVersion(rawValue: version)
            case .preSharedKey:
                guard let selected = data.readUInt16(), data.isEmpty else {
                    throw TLSWireError(.decodeError, "pre_shared_key: not one selected_identity")
                }
                selectedPSKIdentity = selected
            case .applicationLayerProtocolNegotiation:
                guard var list = data.readLengthPrefixed(prefixBytes: 2),
                    let name = list.readLengthPrefixed(prefixBytes: 1)
                else {
                    throw TLSWireError(.decodeError, "ALPN: bad selected protocol")
                }
                alpn = WireText.decode(name.unreadBytes)
            case .keyShare, .draftKeyShare:
                // ServerHello: KeyShareEntry server_share; HelloRetryRequest: NamedGroup selected_group.
                guard let group = data.readUInt16() else { throw TLSWireError(.decodeError, "key_share: empty") }
                keyShareGroup = NamedGroup(rawValue: group)
            case .sessionTicket:
                promisesTicket = true
            case .extendedMasterSecret:
                extendedMasterSecret = true
            case .renegotiationInfo:
                renegotiationInfo = true
            default:
                break
            }
        }
    }
}

/// NewSessionTicket before TLS 1.3 (RFC 5077 3.3), sent in the clear:
///     struct { uint32 ticket_lifetime_hint; opaque ticket<0..2^16-1>; } NewSessionTicket;
public struct NewSessionTicket: Sendable {
    /// ticket_lifetime_hint (RFC 5077 3.3), or TLS 1.3's ticket_lifetime (RFC 8446 4.6.1): seconds.
    public var lifetimeHint: UInt32
    public var ticket: [UInt8]
    /// TLS 1.3 only: ticket_age_add, which the client adds to the ticket's age when it
    /// offers it (RFC 8446 4.2.11.1).
    public var ticketAgeAdd: UInt32?
    /// TLS 1.3 only: max_early_data_size of the early_data extension (RFC 8446 4.2.10), when sent.
    public var maxEarlyData: UInt32?

    /// Before TLS 1.3 (RFC 5077 3.3):
    ///     struct { uint32 ticket_lifetime_hint; opaque ticket<0..2^16-1>; } NewSessionTicket;
    public init(parsing body: inout ByteCursor) throws(TLSWireError) {
        guard let hint = body.readUInt32(), var ticket = body.readLengthPrefixed(prefixBytes: 2), body.isEmpty else {
            throw TLSWireError(.decodeError, "NewSessionTicket: ticket length does not match message")
        }
        lifetimeHint = hint
        self.ticket = ticket.readBytes(length: ticket.remaining)!
    }

    /// TLS 1.3 (RFC 8446 4.6.1):
    ///     struct { uint32 ticket_lifetime; uint32 ticket_age_add; opaque ticket_nonce<0..255>;
    ///              opaque ticket<1..2^16-1>; Extension extensions<0..2^16-2>; } NewSessionTicket;
    public init(parsingTLS13 body: inout ByteCursor) throws(TLSWireError) {
        guard let lifetime = body.readUInt32(), let ageAdd = body.readUInt32(),
            body.readLengthPrefixed(prefixBytes: 1) != nil, var ticket = body.readLengthPrefixed(prefixBytes: 2),
            ticket.remaining > 0, var extensions = body.readLengthPrefixed(prefixBytes: 2), body.isEmpty
        else {
            throw TLSWireError(.decodeError, "NewSessionTicket: lengths do not match message")
        }
        lifetimeHint = lifetime
        ticketAgeAdd = ageAdd
        self.ticket = ticket.readBytes(length: ticket.remaining)!
        var seen = 0
        while !extensions.isEmpty {
            seen += 1
            guard seen <= TLSLimits.maximumExtensions, let type = extensions.readUInt16(),
                var data = extensions.readLengthPrefixed(prefixBytes: 2)
            else {
                throw TLSWireError(.decodeError, "NewSessionTicket: extension length exceeds block")
            }
            // struct { uint32 max_early_data_size; } in NewSessionTicket (RFC 8446 4.2.10)
            if ExtensionType(rawValue: type) == .earlyData {
                guard let size = data.readUInt32(), data.isEmpty else {
                    throw TLSWireError(.decodeError, "NewSessionTicket: early_data is not 4 bytes")
                }
                maxEarlyData = size
            }
        }
    }
}

/// EncryptedExtensions (RFC 8446 4.3.1): the server's extensions that need no key exchange.
///     struct { Extension extensions<0..2^16-1>; } EncryptedExtensions;
public struct EncryptedExtensions: Sendable {
    /// Extension types in wire order.
    public var extensionTypes: [ExtensionType] = []
    /// The server accepted the client's 0-RTT data: early_data is present (RFC 8446 4.2.10).
    public var earlyDataAccepted: Bool { extensionTypes.contains(.earlyData) }

    public init(parsing body: inout ByteCursor) throws(TLSWireError) {
        guard var block = body.readLengthPrefixed(prefixBytes: 2), body.isEmpty else {
            throw TLSWireError(.decodeError, "EncryptedExtensions: length does not match message")
        }
        while !block.isEmpty {
            guard extensionTypes.count < TLSLimits.maximumExtensions, let type = block.readUInt16(),
                block.readLengthPrefixed(prefixBytes: 2) != nil
            else {
                throw TLSWireError(.decodeError, "EncryptedExtensions: extension length exceeds block")
            }
            extensionTypes.append(ExtensionType(rawValue: type))
        }
    }
}

/// Certificate before TLS 1.3 (RFC 5246 7.4.2), kept as DER for fingerprints:
///     opaque ASN.1Cert<1..2^24-1>;
///     struct { ASN.1Cert certificate_list<0..2^24-1>; } Certificate;
public struct CertificateChain: Sendable {
    public var certificates: [[UInt8]]

    /// Certificates kept per chain; real chains hold 2-4.
    public static let maximumCertificates = 16

    public init(parsing body: inout ByteCursor) throws(TLSWireError) {
        guard var list = body.readLengthPrefixed(prefixBytes: 3), body.isEmpty else {
            throw TLSWireError(.decodeError, "Certificate: list length does not match message")
        }
        certificates = []
        while !list.isEmpty {
            guard var certificate = list.readLengthPrefixed(prefixBytes: 3), certificate.remaining > 0 else {
                throw TLSWireError(.decodeError, "Certificate: certificate length exceeds list")
            }
            if certificates.count < CertificateChain.maximumCertificates {
                certificates.append(certificate.readBytes(length: certificate.remaining)!)
            }
        }
    }

    /// TLS 1.3 (RFC 8446 4.4.2), X.509 entries:
    ///     struct { opaque cert_data<1..2^24-1>; Extension extensions<0..2^16-1>; } CertificateEntry;
    ///     struct { opaque certificate_request_context<0..2^8-1>;
    ///              CertificateEntry certificate_list<0..2^24-1>; } Certificate;
    public init(parsingTLS13 body: inout ByteCursor) throws(TLSWireError) {
        guard body.readLengthPrefixed(prefixBytes: 1) != nil, var list = body.readLengthPrefixed(prefixBytes: 3),
            body.isEmpty
        else {
            throw TLSWireError(.decodeError, "Certificate: list length does not match message")
        }
        certificates = []
        while !list.isEmpty {
            guard var certificate = list.readLengthPrefixed(prefixBytes: 3), certificate.remaining > 0,
                list.readLengthPrefixed(prefixBytes: 2) != nil
            else {
                throw TLSWireError(.decodeError, "Certificate: entry length exceeds list")
            }
            if certificates.count < CertificateChain.maximumCertificates {
                certificates.append(certificate.readBytes(length: certificate.remaining)!)
            }
        }
    }
}

/// SSL 2.0 SERVER-HELLO, sent when a server answers a v2-compatible hello in SSL 2.0:
///     uint8 msg_type = 4; uint8 session_id_hit; uint8 certificate_type; Version server_version;
///     uint16 certificate_length; uint16 cipher_specs_length; uint16 connection_id_length; ...
public struct SSLv2ServerHello: Sendable {
    public var sessionIDHit: Bool
    public var version: ProtocolVersion
}

/// A range of a hello's body in 8 bytes rather than 16: a handshake message is shorter than
/// 2^24 bytes (RFC 8446 4), and a flow that waits for its server keeps its ClientHello.
@propertyWrapper
struct BodyRange: Sendable {
    private var lower: UInt32
    private var upper: UInt32

    init(wrappedValue: Range<Int>) {
        lower = UInt32(truncatingIfNeeded: wrappedValue.lowerBound)
        upper = UInt32(truncatingIfNeeded: wrappedValue.upperBound)
    }

    var wrappedValue: Range<Int> {
        get { Int(lower)..<Int(upper) }
        set { self = BodyRange(wrappedValue: newValue) }
    }
}

/// `BodyRange` for a part the hello may lack.
@propertyWrapper
struct OptionalBodyRange: Sendable {
    private var lower = UInt32.max
    private var upper = UInt32.max

    init(wrappedValue: Range<Int>?) {
        guard let range = wrappedValue else { return }
        lower = UInt32(truncatingIfNeeded: range.lowerBound)
        upper = UInt32(truncatingIfNeeded: range.upperBound)
    }

    var wrappedValue: Range<Int>? {
        get { lower == .max ? nil : Int(lower)..<Int(upper) }
        set { self = OptionalBodyRange(wrappedValue: newValue) }
    }
}
