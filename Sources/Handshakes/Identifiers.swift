import Crypto

/// Lowercase hex of `bytes` ("" when empty), built in place in the string's own storage.
public func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
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

/// First 16 bytes of SHA-256, in hex: a stable identity for tickets and PSK identities
/// that does not carry the secret-bearing bytes into the records.
func shortDigest(_ bytes: [UInt8]) -> String {
    hexString(Array(SHA256.hash(data: bytes)).prefix(16))
}

/// Full SHA-256 in hex (certificate fingerprints, as `openssl x509 -fingerprint -sha256`).
func fingerprint(_ bytes: [UInt8]) -> String {
    hexString(Array(SHA256.hash(data: bytes)))
}

private let base62: [Character] = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

/// "C" and 11 base-62 digits of a 64-bit FNV-1a hash of the connection's first ClientHello
/// time and 4-tuple: unique within a run and the same across runs on the same capture.
func connectionUID(timestampNanos: Int64, client: String, clientPort: UInt16, server: String, serverPort: UInt16) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    func mix(_ byte: UInt8) {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    withUnsafeBytes(of: timestampNanos.littleEndian) { $0.forEach(mix) }
    client.utf8.forEach(mix)
    withUnsafeBytes(of: clientPort.littleEndian) { $0.forEach(mix) }
    server.utf8.forEach(mix)
    withUnsafeBytes(of: serverPort.littleEndian) { $0.forEach(mix) }
    var digits: [Character] = []
    var value = hash
    for _ in 0..<11 {
        digits.append(base62[Int(value % 62)])
        value /= 62
    }
    return "C" + String(digits)
}

/// Fingerprints of recently seen certificates. Every full handshake with a server carries
/// the same chain, so most certificates are hashed once.
final class FingerprintCache {
    static let capacity = 64
    private var entries: [(der: [UInt8], fingerprint: String)] = []
    private var next = 0

    func fingerprint(_ der: [UInt8]) -> String {
        for entry in entries where entry.der.count == der.count && entry.der == der { return entry.fingerprint }
        let computed = Handshakes.fingerprint(der)
        if entries.count < FingerprintCache.capacity { entries.append((der, computed)) } else {
            entries[next] = (der, computed)
            next = (next + 1) % FingerprintCache.capacity
        }
        return computed
    }
}
