import CCryptoBoringSSL

/// HKDF (RFC 5869) and TLS 1.3's HKDF-Expand-Label (RFC 8446 7.1), called in BoringSSL
/// directly. Through swift-crypto's `HKDF` (its keys, `Data` and generic wrappers) deriving
/// one QUIC Initial's keys cost about 190,000 instructions, of which the hashing was 40,000:
/// a flood of Initials from real clients, each with its own connection ID, ran 37 times
/// slower per packet than normal traffic (issue 14).
enum KeyDerivation {
    /// The hashes of TLS 1.3's cipher suites (RFC 8446 B.4).
    enum Hash {
        case sha256, sha384

        var digest: OpaquePointer {
            switch self {
            case .sha256: CCryptoBoringSSL_EVP_sha256()
            case .sha384: CCryptoBoringSSL_EVP_sha384()
            }
        }
        var length: Int { self == .sha256 ? 32 : 48 }
    }

    /// HKDF-Extract(salt, input key material): the pseudorandom key, the hash's length.
    static func extract(_ hash: Hash, salt: [UInt8], inputKeyMaterial: [UInt8]) -> [UInt8] {
        if hash == .sha256 {
            let hmac = salt.withUnsafeBytes { HMACSHA256(key: $0) }
            var key = [UInt8](repeating: 0, count: 32)
            key.withUnsafeMutableBufferPointer { output in
                inputKeyMaterial.withUnsafeBytes {
                    hmac.authenticate($0, UnsafeRawBufferPointer(start: nil, count: 0), into: output)
                }
            }
            return key
        }
        var key = [UInt8](repeating: 0, count: hash.length)
        var written = 0
        let done = key.withUnsafeMutableBufferPointer { out in
            inputKeyMaterial.withUnsafeBufferPointer { input in
                salt.withUnsafeBufferPointer { salt in
                    // BoringSSL takes the input key material before the salt.
                    CCryptoBoringSSL_HKDF_extract(
                        out.baseAddress,
                        &written,
                        hash.digest,
                        input.baseAddress,
                        input.count,
                        salt.baseAddress,
                        salt.count
                    )
                }
            }
        }
        return done == 1 && written == hash.length ? key : []
    }

    /// Labels are short ("tls13 " and at most a dozen bytes here); HkdfLabel's label is at
    /// most 255 bytes (RFC 8446 7.1).
    static let maximumLabelBytes = 255

    /// HKDF-Expand-Label(secret, label, "", length): HKDF-Expand with the HkdfLabel structure
    /// (length, "tls13 " + label, an empty context) as its info. Empty when the label is too
    /// long or BoringSSL refuses: the caller's key set-up then fails on the length.
    static func expandLabel(_ hash: Hash, secret: [UInt8], label: String, length: Int) -> [UInt8] {
        expandLabels(hash, secret: secret, [HKDFLabel(label, length: length)])[0]
    }

    /// `expandLabel` of each label under one secret, whose HMAC key is set up once (a QUIC
    /// packet protection's key, IV and header protection key, RFC 9001 5.1).
    static func expandLabels(_ hash: Hash, secret: [UInt8], _ labels: [HKDFLabel]) -> [[UInt8]] {
        if hash == .sha256, labels.allSatisfy({ $0.length <= 32 }) {
            // HKDF-Expand (RFC 5869 2.3): T(1) = HMAC(PRK, info | 0x01) is all a length up to
            // the hash's needs.
            let hmac = secret.withUnsafeBytes { HMACSHA256(key: $0) }
            return labels.map { label in
                guard let info = label.info else { return [] }
                var block = [UInt8](repeating: 0, count: 32)
                var counter: UInt8 = 1
                block.withUnsafeMutableBufferPointer { output in
                    info.withUnsafeBytes { info in
                        withUnsafeBytes(of: &counter) { hmac.authenticate(info, $0, into: output) }
                    }
                }
                block.removeLast(32 - label.length)
                return block
            }
        }
        var context = HMAC_CTX()
        CCryptoBoringSSL_HMAC_CTX_init(&context)
        defer { CCryptoBoringSSL_HMAC_CTX_cleanup(&context) }
        let keyed = secret.withUnsafeBufferPointer {
            CCryptoBoringSSL_HMAC_Init_ex(&context, $0.baseAddress, $0.count, hash.digest, nil)
        }
        return labels.map { label in
            let length = label.length
            guard keyed == 1, let info = label.info else { return [] }
            // HKDF-Expand (RFC 5869 2.3): T(1) = HMAC(PRK, info | 0x01) is all a length up to
            // the hash's needs; a longer one goes to BoringSSL's loop.
            guard length <= hash.length else {
                var output = [UInt8](repeating: 0, count: length)
                let done = output.withUnsafeMutableBufferPointer { out in
                    secret.withUnsafeBufferPointer { secret in
                        info.withUnsafeBufferPointer { info in
                            CCryptoBoringSSL_HKDF_expand(
                                out.baseAddress,
                                out.count,
                                hash.digest,
                                secret.baseAddress,
                                secret.count,
                                info.baseAddress,
                                info.count
                            )
                        }
                    }
                }
                return done == 1 ? output : []
            }
            var block = [UInt8](repeating: 0, count: hash.length)
            var written: UInt32 = 0
            var counter: UInt8 = 1
            let done = block.withUnsafeMutableBufferPointer { out in
                info.withUnsafeBufferPointer { info in
                    // A NULL key with the same hash: the key set up above, not set up again.
                    CCryptoBoringSSL_HMAC_Init_ex(&context, nil, 0, nil, nil) == 1
                        && CCryptoBoringSSL_HMAC_Update(&context, info.baseAddress, info.count) == 1
                        && CCryptoBoringSSL_HMAC_Update(&context, &counter, 1) == 1
                        && CCryptoBoringSSL_HMAC_Final(&context, out.baseAddress, &written) == 1
                }
            }
            guard done, Int(written) == hash.length else { return [] }
            block.removeLast(hash.length - length)
            return block
        }
    }
}

/// HkdfLabel (RFC 8446 7.1) as bytes: the output length, "tls13 " + label, an empty context.
/// Built once for the labels every connection uses (QUIC's "client in", "quic key", ...):
/// building it per derivation from strings cost as much as an HMAC.
struct HKDFLabel: Sendable {
    let length: Int
    /// Nil when the label is longer than HkdfLabel allows.
    let info: [UInt8]?

    init(_ label: String, length: Int) {
        self.length = length
        var info: [UInt8] = [UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length), 0]
        info.append(contentsOf: "tls13 ".utf8)
        info.append(contentsOf: label.utf8)
        let labelBytes = info.count - 3
        guard labelBytes <= KeyDerivation.maximumLabelBytes, length >= 0, length <= UInt16.max else {
            self.info = nil
            return
        }
        info[2] = UInt8(labelBytes)
        info.append(0)
        self.info = info
    }
}

/// HMAC-SHA256 (RFC 2104) on BoringSSL's SHA-256, its key's padded blocks hashed once: a
/// MAC is then two compressions for a short message and copies of two 112-byte states, with
/// no allocation (BoringSSL's `HMAC_CTX` allocates three digest states per key). QUIC
/// Initial keys take seven MACs per connection ID (RFC 9001 5.2).
struct HMACSHA256 {
    private var inner = SHA256_CTX()
    private var outer = SHA256_CTX()
    static let blockBytes = 64

    init(key: UnsafeRawBufferPointer) {
        var pads = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &pads) { pad in
            if key.count > Self.blockBytes {
                // A key longer than a block is hashed first (RFC 2104 2).
                var context = SHA256_CTX()
                CCryptoBoringSSL_SHA256_Init(&context)
                CCryptoBoringSSL_SHA256_Update(&context, key.baseAddress, key.count)
                CCryptoBoringSSL_SHA256_Final(pad.baseAddress!.assumingMemoryBound(to: UInt8.self), &context)
            } else if key.count > 0 {
                pad.copyMemory(from: key)
            }
            for index in 0..<Self.blockBytes { pad[index] ^= 0x36 }
            CCryptoBoringSSL_SHA256_Init(&inner)
            CCryptoBoringSSL_SHA256_Update(&inner, pad.baseAddress, Self.blockBytes)
            for index in 0..<Self.blockBytes { pad[index] ^= 0x36 ^ 0x5c }
            CCryptoBoringSSL_SHA256_Init(&outer)
            CCryptoBoringSSL_SHA256_Update(&outer, pad.baseAddress, Self.blockBytes)
        }
    }

    /// The MAC of `first` followed by `second`, its 32 bytes written to `output`.
    func authenticate(
        _ first: UnsafeRawBufferPointer,
        _ second: UnsafeRawBufferPointer,
        into output: UnsafeMutableBufferPointer<UInt8>
    ) {
        precondition(output.count >= 32)
        var context = inner
        if let base = first.baseAddress { CCryptoBoringSSL_SHA256_Update(&context, base, first.count) }
        if let base = second.baseAddress { CCryptoBoringSSL_SHA256_Update(&context, base, second.count) }
        CCryptoBoringSSL_SHA256_Final(output.baseAddress, &context)
        context = outer
        CCryptoBoringSSL_SHA256_Update(&context, output.baseAddress, 32)
        CCryptoBoringSSL_SHA256_Final(output.baseAddress, &context)
    }
}
