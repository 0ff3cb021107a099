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

/// HMAC-SHA256 (RFC 2104) on BoringSSL's SHA-256 compression function alone: the key's
/// padded blocks are compressed once, and a MAC of a short message is then two compressions
/// of blocks padded here (FIPS 180-4 5.1.1) on an eight-word state on the stack, with no
/// allocation and no hash context. `SHA256_Final` cost 650 instructions per call beyond its
/// compression; QUIC Initial keys take seven MACs per connection ID (RFC 9001 5.2).
struct HMACSHA256 {
    /// SHA-256's eight-word chaining state (FIPS 180-4 6.2).
    typealias State = (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)
    /// H(0) (FIPS 180-4 5.3.3).
    static let initialState: State = (
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19
    )
    static let blockBytes = 64
    static let digestBytes = 32

    private var inner: State
    private var outer: State

    init(key: UnsafeRawBufferPointer) {
        var pads = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        inner = Self.initialState
        outer = Self.initialState
        withUnsafeMutableBytes(of: &pads) { pad in
            if key.count > Self.blockBytes {
                // A key longer than a block is hashed first (RFC 2104 2).
                var digest = Self.initialState
                Self.finish(&digest, key, UnsafeRawBufferPointer(start: nil, count: 0), hashedBefore: 0)
                Self.write(digest, to: UnsafeMutableRawBufferPointer(rebasing: pad[..<Self.digestBytes]))
            } else if key.count > 0 {
                pad.copyMemory(from: key)
            }
            for index in 0..<Self.blockBytes { pad[index] ^= 0x36 }
            Self.compress(&inner, pad.baseAddress!, blocks: 1)
            for index in 0..<Self.blockBytes { pad[index] ^= 0x36 ^ 0x5c }
            Self.compress(&outer, pad.baseAddress!, blocks: 1)
        }
    }

    /// The MAC of `first` followed by `second`, its 32 bytes written to `output`.
    func authenticate(
        _ first: UnsafeRawBufferPointer,
        _ second: UnsafeRawBufferPointer,
        into output: UnsafeMutableBufferPointer<UInt8>
    ) {
        precondition(output.count >= Self.digestBytes)
        var state = inner
        Self.finish(&state, first, second, hashedBefore: Self.blockBytes)
        let digest = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(output)[..<Self.digestBytes])
        Self.write(state, to: digest)
        state = outer
        Self.finish(
            &state,
            UnsafeRawBufferPointer(digest),
            UnsafeRawBufferPointer(start: nil, count: 0),
            hashedBefore: Self.blockBytes
        )
        Self.write(state, to: digest)
    }

    /// HKDF-Expand-Label (RFC 8446 7.1) under this key for an output up to the hash's
    /// length, T(1) = HMAC(PRK, info | 0x01) (RFC 5869 2.3), written to the first
    /// `label.length` bytes of `output`. False when the label is unusable or longer.
    func expand(_ label: HKDFLabel, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard let info = label.info, label.length <= Self.digestBytes, output.count >= label.length else {
            return false
        }
        var block = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        var counter: UInt8 = 1
        withUnsafeMutableBytes(of: &block) { block in
            info.withUnsafeBytes { info in
                withUnsafeBytes(of: &counter) {
                    authenticate(info, $0, into: block.bindMemory(to: UInt8.self))
                }
            }
            output.copyMemory(from: UnsafeRawBufferPointer(rebasing: block[..<label.length]))
        }
        return true
    }

    private static func compress(_ state: inout State, _ blocks: UnsafeRawPointer, blocks count: Int) {
        withUnsafeMutableBytes(of: &state) { words in
            CCryptoBoringSSL_SHA256_TransformBlocks(
                words.baseAddress!.assumingMemoryBound(to: UInt32.self),
                blocks.assumingMemoryBound(to: UInt8.self),
                count
            )
        }
    }

    /// Hashes `first` then `second` into `state`, which has taken `hashedBefore` bytes
    /// (whole blocks), and pads the end: 0x80, zeros, the message's length in bits as 64
    /// bits big-endian, to a block's end (FIPS 180-4 5.1.1).
    private static func finish(
        _ state: inout State,
        _ first: UnsafeRawBufferPointer,
        _ second: UnsafeRawBufferPointer,
        hashedBefore: Int
    ) {
        // Two blocks: the last data with the padding may spill into a second.
        var buffer = (
            (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0)),
            (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        )
        withUnsafeMutableBytes(of: &buffer) { block in
            var filled = 0
            func feed(_ part: UnsafeRawBufferPointer) {
                guard var next = part.baseAddress else { return }
                var left = part.count
                if filled == 0, left >= blockBytes {
                    // Whole blocks straight from the message.
                    let whole = left / blockBytes
                    compress(&state, next, blocks: whole)
                    next += whole * blockBytes
                    left -= whole * blockBytes
                }
                while left > 0 {
                    let take = min(blockBytes - filled, left)
                    (block.baseAddress! + filled).copyMemory(from: next, byteCount: take)
                    filled += take
                    next += take
                    left -= take
                    if filled == blockBytes {
                        compress(&state, block.baseAddress!, blocks: 1)
                        filled = 0
                    }
                }
            }
            feed(first)
            feed(second)
            let bits = UInt64(hashedBefore + first.count + second.count) &* 8
            block[filled] = 0x80
            let blocks = filled + 1 + 8 <= blockBytes ? 1 : 2
            let end = blocks * blockBytes
            (block.baseAddress! + filled + 1).initializeMemory(
                as: UInt8.self,
                repeating: 0,
                count: end - 8 - filled - 1
            )
            block.storeBytes(of: bits.bigEndian, toByteOffset: end - 8, as: UInt64.self)
            compress(&state, block.baseAddress!, blocks: blocks)
        }
    }

    /// The state as a digest: its words big-endian (FIPS 180-4 6.2.2).
    private static func write(_ state: State, to output: UnsafeMutableRawBufferPointer) {
        withUnsafeBytes(of: state) { words in
            for index in 0..<8 {
                let word = words.load(fromByteOffset: 4 * index, as: UInt32.self)
                output.storeBytes(of: word.bigEndian, toByteOffset: 4 * index, as: UInt32.self)
            }
        }
    }
}
