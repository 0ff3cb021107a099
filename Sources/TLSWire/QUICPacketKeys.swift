/// The packet protection of one direction of one QUIC packet number space (RFC 9001 5):
/// the AEAD key and IV and the header protection key, derived from a traffic secret with
/// the labels "quic key", "quic iv" and "quic hp" ("quicv2 ..." in QUIC v2, RFC 9369 3.3.2).
/// Initial packets use a secret from the client's connection ID; Handshake and 1-RTT packets
/// the TLS handshake and application traffic secrets a key log gives (5.1).
public struct QUICPacketKeys: Sendable {
    let suite: TLS13CipherSuite
    let key: AEADKey
    let iv: [UInt8]
    let headerProtection: HeaderProtectionKey

    /// Nil when the suite is not one this reads or the secret's length is not its hash's.
    public init?(version: QUICVersion, suite: CipherSuite, secret: [UInt8]) {
        guard let suite = TLS13CipherSuite(suite),
            let derived = Self.derive(version: version, suite: suite, secret: secret),
            let key = AEADKey(suite.algorithm, key: derived.key),
            let headerProtection = HeaderProtectionKey(
                chaCha: suite == .chacha20Poly1305,
                key: derived.headerProtection
            )
        else { return nil }
        self.suite = suite
        self.key = key
        self.headerProtection = headerProtection
        iv = derived.iv
    }

    /// The key, IV and header protection key of `secret` (RFC 9001 5.1).
    static func derive(
        version: QUICVersion,
        suite: TLS13CipherSuite,
        secret: [UInt8]
    ) -> (key: [UInt8], iv: [UInt8], headerProtection: [UInt8])? {
        guard secret.count == suite.hashLength else { return nil }
        let prefix = version.labelPrefix
        let derived = suite.expandLabels(
            secret,
            [
                (prefix + "key", suite.keyLength), (prefix + "iv", TLS13CipherSuite.ivLength),
                (prefix + "hp", suite.keyLength),
            ]
        )
        return (derived[0], derived[1], derived[2])
    }

    /// The five mask bytes of header protection from a 16-byte sample (RFC 9001 5.4).
    func headerProtectionMask(sample: UnsafeRawBufferPointer) -> (UInt8, UInt8, UInt8, UInt8, UInt8)? {
        headerProtection.mask(sample: sample)
    }

    /// Opens a packet's payload: `sealed` is the ciphertext with its tag, `header` the
    /// unprotected header (the associated data); the nonce is the IV with the packet number
    /// XORed into its end (RFC 9001 5.3). Nil when it does not authenticate.
    func open(_ sealed: UnsafeRawBufferPointer, packetNumber: Int64, header: UnsafeRawBufferPointer) -> [UInt8]? {
        var plaintext: [UInt8] = []
        guard open(sealed, packetNumber: packetNumber, header: header, appendingTo: &plaintext) != nil else {
            return nil
        }
        return plaintext
    }

    /// `open` into the end of a buffer the caller reuses; where the payload lies in it.
    func open(
        _ sealed: UnsafeRawBufferPointer,
        packetNumber: Int64,
        header: UnsafeRawBufferPointer,
        appendingTo plaintext: inout [UInt8]
    ) -> Range<Int>? {
        withPerRecordNonce(iv, UInt64(bitPattern: packetNumber)) {
            key.open(nonce: $0, sealed: sealed, additionalData: header, appendingTo: &plaintext)
        }
    }
}
