import Crypto
import CryptoExtras
import FoundationEssentials

/// The packet protection of one direction of one QUIC packet number space (RFC 9001 5):
/// the AEAD key and IV and the header protection key, derived from a traffic secret with
/// the labels "quic key", "quic iv" and "quic hp" ("quicv2 ..." in QUIC v2, RFC 9369 3.3.2).
/// Initial packets use a secret from the client's connection ID; Handshake and 1-RTT packets
/// the TLS handshake and application traffic secrets a key log gives (5.1).
public struct QUICPacketKeys: Sendable {
    let suite: TLS13CipherSuite
    let key: SymmetricKey
    let iv: [UInt8]
    let headerProtection: SymmetricKey

    /// Nil when the suite is not one this reads or the secret's length is not its hash's.
    public init?(version: QUICVersion, suite: CipherSuite, secret: [UInt8]) {
        guard let suite = TLS13CipherSuite(suite), secret.count == suite.hashLength else { return nil }
        self.suite = suite
        let prefix = version.labelPrefix
        key = SymmetricKey(data: suite.expandLabel(secret, prefix + "key", length: suite.keyLength))
        iv = suite.expandLabel(secret, prefix + "iv", length: TLS13CipherSuite.ivLength)
        headerProtection = SymmetricKey(data: suite.expandLabel(secret, prefix + "hp", length: suite.keyLength))
    }

    /// The five mask bytes of header protection from a 16-byte sample: AES-ECB of the
    /// sample (RFC 9001 5.4.3), or ChaCha20 with the sample's first four bytes as the
    /// little-endian block counter and the rest as the nonce, over five zeros (5.4.4).
    func headerProtectionMask(sample: UnsafeRawBufferPointer) -> (UInt8, UInt8, UInt8, UInt8, UInt8)? {
        guard sample.count == 16 else { return nil }
        switch suite {
        case .aes128GCM, .aes256GCM:
            var block = Array(sample)
            guard (try? AES.permute(&block, key: headerProtection)) != nil else { return nil }
            return (block[0], block[1], block[2], block[3], block[4])
        case .chacha20Poly1305:
            guard let counter = try? Insecure.ChaCha20CTR.Counter(data: sample[0..<4]),
                let nonce = try? Insecure.ChaCha20CTR.Nonce(data: sample[4..<16]),
                let mask = try? Insecure.ChaCha20CTR.encrypt(
                    [0, 0, 0, 0, 0] as [UInt8],
                    using: headerProtection,
                    counter: counter,
                    nonce: nonce
                ),
                mask.count == 5
            else { return nil }
            return (mask[0], mask[1], mask[2], mask[3], mask[4])
        }
    }

    /// Opens a packet's payload: `sealed` is the ciphertext with its tag, `header` the
    /// unprotected header (the associated data); the nonce is the IV with the packet number
    /// XORed into its end (RFC 9001 5.3). Nil when it does not authenticate.
    func open(_ sealed: UnsafeRawBufferPointer, packetNumber: Int64, header: [UInt8]) -> [UInt8]? {
        guard sealed.count >= TLS13CipherSuite.tagLength else { return nil }
        let ivLength = TLS13CipherSuite.ivLength
        let tagStart = sealed.count - TLS13CipherSuite.tagLength
        let opened: Data?
        switch suite {
        case .aes128GCM, .aes256GCM:
            // Nonce, ciphertext and tag in one buffer, copied once (a box built from slices
            // copies them byte by byte).
            var combined = Data(count: ivLength + sealed.count)
            combined.withUnsafeMutableBytes { buffer in
                for i in 0..<ivLength { buffer[i] = iv[i] }
                for i in 0..<8 { buffer[ivLength - 1 - i] ^= UInt8(truncatingIfNeeded: packetNumber >> (8 * i)) }
                UnsafeMutableRawBufferPointer(rebasing: buffer[ivLength...]).copyMemory(from: sealed)
            }
            guard let box = try? AES.GCM.SealedBox(combined: combined) else { return nil }
            opened = try? AES.GCM.open(box, using: key, authenticating: header)
        case .chacha20Poly1305:
            opened = openAEAD(
                chaCha: true,
                key: key,
                nonce: perRecordNonce(iv, UInt64(bitPattern: packetNumber)),
                ciphertext: UnsafeRawBufferPointer(rebasing: sealed[..<tagStart]),
                tag: UnsafeRawBufferPointer(rebasing: sealed[tagStart...]),
                authenticating: header
            )
        }
        return opened.map { Array($0) }
    }
}
