import Crypto
import Foundation
import Testing

@testable import TLSWire

/// `AEADKey` (BoringSSL's AEAD, set up once per key) against swift-crypto's own sealing:
/// every box swift-crypto seals opens to its plaintext, and one changed bit of ciphertext,
/// tag, nonce or additional data makes it fail (RFC 5116 2.2). Keys and plaintexts are
/// random; what is checked is the AEAD's contract, not a captured value.
@Suite struct AEADKeyTests {
    @Test(arguments: [16, 32, 0])
    func opensWhatSwiftCryptoSealsAndNothingChanged(keyBytes: Int) throws {
        let chaCha = keyBytes == 0
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 15, 16, 17, 1200] {
            let keyData = (0..<(chaCha ? 32 : keyBytes)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let nonce = (0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let plaintext = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let additional: [UInt8] = [0x17, 0x03, 0x03, UInt8(length >> 8), UInt8(length & 0xff)]
            let key = SymmetricKey(data: keyData)
            let sealed: [UInt8]
            if chaCha {
                let box = try ChaChaPoly.seal(
                    plaintext,
                    using: key,
                    nonce: ChaChaPoly.Nonce(data: nonce),
                    authenticating: additional
                )
                sealed = Array(box.ciphertext) + Array(box.tag)
            } else {
                let box = try AES.GCM.seal(
                    plaintext,
                    using: key,
                    nonce: AES.GCM.Nonce(data: nonce),
                    authenticating: additional
                )
                sealed = Array(box.ciphertext) + Array(box.tag)
            }
            let aead = try #require(AEADKey(chaCha ? .chaCha20Poly1305 : .aesGCM, key: keyData))
            let opened = sealed.withUnsafeBytes { aead.open(nonce: nonce, sealed: $0, additionalData: additional) }
            #expect(opened == plaintext, "\(length) bytes")
            for index in [0, sealed.count / 2, sealed.count - 1] {
                var changed = sealed
                changed[index] ^= 0x01
                #expect(
                    changed.withUnsafeBytes { aead.open(nonce: nonce, sealed: $0, additionalData: additional) } == nil
                )
            }
            var otherNonce = nonce
            otherNonce[11] ^= 0x80
            #expect(
                sealed.withUnsafeBytes { aead.open(nonce: otherNonce, sealed: $0, additionalData: additional) } == nil
            )
            #expect(sealed.withUnsafeBytes { aead.open(nonce: nonce, sealed: $0, additionalData: [0x16]) } == nil)
            // DELIBERATELY MALFORMED: shorter than a tag.
            #expect(
                Array(sealed.prefix(15)).withUnsafeBytes {
                    aead.open(nonce: nonce, sealed: $0, additionalData: additional)
                } == nil
            )
        }
        #expect(AEADKey(.aesGCM, key: [UInt8](repeating: 0, count: 24)) == nil)
        #expect(AEADKey(.chaCha20Poly1305, key: [UInt8](repeating: 0, count: 16)) == nil)
    }
}
