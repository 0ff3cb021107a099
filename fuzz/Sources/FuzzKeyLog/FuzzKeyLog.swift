import Crypto
import FuzzDriver
import TLSWire

/// A fixed secret for the protected records this target writes (any 32 bytes will do).
let secret = [UInt8](repeating: 0x5a, count: 32)

/// A fixed TLS 1.2 master secret and hello randoms for the TLS 1.2 records this writes.
let masterSecret = [UInt8](repeating: 0x33, count: 48)
let clientRandom = [UInt8](repeating: 2, count: 32)
let serverRandom = [UInt8](repeating: 1, count: 32)

/// `plaintext` as TLS 1.2 record `sequence` of content type `type`, sealed with the server's
/// AES-128-GCM keys from the fixed master secret (RFC 5246 6.2.3.3, 6.3; RFC 5288 3).
func sealedTLS12(_ plaintext: some Collection<UInt8>, type: UInt8, sequence: UInt64) -> [UInt8] {
    let block = TLS12AEADSuite.aes128GCM.prf(
        secret: masterSecret,
        label: "key expansion",
        seed: serverRandom + clientRandom,
        length: 40
    )
    let key = SymmetricKey(data: block[16..<32])
    var explicit = [UInt8](repeating: 0, count: 8)
    for index in 0..<8 { explicit[index] = UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64(index))) }
    let nonce = Array(block[36..<40]) + explicit
    let length = plaintext.count
    let additional = explicit + [type, 0x03, 0x03, UInt8(length >> 8), UInt8(length & 0xff)]
    guard
        let box = try? AES.GCM.seal(
            Array(plaintext),
            using: key,
            nonce: AES.GCM.Nonce(data: nonce),
            authenticating: additional
        )
    else { return [] }
    let recordLength = 8 + length + 16
    return [type, 0x03, 0x03, UInt8(recordLength >> 8), UInt8(recordLength & 0xff)] + explicit
        + Array(box.ciphertext) + Array(box.tag)
}

/// A TLS 1.2 ServerHello choosing TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, then the server's
/// ChangeCipherSpec, both in the clear.
let tls12Start: [UInt8] = {
    let body: [UInt8] = [0x03, 0x03] + serverRandom + [0x00, 0xc0, 0x2f, 0x00]
    let message = [0x02, 0x00, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
    return [0x16, 0x03, 0x03, UInt8(message.count >> 8), UInt8(message.count & 0xff)] + message
        + [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]
}()

/// Asks for decryption as the Handshakes stage does with a key log: TLS 1.3 at the
/// ServerHello; TLS 1.2 at each ChangeCipherSpec (the first in the clear, a renegotiation's
/// inside), with the master secret.
struct Sink: TLSEventHandler {
    let tls12: Bool
    var events = 0
    mutating func handle(_ event: consuming TLSEvent, stream: Int) -> TLSDirective {
        events += 1
        switch event {
        case .serverHello where !tls12:
            return TLS13Decryption(
                suite: CipherSuite(rawValue: 0x1301),
                handshakeSecret: secret,
                applicationSecret: secret
            ).map { .decryptFromHere($0) } ?? .proceed
        case .changeCipherSpec where tls12:
            return TLS12RecordReader(
                suite: CipherSuite(rawValue: 0xc02f),
                masterSecret: masterSecret,
                clientRandom: clientRandom,
                serverRandom: serverRandom,
                fromClient: false
            ).map { .decryptTLS12FromHere(TLS12Decryption($0)) } ?? .proceed
        default:
            return .proceed
        }
    }
}

/// A TLS 1.3 ServerHello (RFC 8446 4.1.3) choosing TLS_AES_128_GCM_SHA256, in a record.
let serverHello: [UInt8] = {
    let extensions: [UInt8] = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]  // supported_versions: TLS 1.3
    var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 1, count: 32) + [0x00, 0x13, 0x01, 0x00]
    body += [UInt8(extensions.count >> 8), UInt8(extensions.count & 0xff)] + extensions
    let message = [0x02, 0x00, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
    return [0x16, 0x03, 0x03, UInt8(message.count >> 8), UInt8(message.count & 0xff)] + message
}()

/// `plaintext` with its inner content type, sealed as record `sequence` under `secret`'s
/// handshake keys (RFC 8446 5.2, 5.3, 7.3).
func sealed(_ plaintext: some Collection<UInt8>, type: UInt8, sequence: UInt64) -> [UInt8] {
    let suite = TLS13CipherSuite.aes128GCM
    let key = SymmetricKey(data: suite.expandLabel(secret, "key", length: 16))
    var nonce = suite.expandLabel(secret, "iv", length: 12)
    for index in 0..<8 { nonce[4 + index] ^= UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64(index))) }
    let inner = Array(plaintext) + [type]
    let length = inner.count + 16
    let header: [UInt8] = [0x17, 0x03, 0x03, UInt8(length >> 8), UInt8(length & 0xff)]
    guard let box = try? AES.GCM.seal(inner, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: header)
    else { return [] }
    return header + Array(box.ciphertext) + Array(box.tag)
}

/// Key log text (`--keylog`, Decryption Secrets Blocks, `live`'s growing files), and the
/// plaintext of a server's protected TLS 1.3 records (EncryptedExtensions, Certificate,
/// NewSessionTicket, KeyUpdate...), which a key log opens whoever wrote them.
/// And TLS 1.2's records after ChangeCipherSpec, opened with a master secret (renegotiations).
/// Input: one byte choosing which (even: key log text; 1 mod 4: TLS 1.3 records; 3 mod 4:
/// TLS 1.2 records); each record is led by two bytes: its content type (of eight: mostly
/// handshake) and its length.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let input = UnsafeBufferPointer(start: data + 1, count: size - 1)
    if data[0] & 1 == 0 {
        // Key log text, read in two parts as a followed file is, with a small connection limit.
        var keyLog = KeyLog(memoryBytes: 16 * KeyLog.bytesPerConnection)
        let cut = input.count / 3
        keyLog.add(text: input[..<cut], source: "fuzz")
        keyLog.add(text: input[cut...], source: "fuzz", firstLine: 7)
        precondition(keyLog.connections.count <= keyLog.connectionLimit)
        precondition(keyLog.problems.count <= KeyLog.maximumDescribedProblems)
        for random in keyLog.connections.keys { _ = keyLog.secrets(for: random) }
        return 0
    }
    let tls12 = data[0] & 3 == 3
    var stream = tls12 ? tls12Start : serverHello
    var position = 0
    var sequence: UInt64 = 0
    let types: [UInt8] = [22, 22, 22, 21, 23, 0, 20, 24]
    while position + 1 < input.count, sequence < 200 {
        let type = types[Int(input[position] & 7)]
        let end = min(input.count, position + 2 + Int(input[position + 1]))
        position += 2
        if tls12 {
            stream += sealedTLS12(input[position..<end], type: type == 0 ? 22 : type, sequence: sequence)
            // After a renegotiation's ChangeCipherSpec the sink gives fresh keys: numbering restarts.
            sequence = type == 20 ? 0 : sequence + 1
            position = end
            continue
        }
        stream += sealed(input[position..<end], type: type, sequence: sequence)
        sequence += 1
        position = end
    }
    var decoder = TLSStreamDecoder(streamTag: 1)
    stream.withUnsafeBytes { bytes in
        var sink = Sink(tls12: tls12)
        var at = 0
        while at < bytes.count {
            let end = min(bytes.count, at + 61)
            decoder.feed(UnsafeRawBufferPointer(rebasing: bytes[at..<end]), handler: &sink)
            at = end
        }
    }
    return 0
}

@_cdecl("FuzzKeyLog_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv, fuzz)
}
