import Crypto
import FoundationEssentials
import Packets
import TLSWire

#if canImport(Glibc)
import Glibc
#endif

/// Lowercase hex of `bytes` ("" when empty), built in place in the string's own storage.
public func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    if let contiguous = bytes.withContiguousStorageIfAvailable({ hexString(bytes: UnsafeRawBufferPointer($0)) }) {
        return contiguous
    }
    let digits: StaticString = "0123456789abcdef"
    return String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
        digits.withUTF8Buffer { table in
            var i = 0
            for byte in bytes {
                buffer[i] = table[Int(byte >> 4)]
                buffer[i + 1] = table[Int(byte & 0x0f)]
                i += 2
            }
        }
        return bytes.count * 2
    }
}

/// `hexString` of contiguous bytes: a pointer walk, with no collection indexes to check.
func hexString(bytes: UnsafeRawBufferPointer) -> String {
    let digits: StaticString = "0123456789abcdef"
    return String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
        digits.withUTF8Buffer { table in
            for index in 0..<bytes.count {
                let byte = bytes[index]
                buffer[2 * index] = table[Int(byte >> 4)]
                buffer[2 * index + 1] = table[Int(byte & 0x0f)]
            }
        }
        return bytes.count * 2
    }
}

/// First 16 bytes of SHA-256, in hex: a stable identity for tickets and PSK identities
/// that does not carry the secret-bearing bytes into the records. Read from the digest in
/// place (an Array of it was built byte by byte).
func shortDigest(_ bytes: some DataProtocol) -> String {
    SHA256.hash(data: bytes).withUnsafeBytes { hexString(bytes: UnsafeRawBufferPointer(rebasing: $0.prefix(16))) }
}

/// `shortDigest` as bytes, for the record.
func shortDigestBytes(_ bytes: some DataProtocol) -> ShortBytes {
    SHA256.hash(data: bytes).withUnsafeBytes { ShortBytes($0.prefix(16)) }
}

/// Full SHA-256 in hex (certificate fingerprints, as `openssl x509 -fingerprint -sha256`).
func fingerprint(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).withUnsafeBytes { hexString(bytes: $0) }
}

private let base62: [Character] = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

/// "C" and 11 base-62 digits of a 64-bit FNV-1a hash of the connection's first ClientHello
/// time and 4-tuple: unique within a run and the same across runs on the same capture.
func connectionUID(
    timestampNanos: Int64,
    client: IPAddress,
    clientPort: UInt16,
    server: IPAddress,
    serverPort: UInt16
) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    @inline(__always) func mix(_ word: UInt64) {
        var value = word
        for _ in 0..<8 {
            hash = (hash ^ (value & 0xff)) &* 0x0000_0100_0000_01b3
            value >>= 8
        }
    }
    mix(UInt64(bitPattern: timestampNanos))
    mix(client.high)
    mix(client.low)
    mix(UInt64(clientPort) | (client.isIPv6 ? 1 << 32 : 0))
    mix(server.high)
    mix(server.low)
    mix(UInt64(serverPort) | (server.isIPv6 ? 1 << 32 : 0))
    return String(unsafeUninitializedCapacity: 12) { buffer in
        let digits: StaticString = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        buffer[0] = UInt8(ascii: "C")
        var value = hash
        digits.withUTF8Buffer { table in
            for i in 1...11 {
                buffer[i] = table[Int(value % 62)]
                value /= 62
            }
        }
        return 12
    }
}

/// Short digests (`shortDigestBytes`) of recently seen tickets and PSK identities. A TLS 1.2
/// client offers the same ticket on every resumption until the server renews it, and an
/// issued ticket comes back in a later connection's offer: most digests repeat. Without SHA
/// extensions SHA-256 of a 200-byte ticket costs about 9,000 instructions (13% of the
/// handshake-dense report), finding it here a few hundred; with them, about a tenth.
final class DigestMemo {
    /// Entries, direct-mapped by a hash of the bytes' ends. The hash is not keyed: crafted
    /// collisions only make a lookup miss, which costs the digest, as with no memo.
    static let capacity = 64
    /// Longer inputs are digested each time, so entries stay small (64 KiB in all).
    static let maximumBytes = 1024
    private var inputs = [[UInt8]](repeating: [], count: DigestMemo.capacity)
    private var digests = [ShortBytes](repeating: ShortBytes(), count: DigestMemo.capacity)

    func shortDigest(_ bytes: ArraySlice<UInt8>) -> ShortBytes {
        guard !bytes.isEmpty, bytes.count <= DigestMemo.maximumBytes else { return shortDigestBytes(bytes) }
        let slot = bytes.withUnsafeBytes { DigestMemo.slot(of: $0) }
        let known = inputs[slot].withUnsafeBytes { kept in
            bytes.withUnsafeBytes {
                kept.count == $0.count && memcmp(kept.baseAddress!, $0.baseAddress!, $0.count) == 0
            }
        }
        if known { return digests[slot] }
        let digest = shortDigestBytes(bytes)
        inputs[slot].removeAll(keepingCapacity: true)
        inputs[slot].append(contentsOf: bytes)
        digests[slot] = digest
        return digest
    }

    func shortDigest(_ bytes: [UInt8]) -> ShortBytes { shortDigest(bytes[...]) }

    /// The length and the first and last 16 bytes, mixed: tickets differ in their first
    /// bytes (RFC 5077 4: key name, then a random IV) and in their MAC at the end.
    private static func slot(of bytes: UnsafeRawBufferPointer) -> Int {
        let count = bytes.count
        var mix = UInt64(truncatingIfNeeded: count) &* 0x9E37_79B9_7F4A_7C15
        @inline(__always) func take(_ offset: Int) {
            var word: UInt64 = 0
            let length = min(8, count - offset)
            withUnsafeMutableBytes(of: &word) {
                $0.baseAddress!.copyMemory(from: bytes.baseAddress! + offset, byteCount: length)
            }
            mix = (mix ^ word) &* 0xFF51_AFD7_ED55_8CCD
            mix ^= mix >> 29
        }
        take(0)
        if count > 8 { take(8) }
        if count > 16 {
            take(count - 16)
            take(count - 8)
        }
        return Int(truncatingIfNeeded: mix >> 58)
    }
}

/// Fingerprints and parsed summaries of recently seen certificates. Every full handshake
/// with a server carries the same chain, so most certificates are hashed and parsed once.
final class FingerprintCache {
    static let capacity = 64
    private var entries: [(der: [UInt8], fingerprint: String, summary: CertificateSummary?)] = []
    private var next = 0

    private let hellos = HelloFingerprintMemo()
    /// Lists that repeat from one handshake to the next, shared between records.
    let lists = RepeatedLists()
    /// Digests of tickets and PSK identities, which repeat from one handshake to the next.
    let digests = DigestMemo()
    /// Whether records get JA3, JA4 and JA3S.
    let computesHelloFingerprints: Bool

    init(content: RecordContent = .full) { computesHelloFingerprints = content == .full }

    func fingerprint(_ der: [UInt8]) -> String { entry(der).fingerprint }

    /// JA3 and JA4 of a ClientHello, JA3S of a ServerHello.
    func client(_ hello: ClientHello, transport: Transport) -> (ja3: String?, ja4: String) {
        hellos.client(hello, transport: transport)
    }
    func server(_ hello: ServerHello) -> String { hellos.server(hello) }

    /// The certificate as swift-certificates parses it; nil when it does not parse.
    func summary(_ der: [UInt8]) -> CertificateSummary? { entry(der).summary }

    private func entry(_ der: [UInt8]) -> (der: [UInt8], fingerprint: String, summary: CertificateSummary?) {
        for index in entries.indices where entries[index].der.count == der.count {
            // memcmp: Array's == compares a 1 KB certificate byte by byte.
            let equal = entries[index].der.withUnsafeBytes { cached in
                der.withUnsafeBytes { $0.isEmpty || memcmp(cached.baseAddress!, $0.baseAddress!, $0.count) == 0 }
            }
            if equal { return entries[index] }
        }
        let computed = (der: der, fingerprint: Handshakes.fingerprint(der), summary: CertificateSummary(der: der))
        if entries.count < FingerprintCache.capacity {
            entries.append(computed)
        } else {
            entries[next] = computed
            next = (next + 1) % FingerprintCache.capacity
        }
        return computed
    }
}

/// The last offered versions, ALPN names, ServerHello extension types and certificate
/// fingerprints a record got. Most handshakes repeat the previous one's: a record then
/// shares that array, so it allocates none of its own and freeing it frees none (a flood's
/// records are freed long after they were made, cold in the cache).
final class RepeatedLists {
    var versions: [ProtocolVersion] = []
    var alpn: [String] = []
    var serverExtensions: [UInt16] = []
    var certificateFingerprints: [String] = []

    /// `list`, or the equal one kept in `field` (which then becomes `list` when it differs).
    func shared<Element: Equatable>(
        _ list: [Element],
        as field: ReferenceWritableKeyPath<RepeatedLists, [Element]>
    )
        -> [Element]
    {
        if list.isEmpty { return list }
        let kept = self[keyPath: field]
        if kept == list { return kept }
        self[keyPath: field] = list
        return list
    }
}

extension HandshakeRecord {
    /// The longest server name the analysis keeps: a DNS name is at most 253 characters
    /// (RFC 1035 2.3.4), so no real name is cut.
    public static let maximumKeptNameLength = 253

    /// The SNI as tables that outlive the record keep it (services, sessions, stickiness
    /// groups): as it is when it is a name's length, else its first 200 bytes, "…" and a
    /// digest of the whole, so names still compare as distinct and a crafted 16 KB name
    /// costs a table no more than a real one. The record's own `sni` is untouched.
    static func keptName(of sni: String?) -> String? {
        guard let sni, sni.utf8.count > Self.maximumKeptNameLength else { return sni }
        var prefix = Array(sni.utf8.prefix(200))
        while let last = prefix.last, last & 0xc0 == 0x80 { prefix.removeLast() }  // whole characters only
        if let last = prefix.last, last >= 0xc0 { prefix.removeLast() }
        var whole = sni
        // Hashed in place: a crafted name is 16 KB.
        var hasher = SHA256()
        whole.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        let digest = hasher.finalize().withUnsafeBytes {
            hexString(bytes: UnsafeRawBufferPointer(rebasing: $0.prefix(16)))
        }
        return String(decoding: prefix, as: UTF8.self) + "…" + digest
    }
}

extension HandshakeRecord {
    /// About what the record costs in memory: its own fields, and what its strings and
    /// arrays hold on the heap (a peer can make the server name, ALPN names and certificate
    /// fields long). What holders of many records (output order, balancer legs) count their
    /// budget in.
    public var approximateBytes: Int {
        var bytes = MemoryLayout<HandshakeRecord.Fields>.stride + 16  // and the storage object's header
        bytes += Self.heapBytes(sni)
        if keptServerName?.utf8.count != sni?.utf8.count { bytes += Self.heapBytes(keptServerName) }
        bytes += Self.heapBytes(self.alpnSelected)
        bytes +=
            Self.heapBytes(self.ja3) + Self.heapBytes(self.ja4) + Self.heapBytes(self.ja3s) + Self.heapBytes(self.alert)
        bytes +=
            Self.heapBytes(self.malformed) + Self.heapBytes(self.serverTraits?.synAckOptions)
            + Self.heapBytes(self.backend)
        bytes += self.alpnOffered.reduce(Self.arrayHeader) { $0 + 16 + Self.heapBytes($1) }
        bytes += self.certificateFingerprints.reduce(Self.arrayHeader) { $0 + 16 + Self.heapBytes($1) }
        bytes += self.pskIdentities.reduce(Self.arrayHeader) {
            $0 + MemoryLayout<PSKOffer>.stride + Self.heapBytes($1.digest) + Self.heapBytes($1.text)
        }
        bytes += 2 * Self.arrayHeader + 2 * (self.versionsOffered.count + self.serverExtensions.count)
        if !self.issuedTickets.isEmpty {
            bytes += self.issuedTickets.reduce(Self.arrayHeader) {
                $0 + MemoryLayout<IssuedTicket>.stride + Self.heapBytes($1.digest)
            }
        }
        if let certificate = self.certificate {
            // Shared among the records of one server, counted in each: an upper bound.
            bytes +=
                64 + certificate.subject.utf8.count + certificate.issuer.utf8.count
                + Self.heapBytes(certificate.commonName)
            bytes += certificate.subjectAlternativeNames.reduce(Self.arrayHeader) { $0 + 16 + Self.heapBytes($1) }
        }
        return bytes
    }

    /// A Swift array's or string's heap header, with malloc's rounding.
    private static let arrayHeader = 48

    /// What a string holds on the heap: nothing up to 15 UTF-8 bytes (stored inline).
    @inline(__always)
    private static func heapBytes(_ text: String?) -> Int {
        guard let text else { return 0 }
        let count = text.utf8.count
        return count > 15 ? arrayHeader + count : 0
    }
}

/// Up to 32 bytes held inline, written as lowercase hex: a TLS random (RFC 8446 4.1.2,
/// always 32 bytes). A record keeps it without an allocation, and the hex is made only when
/// the record is written.
public struct ShortBytes: Hashable, Sendable {
    public static let capacity = 32
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// How many of the 32 bytes are used.
    public private(set) var count = 0

    public init() {}

    /// The first `capacity` bytes of `bytes`.
    public init(_ bytes: some Collection<UInt8>) {
        let kept = min(bytes.count, ShortBytes.capacity)
        withUnsafeMutableBytes(of: &words) { storage in
            // Contiguous bytes (arrays and their slices, as the hellos give them) in one copy.
            let copied: Void? = bytes.withContiguousStorageIfAvailable {
                storage.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer($0)[0..<kept]))
            }
            if copied == nil {
                for (index, byte) in bytes.prefix(ShortBytes.capacity).enumerated() { storage[index] = byte }
            }
        }
        count = kept
    }

    /// Nil unless `hex` is an even number of hex digits (either case), at most 64.
    public init?(hex: String) {
        var text = hex
        guard let parsed = text.withUTF8({ ShortBytes(hexDigits: $0) }) else { return nil }
        self = parsed
    }

    private init?(hexDigits digits: UnsafeBufferPointer<UInt8>) {
        guard digits.count % 2 == 0, digits.count <= 2 * ShortBytes.capacity else { return nil }
        var valid = true
        withUnsafeMutableBytes(of: &words) { storage in
            for index in 0..<(digits.count / 2) {
                guard let high = ShortBytes.nibble(digits[2 * index]),
                    let low = ShortBytes.nibble(digits[2 * index + 1])
                else {
                    valid = false
                    return
                }
                storage[index] = high << 4 | low
            }
        }
        guard valid else { return nil }
        count = digits.count / 2
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// The bytes, for reading in place.
    public func withBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        withUnsafeBytes(of: words) { body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }

    public var hex: String { withBytes { hexString($0) } }

    public static func == (a: ShortBytes, b: ShortBytes) -> Bool {
        a.count == b.count && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
            && a.words.3 == b.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    /// SipHash-1-3 of the bytes and their count (and `domain`, to keep apart what the caller
    /// keys separately) under `key`: `KeyedHash` written out for these five words.
    public func keyedHash(domain: UInt8, key: (UInt64, UInt64)) -> UInt64 {
        KeyedHash.sipHash(
            words: (UInt64(truncatingIfNeeded: count) | UInt64(domain) << 8, words.0, words.1, words.2, words.3),
            key: key,
            compressionRounds: 1,
            finalizationRounds: 3
        )
    }

    /// What a `Set` or `Dictionary` calls: the same SipHash-1-3 under the process's random
    /// key as `Hasher`, written out for these five words (`KeyedHash`), with the table's
    /// seed folded into the count. Through `Hasher` it cost about 370 instructions a lookup
    /// (the leg pairer's index of client randoms, the session tables).
    public func _rawHashValue(seed: Int) -> Int {
        Int(
            truncatingIfNeeded: KeyedHash.hash(
                UInt64(truncatingIfNeeded: count) | UInt64(UInt(bitPattern: seed)) << 8,
                words.0,
                words.1,
                words.2,
                words.3
            )
        )
    }
}
