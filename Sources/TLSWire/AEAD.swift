import Crypto
import FoundationEssentials

/// The nonce of record (or QUIC packet) number `sequence`: the IV with the number, as 64 bits
/// big-endian, XORed into its last eight bytes (RFC 8446 5.3, RFC 7905 2, RFC 9001 5.3).
func perRecordNonce(_ iv: [UInt8], _ sequence: UInt64) -> [UInt8] {
    var nonce = iv
    for index in 0..<8 { nonce[iv.count - 1 - index] ^= UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(index))) }
    return nonce
}

/// Opens an AES-GCM or ChaCha20-Poly1305 box (RFC 5116, RFC 8439); nil when it does not
/// authenticate.
func openAEAD(
    chaCha: Bool,
    key: SymmetricKey,
    nonce: [UInt8],
    ciphertext: UnsafeRawBufferPointer,
    tag: UnsafeRawBufferPointer,
    authenticating additionalData: some DataProtocol
) -> Data? {
    if chaCha {
        guard let nonce = try? ChaChaPoly.Nonce(data: nonce),
            let box = try? ChaChaPoly.SealedBox(nonce: nonce, ciphertext: ciphertext, tag: tag)
        else { return nil }
        return try? ChaChaPoly.open(box, using: key, authenticating: additionalData)
    }
    guard let nonce = try? AES.GCM.Nonce(data: nonce),
        let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: ciphertext, tag: tag)
    else { return nil }
    return try? AES.GCM.open(box, using: key, authenticating: additionalData)
}
