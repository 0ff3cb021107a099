import Crypto
import Testing

@testable import TLSWire

/// HKDF-Expand-Label (RFC 8446 7.1) against OpenSSL's HKDF-Expand (`openssl kdf -keylen N
/// -kdfopt digest:D -kdfopt mode:EXPAND_ONLY -kdfopt hexkey:SECRET -kdfopt hexinfo:INFO
/// HKDF`, with INFO the HkdfLabel bytes). RFC 9001's Initial keys (`QUICInitialTests`) cover
/// SHA-256 with outputs shorter than the hash.
@Suite struct KeyDerivationTests {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
    let secret = (0..<48).map { UInt8($0) }

    @Test func sha384AndLongerThanOneHash() {
        #expect(
            hex(KeyDerivation.expandLabel(.sha384, secret: secret, label: "quic key", length: 32))
                == "95c517eea81b6469ff8f27a065fd04c1a27b3023591b93e273a9df5f921d1f68"
        )
        // 100 bytes of SHA-256: four HMAC blocks (RFC 5869 2.3), past the one-block path.
        let long = KeyDerivation.expandLabel(.sha256, secret: Array(secret.prefix(32)), label: "long", length: 100)
        #expect(
            hex(long)
                == "2a33c4112d901d36972a20a4ab96235add7d7187293bd79ebf8adc42de12c48e4d71c49183a8737367fb3c6f"
                + "cf62e85889d3a4d463838fce884535ef317705437e32f2e34231ecde28b31f0c47fce2f920974d4ff6002426"
                + "255f6a6e7e29c57b7913e7f5"
        )
        // Several labels under one key give what each gives alone.
        let labels = [HKDFLabel("a", length: 12), HKDFLabel("quic key", length: 32), HKDFLabel("b", length: 48)]
        let together = KeyDerivation.expandLabels(.sha384, secret: secret, labels)
        #expect(together[1] == KeyDerivation.expandLabel(.sha384, secret: secret, label: "quic key", length: 32))
        #expect(together[0] == KeyDerivation.expandLabel(.sha384, secret: secret, label: "a", length: 12))
        #expect(together[2].count == 48)
    }

    /// RFC 4231's test cases 1 and 6 (a key longer than a block is hashed first), which
    /// `openssl mac -digest SHA256 HMAC` prints too.
    @Test func hmacSHA256MatchesRFC4231() {
        func mac(key: [UInt8], _ text: String) -> String {
            var output = [UInt8](repeating: 0, count: 32)
            let hmac = key.withUnsafeBytes { HMACSHA256(key: $0) }
            output.withUnsafeMutableBufferPointer { out in
                Array(text.utf8).withUnsafeBytes {
                    hmac.authenticate($0, UnsafeRawBufferPointer(start: nil, count: 0), into: out)
                }
            }
            return hex(output)
        }
        #expect(
            mac(key: Array(repeating: 0x0b, count: 20), "Hi There")
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        )
        #expect(
            mac(key: Array(repeating: 0xaa, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First")
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        )
    }

    /// The HMAC pads its own last blocks (FIPS 180-4 5.1.1): one block when the message's end
    /// leaves room for the 0x80 and the 8-byte length, two when not. Checked against
    /// swift-crypto's HMAC on every length around those edges, keys shorter than, equal to
    /// and longer than a block, and the message split anywhere between its two parts.
    @Test func hmacSHA256MatchesSwiftCryptoAtBlockEdges() {
        let lengths = [0, 1, 31, 32, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 200]
        for keyLength in [0, 20, 32, 64, 65, 131] {
            let key = (0..<keyLength).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            let hmac = key.withUnsafeBytes { HMACSHA256(key: $0) }
            for length in lengths {
                let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ keyLength) }
                let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
                for split in Set([0, length / 3, length]) {
                    var output = [UInt8](repeating: 0, count: 32)
                    output.withUnsafeMutableBufferPointer { out in
                        message.withUnsafeBytes { all in
                            hmac.authenticate(
                                UnsafeRawBufferPointer(rebasing: all[..<split]),
                                UnsafeRawBufferPointer(rebasing: all[split...]),
                                into: out
                            )
                        }
                    }
                    #expect(output == expected, "key \(keyLength) bytes, message \(length), split at \(split)")
                }
            }
        }
    }
}
