import FoundationEssentials

/// QUIC versions whose Initial packets anyone can decrypt (RFC 9001 5.2, RFC 9369 3).
public struct QUICVersion: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let v1 = QUICVersion(rawValue: 0x0000_0001)
    public static let v2 = QUICVersion(rawValue: 0x6b33_43cf)

    /// initial_salt (RFC 9001 5.2, RFC 9369 3.3.1).
    var initialSalt: [UInt8]? {
        switch self {
        case .v1:
            return [
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc,
                0xbb, 0x7f, 0x0a,
            ]
        case .v2:
            return [
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9,
                0xbd, 0x2e, 0xd9,
            ]
        default: return nil
        }
    }

    /// HMAC-SHA256 keyed with initial_salt, its padded blocks hashed once per process:
    /// HKDF-Extract of every connection ID's initial_secret (RFC 9001 5.2) starts from it.
    var initialSaltKey: HMACSHA256? {
        switch self {
        case .v1: Self.saltKeyV1
        case .v2: Self.saltKeyV2
        default: nil
        }
    }
    private static let saltKeyV1 = v1.initialSalt!.withUnsafeBytes { HMACSHA256(key: $0) }
    private static let saltKeyV2 = v2.initialSalt!.withUnsafeBytes { HMACSHA256(key: $0) }

    /// Label prefix of the packet protection keys (RFC 9369 3.3.2).
    var labelPrefix: String { self == .v2 ? "quicv2 " : "quic " }

    /// Long header packet type bits of Initial and Retry (RFC 9369 3.2 swaps them).
    var initialType: UInt8 { self == .v2 ? 1 : 0 }
    var retryType: UInt8 { self == .v2 ? 0 : 3 }
}

/// Packet protection keys of one direction's Initial packets.
public struct QUICInitialKeys: Sendable {
    private(set) var packetKeys: QUICPacketKeys

    /// The key, IV and header protection key as bytes (AEAD_AES_128_GCM, RFC 9001 5.2: 16,
    /// 12 and 16 bytes): 48 bytes inline, where the keys set up for use (the AEAD context,
    /// the AES schedules) span about a kilobyte. What the Initial key cache keeps per
    /// connection ID, so that its entries stay small and warm.
    public struct Material: Sendable {
        /// The key at 0, the IV at 16, the header protection key at 32.
        fileprivate var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        static let keyBytes = 16
        static let ivBytes = TLS13CipherSuite.ivLength
        static let headerProtectionBytes = 16

        fileprivate func withParts<Result>(
            _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Result
        ) -> Result {
            withUnsafeBytes(of: words) { all in
                body(
                    UnsafeRawBufferPointer(rebasing: all[0..<Self.keyBytes]),
                    UnsafeRawBufferPointer(rebasing: all[16..<(16 + Self.ivBytes)]),
                    UnsafeRawBufferPointer(rebasing: all[32..<(32 + Self.headerProtectionBytes)])
                )
            }
        }
    }

    /// Derives the client's or the server's keys from the client's Destination Connection ID.
    public init?(version: QUICVersion, destinationConnectionID: QUICConnectionID, server: Bool) {
        guard let material = ID(version: version, connectionID: destinationConnectionID, server: server).material
        else { return nil }
        self.init(material)
    }

    /// The keys of `material`, set up for use.
    public init?(_ material: Material) {
        guard
            let keys = material.withParts({
                // Initial packets are protected with AEAD_AES_128_GCM (RFC 9001 5.2).
                QUICPacketKeys(suite: .aes128GCM, key: $0, iv: $1, headerProtection: $2)
            })
        else { return nil }
        packetKeys = keys
    }

    /// `init(_:)` into these keys' own storage, when nothing else holds it: a cache that
    /// replaces keys allocates nothing. False when shared or refused: then these keys must
    /// not be used (shared ones are unchanged).
    public mutating func rekey(_ material: Material) -> Bool {
        guard packetKeys.isUniquelyHeld() else { return false }
        return material.withParts { packetKeys.rekey(suite: .aes128GCM, key: $0, iv: $1, headerProtection: $2) }
    }

    /// `rekey` with the keys of another connection ID.
    public mutating func rederive(version: QUICVersion, destinationConnectionID: QUICConnectionID, server: Bool) -> Bool
    {
        guard packetKeys.isUniquelyHeld(),
            let material = ID(version: version, connectionID: destinationConnectionID, server: server).material
        else { return false }
        return rekey(material)
    }

    /// Whose Initial keys: the version, the client's first Destination Connection ID, and
    /// the direction. The key of the Initial key cache, and where the keys come from.
    public struct ID: Equatable, Sendable {
        public var version: QUICVersion
        public var connectionID: QUICConnectionID
        public var server: Bool

        public init(version: QUICVersion, connectionID: QUICConnectionID, server: Bool) {
            self.version = version
            self.connectionID = connectionID
            self.server = server
        }

        /// The key, IV and header protection key, every secret on the stack: initial_secret,
        /// then client_initial_secret or server_initial_secret (5.2), then the three (5.1). A
        /// flood of Initials, each under its own connection ID, derives them for every
        /// packet (issue 14).
        public var material: Material? {
            guard let saltKey = version.initialSaltKey else { return nil }
            var secrets = (
                (UInt64(0), UInt64(0), UInt64(0), UInt64(0)),
                (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            )
            var material = Material()
            let labels = QUICPacketKeys.packetProtectionLabels(version: version, suite: .aes128GCM)
            let lengths = [Material.keyBytes, Material.ivBytes, Material.headerProtectionBytes]
            guard labels.map(\.length) == lengths else { return nil }
            let derived = withUnsafeMutableBytes(of: &secrets) { secrets in
                withUnsafeMutableBytes(of: &material.words) { parts in
                    let initial = UnsafeMutableRawBufferPointer(rebasing: secrets[..<32])
                    let direction = UnsafeMutableRawBufferPointer(rebasing: secrets[32...])
                    connectionID.withUnsafeBytes { id in
                        saltKey.authenticate(
                            id,
                            UnsafeRawBufferPointer(start: nil, count: 0),
                            into: initial.bindMemory(to: UInt8.self)
                        )
                    }
                    guard
                        HMACSHA256(key: UnsafeRawBufferPointer(initial)).expand(
                            server ? QUICInitialKeys.serverIn : QUICInitialKeys.clientIn,
                            into: direction
                        )
                    else { return false }
                    let secretKey = HMACSHA256(key: UnsafeRawBufferPointer(direction))
                    for (index, label) in labels.enumerated() {
                        let part = UnsafeMutableRawBufferPointer(
                            rebasing: parts[(16 * index)..<(16 * index + label.length)]
                        )
                        guard secretKey.expand(label, into: part) else { return false }
                    }
                    return true
                }
            }
            return derived ? material : nil
        }
    }

    /// client_initial_secret or server_initial_secret (RFC 9001 5.2).
    static func secret(version: QUICVersion, destinationConnectionID: [UInt8], server: Bool) -> [UInt8]? {
        guard let salt = version.initialSalt else { return nil }
        let initial = KeyDerivation.extract(.sha256, salt: salt, inputKeyMaterial: destinationConnectionID)
        let secret = KeyDerivation.expandLabels(.sha256, secret: initial, [server ? serverIn : clientIn])[0]
        return secret.count == 32 ? secret : nil
    }
    private static let clientIn = HKDFLabel("client in", length: 32)
    private static let serverIn = HKDFLabel("server in", length: 32)
}

/// A connection ID, held inline: at most 20 bytes in QUIC v1 and v2 (RFC 9000 17.2), so
/// reading a packet's header allocates nothing.
public struct QUICConnectionID: Hashable, Sendable {
    public static let maximumLength = 20
    private var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
    public private(set) var count = 0

    /// Nil when `bytes` is longer than `maximumLength`.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count <= Self.maximumLength else { return nil }
        Swift.withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: bytes) }
        count = bytes.count
    }

    public init?(_ bytes: [UInt8]) {
        guard let id = bytes.withUnsafeBytes({ QUICConnectionID($0) }) else { return nil }
        self = id
    }

    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try Swift.withUnsafeBytes(of: words) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    public static func == (a: QUICConnectionID, b: QUICConnectionID) -> Bool {
        a.count == b.count && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
    }

    /// The ID's bytes as three words (zero past `count`), for a keyed hash of one's own.
    public var packedWords: (UInt64, UInt64, UInt64) { words }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
    }
}

/// What one long header packet of a datagram is.
public enum QUICLongPacket {
    /// An Initial packet, decrypted: where its frames lie in the `plaintext` buffer given to
    /// `QUICDatagram.packets`.
    case initial(
        version: QUICVersion,
        destinationConnectionID: QUICConnectionID,
        sourceConnectionID: QUICConnectionID,
        payload: Range<Int>
    )
    /// A Retry (RFC 9000 17.2.5): the client's next Initial uses `sourceConnectionID` as its DCID.
    case retry(version: QUICVersion, sourceConnectionID: QUICConnectionID)
    /// Version Negotiation (RFC 9000 17.2.1).
    case versionNegotiation
    /// 0-RTT or Handshake packets: protected with keys an observer does not have (a key log
    /// gives the Handshake ones, `QUICDatagram.open`). `packet` is where it lies in the
    /// datagram, `packetNumberOffset` where its packet number starts within it.
    case protected(version: QUICVersion, type: UInt8, packet: Range<Int>, packetNumberOffset: Int)
    /// A short header (1-RTT) packet, which takes the rest of the datagram (RFC 9000 12.2):
    /// where it starts.
    case shortHeader(start: Int)
    /// An Initial that did not decrypt (another DCID's keys, corruption), or an unknown version.
    case undecryptable
}

/// Reads the packets of a UDP datagram (RFC 9000 12.2: coalesced packets) and removes the
/// protection of Initial packets (RFC 9001 5).
public enum QUICDatagram {
    /// Coalesced packets followed in one datagram (an Initial, a 0-RTT, a Handshake, and spares).
    static let maximumPacketsPerDatagram = 8

    /// Whether a datagram starts with a QUIC v1 or v2 long header Initial packet.
    public static func startsWithInitial(_ datagram: UnsafeRawBufferPointer) -> Bool {
        guard datagram.count >= 7, datagram[0] & 0xc0 == 0xc0 else { return false }
        let version = QUICVersion(
            rawValue: UInt32(datagram[1]) << 24 | UInt32(datagram[2]) << 16 | UInt32(datagram[3]) << 8
                | UInt32(datagram[4])
        )
        guard version == .v1 || version == .v2 else { return false }
        return (datagram[0] >> 4) & 0x03 == version.initialType
    }

    /// The long header packets of a datagram, in order; `keys` gives the Initial keys for a
    /// packet's version and Destination Connection ID (nil: use the packet's own DCID, as
    /// for a client's Initial). Decrypted Initial payloads are appended to `plaintext`, a
    /// buffer the caller reuses.
    public static func packets(
        _ datagram: UnsafeRawBufferPointer,
        plaintext: inout [UInt8],
        keys: (QUICVersion, QUICConnectionID) -> QUICInitialKeys?
    ) -> [QUICLongPacket] {
        var packets: [QUICLongPacket] = []
        self.packets(datagram, plaintext: &plaintext, appendingTo: &packets, keys: keys)
        return packets
    }

    /// `packets`, appended to a list the caller reuses (an array per datagram cost a QUIC
    /// Initial flood an allocation per packet).
    public static func packets(
        _ datagram: UnsafeRawBufferPointer,
        plaintext: inout [UInt8],
        appendingTo packets: inout [QUICLongPacket],
        keys: (QUICVersion, QUICConnectionID) -> QUICInitialKeys?
    ) {
        let firstIndex = packets.count
        var offset = 0
        while offset < datagram.count, packets.count - firstIndex < maximumPacketsPerDatagram {
            let first = datagram[offset]
            guard first & 0x80 != 0 else {
                // A short header packet takes the rest (RFC 9000 12.2).
                packets.append(.shortHeader(start: offset))
                break
            }
            var cursor = ByteCursor(UnsafeRawBufferPointer(rebasing: datagram[offset...]))
            _ = cursor.readUInt8()
            guard let versionValue = cursor.readUInt32(), let dcid = cursor.readLengthPrefixed(prefixBytes: 1),
                let scid = cursor.readLengthPrefixed(prefixBytes: 1)
            else {
                packets.append(.undecryptable)
                break
            }
            let version = QUICVersion(rawValue: versionValue)
            if versionValue == 0 {
                packets.append(.versionNegotiation)
                break
            }
            guard version == .v1 || version == .v2, let destination = QUICConnectionID(dcid.unreadBytes),
                let source = QUICConnectionID(scid.unreadBytes)
            else {
                packets.append(.undecryptable)
                break
            }
            let type = (first >> 4) & 0x03
            if type == version.retryType {
                packets.append(.retry(version: version, sourceConnectionID: source))
                break
            }
            if type == version.initialType {
                guard let tokenLength = cursor.readVarint(), cursor.readSlice(length: Int(clamping: tokenLength)) != nil
                else {
                    packets.append(.undecryptable)
                    break
                }
            }
            guard let length = cursor.readVarint(), Int(clamping: length) <= cursor.remaining else {
                packets.append(.undecryptable)
                break
            }
            let headerLength = cursor.position
            let packetEnd = offset + headerLength + Int(length)
            if type == version.initialType {
                let packet = UnsafeRawBufferPointer(rebasing: datagram[offset..<packetEnd])
                if let keys = keys(version, destination),
                    let (payload, _) = open(
                        packet,
                        packetNumberOffset: headerLength,
                        keys: keys.packetKeys,
                        appendingTo: &plaintext
                    )
                {
                    packets.append(
                        .initial(
                            version: version,
                            destinationConnectionID: destination,
                            sourceConnectionID: source,
                            payload: payload
                        )
                    )
                } else {
                    packets.append(.undecryptable)
                }
            } else {
                packets.append(
                    .protected(
                        version: version,
                        type: type,
                        packet: offset..<packetEnd,
                        packetNumberOffset: headerLength
                    )
                )
            }
            offset = packetEnd
        }
    }

    /// Removes header protection (RFC 9001 5.4) and opens the AEAD (5.3): the payload and
    /// the full packet number, recovered from its truncated form next to `largest`, the
    /// largest packet number opened in the same space (-1 before any; RFC 9000 A.3). Nil
    /// when it fails.
    public static func open(
        _ packet: UnsafeRawBufferPointer,
        packetNumberOffset: Int,
        keys: QUICPacketKeys,
        largest: Int64 = -1
    ) -> (payload: [UInt8], number: Int64)? {
        var plaintext: [UInt8] = []
        guard
            let (_, number) = open(
                packet,
                packetNumberOffset: packetNumberOffset,
                keys: keys,
                largest: largest,
                appendingTo: &plaintext
            )
        else { return nil }
        return (plaintext, number)
    }

    /// `open` into the end of `plaintext`, a buffer the caller reuses: where the payload lies.
    public static func open(
        _ packet: UnsafeRawBufferPointer,
        packetNumberOffset: Int,
        keys: QUICPacketKeys,
        largest: Int64 = -1,
        appendingTo plaintext: inout [UInt8]
    ) -> (payload: Range<Int>, number: Int64)? {
        // The sample starts 4 bytes after the start of the packet number (RFC 9001 5.4.2).
        guard packet.count >= packetNumberOffset + 4 + 16,
            let mask = keys.headerProtectionMask(
                sample: UnsafeRawBufferPointer(rebasing: packet[(packetNumberOffset + 4)..<(packetNumberOffset + 20)])
            )
        else { return nil }
        // Long headers protect the low 4 bits of the first byte, short headers the low 5 (5.4.1).
        let first = packet[0] ^ (mask.0 & (packet[0] & 0x80 != 0 ? 0x0f : 0x1f))
        let packetNumberLength = Int(first & 0x03) + 1
        let ciphertextStart = packetNumberOffset + packetNumberLength
        guard packet.count >= ciphertextStart + 16 else { return nil }
        // The header unprotected is the associated data (RFC 9001 5.3), built on the stack.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: ciphertextStart) { header in
            UnsafeMutableRawBufferPointer(header).copyMemory(
                from: UnsafeRawBufferPointer(rebasing: packet[0..<ciphertextStart])
            )
            header[0] = first
            var truncated: Int64 = 0
            for i in 0..<packetNumberLength {
                header[packetNumberOffset + i] ^= i == 0 ? mask.1 : i == 1 ? mask.2 : i == 2 ? mask.3 : mask.4
                truncated = truncated << 8 | Int64(header[packetNumberOffset + i])
            }
            let number = decodePacketNumber(largest: largest, truncated: truncated, bits: packetNumberLength * 8)
            guard
                let payload = keys.open(
                    UnsafeRawBufferPointer(rebasing: packet[ciphertextStart...]),
                    packetNumber: number,
                    header: UnsafeRawBufferPointer(header),
                    appendingTo: &plaintext
                )
            else { return nil }
            return (payload, number)
        }
    }

    /// The full packet number nearest to the next expected one (RFC 9000 A.3).
    static func decodePacketNumber(largest: Int64, truncated: Int64, bits: Int) -> Int64 {
        let expected = largest &+ 1
        let window = Int64(1) << bits
        let halfWindow = window / 2
        let mask = window - 1
        let candidate = (expected & ~mask) | truncated
        if candidate <= expected - halfWindow, candidate < (Int64(1) << 62) - window { return candidate + window }
        if candidate > expected + halfWindow, candidate >= window { return candidate - window }
        return candidate
    }

    /// The Destination Connection ID and packet number offset of a short header packet
    /// (RFC 9000 17.3.1), given the ID's length, which the header does not carry.
    public static func shortHeaderPacketNumberOffset(connectionIDLength: Int) -> Int { 1 + connectionIDLength }

    /// The CRYPTO frames of a decrypted Initial or Handshake payload (RFC 9000 19.6), each
    /// handed to `each` as its stream offset and data, in order; nil, with none handed on,
    /// when a frame not allowed in those packets or a bad length appears (12.4); otherwise
    /// whether a CONNECTION_CLOSE ended the payload. `everyFrameType` reads 1-RTT payloads,
    /// which may hold any frame (19).
    public static func cryptoFrames(
        _ payload: UnsafeRawBufferPointer,
        everyFrameType: Bool = false,
        each: (_ offset: Int, _ data: UnsafeRawBufferPointer) -> Void
    ) -> Bool? {
        // Checked whole first, then read again to hand the frames on: no list is built.
        guard let closed = walkFrames(payload, everyFrameType: everyFrameType, each: { _, _ in }) else { return nil }
        _ = walkFrames(payload, everyFrameType: everyFrameType, each: each)
        return closed
    }

    private static func walkFrames(
        _ payload: UnsafeRawBufferPointer,
        everyFrameType: Bool,
        each: (_ offset: Int, _ data: UnsafeRawBufferPointer) -> Void
    ) -> Bool? {
        var cursor = ByteCursor(payload)
        while let type = cursor.readVarint() {
            switch type {
            case 0x00, 0x01: continue  // PADDING, PING
            case 0x02, 0x03:  // ACK: largest, delay, range count, first range, ranges, ECN counts
                guard cursor.readVarint() != nil, cursor.readVarint() != nil, let count = cursor.readVarint(),
                    cursor.readVarint() != nil, count <= 1024
                else { return nil }
                for _ in 0..<(count * 2) { guard cursor.readVarint() != nil else { return nil } }
                if type == 0x03 { for _ in 0..<3 { guard cursor.readVarint() != nil else { return nil } } }
            case 0x06:
                guard let offset = cursor.readVarint(), let length = cursor.readVarint(),
                    let data = cursor.readSlice(length: Int(clamping: length))
                else { return nil }
                each(Int(clamping: offset), data.unreadBytes)
            case 0x1c, 0x1d:  // CONNECTION_CLOSE
                return true
            default:
                guard everyFrameType, cursor.skipApplicationFrame(type) else { return nil }
            }
        }
        return false
    }
}

extension ByteCursor {
    /// Passes over one frame of a 1-RTT packet other than PADDING, PING, ACK, CRYPTO and
    /// CONNECTION_CLOSE, its type read (RFC 9000 19); false for an unknown type or when bytes
    /// are short.
    mutating func skipApplicationFrame(_ type: UInt64) -> Bool {
        func varints(_ count: Int) -> Bool {
            for _ in 0..<count { guard readVarint() != nil else { return false } }
            return true
        }
        switch type {
        case 0x04: return varints(3)  // RESET_STREAM
        case 0x05: return varints(2)  // STOP_SENDING
        case 0x07:  // NEW_TOKEN
            guard let length = readVarint() else { return false }
            return readSlice(length: Int(clamping: length)) != nil
        case 0x08...0x0f:  // STREAM: OFF, LEN and FIN bits (19.8)
            guard readVarint() != nil else { return false }
            if type & 0x04 != 0, readVarint() == nil { return false }
            if type & 0x02 != 0 {
                guard let length = readVarint() else { return false }
                return readSlice(length: Int(clamping: length)) != nil
            }
            _ = readSlice(length: remaining)  // no length: to the end of the packet
            return true
        case 0x10, 0x12, 0x13, 0x14, 0x16, 0x17, 0x19: return varints(1)  // MAX_DATA ... RETIRE_CONNECTION_ID
        case 0x11, 0x15: return varints(2)  // MAX_STREAM_DATA, STREAM_DATA_BLOCKED
        case 0x18:  // NEW_CONNECTION_ID: sequence, retire prior to, length, ID, 16-byte reset token
            guard varints(2), let length = readUInt8(), length <= 20 else { return false }
            return readSlice(length: Int(length) + 16) != nil
        case 0x1a, 0x1b: return readSlice(length: 8) != nil  // PATH_CHALLENGE, PATH_RESPONSE
        case 0x1e: return true  // HANDSHAKE_DONE
        case 0x30:  // DATAGRAM without length (RFC 9221)
            _ = readSlice(length: remaining)
            return true
        case 0x31:
            guard let length = readVarint() else { return false }
            return readSlice(length: Int(clamping: length)) != nil
        default: return false
        }
    }

    /// A QUIC variable-length integer (RFC 9000 16); nil (cursor unmoved) when bytes are short.
    mutating func readVarint() -> UInt64? {
        guard let first = peekUInt8() else { return nil }
        let length = 1 << Int(first >> 6)
        guard remaining >= length else { return nil }
        var value = UInt64(first & 0x3f)
        for index in 1..<length { value = value << 8 | UInt64(peekUInt8(at: index)!) }
        _ = readSlice(length: length)
        return value
    }
}
