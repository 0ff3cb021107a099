import FoundationEssentials

/// A TLS 1.3 cipher suite's AEAD and hash (RFC 8446 B.4), for the suites swift-crypto opens:
/// TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256. (The
/// CCM suites are left unread.)
public enum TLS13CipherSuite: Sendable, Equatable {
    case aes128GCM
    case aes256GCM
    case chacha20Poly1305

    public init?(_ suite: CipherSuite) {
        switch suite.rawValue {
        case 0x1301: self = .aes128GCM
        case 0x1302: self = .aes256GCM
        case 0x1303: self = .chacha20Poly1305
        default: return nil
        }
    }

    var keyLength: Int { self == .aes128GCM ? 16 : 32 }
    var algorithm: AEADKey.Algorithm { self == .chacha20Poly1305 ? .chaCha20Poly1305 : .aesGCM }
    /// The transcript hash's output length: also the traffic secrets' length.
    public var hashLength: Int { self == .aes256GCM ? 48 : 32 }
    /// AEAD tag length (RFC 5116, RFC 8439): 16 for all three.
    static let tagLength = 16
    /// Nonce length (RFC 8446 5.3: iv_length, max(8, N_MIN) = 12 for these AEADs).
    static let ivLength = 12

    /// HKDF-Expand-Label(secret, label, "", length) (RFC 8446 7.1) with the suite's hash.
    public func expandLabel(_ secret: [UInt8], _ label: String, length: Int) -> [UInt8] {
        KeyDerivation.expandLabel(hash, secret: secret, label: label, length: length)
    }

    /// `expandLabel` of several labels under one secret, its HMAC key set up once.
    func expandLabels(_ secret: [UInt8], _ labels: [HKDFLabel]) -> [[UInt8]] {
        KeyDerivation.expandLabels(hash, secret: secret, labels)
    }

    var hash: KeyDerivation.Hash { self == .aes256GCM ? .sha384 : .sha256 }
}

/// Removes the record protection of one direction of a TLS 1.3 connection (RFC 8446 5.2):
/// traffic keys derived from a traffic secret (7.3), the per-record nonce from the record
/// sequence number (5.3), and the inner content type found behind the zero padding (5.4).
/// Holds no more than the current secret, key and IV.
public struct TLS13RecordReader: Sendable {
    public let suite: TLS13CipherSuite
    private var secret: [UInt8]
    private var key: AEADKey
    private var iv: [UInt8]
    /// Records opened under the current key (RFC 8446 5.3: reset to 0 at each key change).
    public private(set) var sequence: UInt64 = 0
    /// Key updates followed (RFC 8446 4.6.3).
    public private(set) var updates = 0

    /// Nil when the suite is not one this reads or the secret's length is not the suite's hash length.
    public init?(suite: CipherSuite, secret: [UInt8]) {
        guard let suite = TLS13CipherSuite(suite), secret.count == suite.hashLength,
            let (key, iv) = TLS13RecordReader.trafficKeys(suite, secret)
        else { return nil }
        self.suite = suite
        self.secret = secret
        (self.key, self.iv) = (key, iv)
    }

    /// [sender]_write_key and [sender]_write_iv (RFC 8446 7.3).
    private static func trafficKeys(_ suite: TLS13CipherSuite, _ secret: [UInt8]) -> (AEADKey, [UInt8])? {
        guard let key = AEADKey(suite.algorithm, key: suite.expandLabel(secret, "key", length: suite.keyLength))
        else { return nil }
        return (key, suite.expandLabel(secret, "iv", length: TLS13CipherSuite.ivLength))
    }

    /// Moves to another traffic secret (handshake to application traffic, RFC 8446 7.1).
    public mutating func rekey(secret newSecret: [UInt8]) -> Bool {
        guard newSecret.count == suite.hashLength, let (key, iv) = TLS13RecordReader.trafficKeys(suite, newSecret)
        else { return false }
        secret = newSecret
        (self.key, self.iv) = (key, iv)
        sequence = 0
        return true
    }

    /// application_traffic_secret_N+1 = HKDF-Expand-Label(application_traffic_secret_N,
    /// "traffic upd", "", Hash.length) (RFC 8446 7.2), after the sender's KeyUpdate.
    public mutating func update() {
        _ = rekey(secret: suite.expandLabel(secret, "traffic upd", length: suite.hashLength))
        updates += 1
    }

    /// Opens one TLSCiphertext: `record` is the whole record, its 5-byte header (the
    /// additional data, RFC 8446 5.2) included. Returns the inner content type and content;
    /// nil when it does not authenticate (then the sequence number is left as it was).
    public mutating func open(_ record: UnsafeRawBufferPointer) -> (type: ContentType, content: [UInt8])? {
        guard record.count >= 5 + TLS13CipherSuite.tagLength + 1 else { return nil }
        let opened = perRecordNonce(iv, sequence).withUnsafeBytes {
            key.open(
                nonce: $0,
                sealed: UnsafeRawBufferPointer(rebasing: record[5...]),
                additionalData: UnsafeRawBufferPointer(rebasing: record[0..<5])
            )
        }
        guard let opened else { return nil }
        sequence += 1
        // TLSInnerPlaintext: content, ContentType type, uint8 zeros[length_of_padding] (RFC 8446 5.4).
        return opened.withUnsafeBytes { plaintext in
            var end = plaintext.count
            while end > 0, plaintext[end - 1] == 0 { end -= 1 }
            guard end > 0 else { return (ContentType(rawValue: 0), []) }  // all padding: no type (an error, 5.4)
            return (ContentType(rawValue: plaintext[end - 1]), Array(plaintext[0..<(end - 1)]))
        }
    }
}

/// What a decoder needs to read the server's protected records of a TLS 1.3 connection: the
/// reader under the server's handshake traffic secret, and the application traffic secret it
/// moves to after the server's Finished (RFC 8446 7.1).
public struct TLS13Decryption: Sendable {
    /// Protected records opened per direction: the handshake flight, the tickets and some
    /// application data around them; past this the direction is read as ciphertext again.
    public static let maximumRecords = 64

    var reader: TLS13RecordReader
    let applicationSecret: [UInt8]?
    var inHandshakeEpoch = true
    var recordsOpened = 0

    /// Nil when the suite is not one this reads or a secret does not fit it.
    public init?(suite: CipherSuite, handshakeSecret: [UInt8], applicationSecret: [UInt8]?) {
        guard let reader = TLS13RecordReader(suite: suite, secret: handshakeSecret) else { return nil }
        if let applicationSecret, applicationSecret.count != reader.suite.hashLength { return nil }
        self.reader = reader
        self.applicationSecret = applicationSecret
    }
}
