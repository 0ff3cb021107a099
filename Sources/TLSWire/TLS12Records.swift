import Crypto
import FoundationEssentials

/// A TLS 1.2 AEAD cipher suite this reads (RFC 5288 AES-GCM, RFC 5289 ECDHE AES-GCM,
/// RFC 7905 ChaCha20-Poly1305): its AEAD, and the hash of its PRF (RFC 5246 5).
public enum TLS12AEADSuite: Sendable, Equatable {
    case aes128GCM
    case aes256GCM
    case chacha20Poly1305

    public init?(_ suite: CipherSuite) {
        switch suite.rawValue {
        // TLS_{RSA,DH_RSA,DHE_RSA,DHE_DSS,DH_DSS,DH_anon,PSK,DHE_PSK,RSA_PSK}_WITH_AES_128_GCM_SHA256 and
        // TLS_ECDHE_{ECDSA,RSA}_WITH_AES_128_GCM_SHA256, ECDH_{ECDSA,RSA} (RFC 5288, 5289, 5487)
        case 0x009c, 0x009e, 0x00a0, 0x00a2, 0x00a4, 0x00a6, 0x00a8, 0x00aa, 0x00ac, 0xc02b, 0xc02d, 0xc02f, 0xc031:
            self = .aes128GCM
        case 0x009d, 0x009f, 0x00a1, 0x00a3, 0x00a5, 0x00a7, 0x00a9, 0x00ab, 0x00ad, 0xc02c, 0xc02e, 0xc030, 0xc032:
            self = .aes256GCM
        case 0xcca8, 0xcca9, 0xccaa, 0xccab, 0xccac, 0xccad, 0xccae:  // RFC 7905
            self = .chacha20Poly1305
        default:
            return nil
        }
    }

    var keyLength: Int { self == .aes128GCM ? 16 : 32 }
    /// client_write_IV and server_write_IV: the 4-byte GCM salt (RFC 5288 3), or ChaCha20's
    /// whole 12-byte nonce mask (RFC 7905 2).
    var fixedIVLength: Int { self == .chacha20Poly1305 ? 12 : 4 }
    /// GCM's explicit nonce, sent at the start of each record (RFC 5288 3); none for ChaCha20.
    var explicitNonceLength: Int { self == .chacha20Poly1305 ? 0 : 8 }
    static let tagLength = 16

    /// PRF(secret, label, seed) = P_<hash>(secret, label + seed) (RFC 5246 5): SHA-384 for
    /// the AES-256-GCM suites, SHA-256 for the others.
    public func prf(secret: [UInt8], label: String, seed: [UInt8], length: Int) -> [UInt8] {
        switch self {
        case .aes256GCM: return Self.pHash(SHA384.self, secret: secret, seed: Array(label.utf8) + seed, length: length)
        case .aes128GCM, .chacha20Poly1305:
            return Self.pHash(SHA256.self, secret: secret, seed: Array(label.utf8) + seed, length: length)
        }
    }

    /// P_hash(secret, seed) = HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed) + ...,
    /// A(0) = seed, A(i) = HMAC(secret, A(i-1)) (RFC 5246 5).
    static func pHash<H: HashFunction>(_: H.Type, secret: [UInt8], seed: [UInt8], length: Int) -> [UInt8] {
        let key = SymmetricKey(data: secret)
        var output: [UInt8] = []
        output.reserveCapacity(length + H.Digest.byteCount)
        var a = seed
        while output.count < length {
            a = Array(HMAC<H>.authenticationCode(for: a, using: key))
            output += Array(HMAC<H>.authenticationCode(for: a + seed, using: key))
        }
        return Array(output.prefix(length))
    }
}

/// Removes the record protection of one direction of a TLS 1.2 connection with an AEAD
/// suite (RFC 5246 6.2.3.3): keys from the key block of the master secret a key log gives
/// (CLIENT_RANDOM, RFC 5246 6.3), the nonce from the record (GCM) or the sequence number
/// (ChaCha20), and the additional data from the sequence number and the record header.
public struct TLS12RecordReader: Sendable {
    public let suite: TLS12AEADSuite
    private let key: AEADKey
    private let fixedIV: [UInt8]
    /// Records opened (RFC 5246 6.1: the sequence number starts at 0 after ChangeCipherSpec).
    public private(set) var sequence: UInt64 = 0

    /// The reader of the client's records (`fromClient`) or the server's, after their
    /// ChangeCipherSpec; nil when the suite is not one this reads or the master secret is
    /// not 48 bytes.
    public init?(
        suite: CipherSuite,
        masterSecret: [UInt8],
        clientRandom: [UInt8],
        serverRandom: [UInt8],
        fromClient: Bool
    ) {
        guard let suite = TLS12AEADSuite(suite), masterSecret.count == 48, clientRandom.count == 32,
            serverRandom.count == 32
        else { return nil }
        self.suite = suite
        // key_block: client_write_MAC_key, server_write_MAC_key (none for AEAD),
        // client_write_key, server_write_key, client_write_IV, server_write_IV (RFC 5246 6.3).
        let keyLength = suite.keyLength
        let ivLength = suite.fixedIVLength
        let block = suite.prf(
            secret: masterSecret,
            label: "key expansion",
            seed: serverRandom + clientRandom,
            length: 2 * keyLength + 2 * ivLength
        )
        let keyStart = fromClient ? 0 : keyLength
        let ivStart = 2 * keyLength + (fromClient ? 0 : ivLength)
        guard
            let key = AEADKey(
                suite == .chacha20Poly1305 ? .chaCha20Poly1305 : .aesGCM,
                key: Array(block[keyStart..<(keyStart + keyLength)])
            )
        else { return nil }
        self.key = key
        fixedIV = Array(block[ivStart..<(ivStart + ivLength)])
    }

    /// Passes over one record without opening it (application data): its sequence number is used.
    public mutating func skip() { sequence += 1 }

    /// Opens one TLSCiphertext: `record` is the whole record, its 5-byte header included.
    /// Returns the plaintext; nil when it does not authenticate (the sequence number is then
    /// left as it was).
    public mutating func open(_ record: UnsafeRawBufferPointer) -> [UInt8]? {
        let explicitLength = suite.explicitNonceLength
        guard record.count >= 5 + explicitLength + TLS12AEADSuite.tagLength else { return nil }
        let plaintextLength = record.count - 5 - explicitLength - TLS12AEADSuite.tagLength
        // additional_data = seq_num + TLSCompressed.type + version + length (RFC 5246 6.2.3.3).
        var additional = [UInt8](repeating: 0, count: 13)
        for index in 0..<8 { additional[index] = UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64(index))) }
        additional[8] = record[0]
        additional[9] = record[1]
        additional[10] = record[2]
        additional[11] = UInt8(plaintextLength >> 8)
        additional[12] = UInt8(plaintextLength & 0xff)
        let body = 5 + explicitLength
        // GCM: nonce = salt (client_write_IV or server_write_IV) + explicit nonce (RFC 5288 3);
        // ChaCha20: the IV XOR the sequence number (RFC 7905 2).
        let opened = key.open(
            nonce: suite == .chacha20Poly1305 ? perRecordNonce(fixedIV, sequence) : fixedIV + Array(record[5..<13]),
            sealed: UnsafeRawBufferPointer(rebasing: record[body...]),
            additionalData: additional
        )
        guard let opened else { return nil }
        sequence += 1
        return opened
    }
}

/// What a decoder needs to read one direction of a TLS 1.2 connection after its
/// ChangeCipherSpec with a key log's master secret: the reader, and how many records it
/// has read. Application data is passed over (counted for the sequence number), handshake,
/// alert and ChangeCipherSpec records are opened: a renegotiation's handshake travels there
/// (RFC 5246 7.4.1.1).
public struct TLS12Decryption: Sendable {
    /// Protected records read per direction: renegotiations come early if at all (a
    /// server asking for a client certificate after the first request); past this the
    /// direction is read as ciphertext again.
    public static let maximumRecords = 64
    /// Capture time a connection is read so after its first ChangeCipherSpec (10 s): the
    /// record is not held back longer for a renegotiation that may never come.
    public static let maximumReadNanos: Int64 = 10_000_000_000

    var reader: TLS12RecordReader
    var recordsRead = 0

    public init(_ reader: TLS12RecordReader) { self.reader = reader }
}
