import Crypto

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

/// Lowercase hex of `bytes` ("" when empty).
public func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(hexDigits[Int(byte >> 4)])
        out.append(hexDigits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
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
