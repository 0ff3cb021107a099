/// The packet protection of one direction of one QUIC packet number space (RFC 9001 5):
/// the AEAD key and IV and the header protection key, derived from a traffic secret with
/// the labels "quic key", "quic iv" and "quic hp" ("quicv2 ..." in QUIC v2, RFC 9369 3.3.2).
/// Initial packets use a secret from the client's connection ID; Handshake and 1-RTT packets
/// the TLS handshake and application traffic secrets a key log gives (5.1).
public struct QUICPacketKeys: Sendable {
    private(set) var suite: TLS13CipherSuite
    private(set) var key: AEADKey
    private(set) var iv: [UInt8]
    private(set) var headerProtection: HeaderProtectionKey

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

    /// The keys from their bytes, as `QUICInitialKeys` derives them on the stack.
    init?(
        suite: TLS13CipherSuite,
        key: UnsafeRawBufferPointer,
        iv: UnsafeRawBufferPointer,
        headerProtection: UnsafeRawBufferPointer
    ) {
        guard let aead = AEADKey(suite.algorithm, keyBytes: key),
            let protection = HeaderProtectionKey(chaCha: suite == .chacha20Poly1305, keyBytes: headerProtection)
        else { return nil }
        self.suite = suite
        self.key = aead
        self.headerProtection = protection
        self.iv = Array(iv)
    }

    /// True when no other value holds this one's key objects, so `rekey` may write them.
    mutating func isUniquelyHeld() -> Bool {
        isKnownUniquelyReferenced(&key) && isKnownUniquelyReferenced(&headerProtection)
    }

    /// Sets new keys of the same suite in the objects this value holds alone (see
    /// `isUniquelyHeld`). False when they are shared or a key is refused: then the keys must
    /// not be used.
    mutating func rekey(
        suite: TLS13CipherSuite,
        key: UnsafeRawBufferPointer,
        iv: UnsafeRawBufferPointer,
        headerProtection: UnsafeRawBufferPointer
    ) -> Bool {
        guard suite == self.suite, isUniquelyHeld(), iv.count == self.iv.count else { return false }
        guard self.key.rekey(suite.algorithm, keyBytes: key),
            self.headerProtection.rekey(chaCha: suite == .chacha20Poly1305, keyBytes: headerProtection)
        else { return false }
        self.iv.withUnsafeMutableBytes { $0.copyMemory(from: iv) }
        return true
    }

    /// The key, IV and header protection key of `secret` (RFC 9001 5.1).
    static func derive(
        version: QUICVersion,
        suite: TLS13CipherSuite,
        secret: [UInt8]
    ) -> (key: [UInt8], iv: [UInt8], headerProtection: [UInt8])? {
        guard secret.count == suite.hashLength else { return nil }
        let derived = suite.expandLabels(secret, packetProtectionLabels(version: version, suite: suite))
        return (derived[0], derived[1], derived[2])
    }

    /// The labels of the key, IV and header protection key (RFC 9001 5.1, RFC 9369 3.3.2),
    /// built once for the Initial packets' suite (every connection derives them).
    static func packetProtectionLabels(version: QUICVersion, suite: TLS13CipherSuite) -> [HKDFLabel] {
        if suite == .aes128GCM { return version == .v2 ? initialLabelsV2 : initialLabelsV1 }
        return labels(prefix: version.labelPrefix, keyLength: suite.keyLength)
    }
    private static let initialLabelsV1 = labels(prefix: QUICVersion.v1.labelPrefix, keyLength: 16)
    private static let initialLabelsV2 = labels(prefix: QUICVersion.v2.labelPrefix, keyLength: 16)
    private static func labels(prefix: String, keyLength: Int) -> [HKDFLabel] {
        [
            HKDFLabel(prefix + "key", length: keyLength), HKDFLabel(prefix + "iv", length: TLS13CipherSuite.ivLength),
            HKDFLabel(prefix + "hp", length: keyLength),
        ]
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
