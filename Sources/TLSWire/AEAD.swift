import CCryptoBoringSSL

/// The nonce of record (or QUIC packet) number `sequence`: the IV with the number, as 64 bits
/// big-endian, XORed into its last eight bytes (RFC 8446 5.3, RFC 7905 2, RFC 9001 5.3).
func perRecordNonce(_ iv: [UInt8], _ sequence: UInt64) -> [UInt8] {
    var nonce = iv
    for index in 0..<8 { nonce[iv.count - 1 - index] ^= UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(index))) }
    return nonce
}

/// `perRecordNonce` on the stack, for `body`: no array per packet. The IVs of the AEADs read
/// here are 12 bytes (RFC 8446 5.3); a longer one takes a temporary allocation.
@inline(__always)
func withPerRecordNonce<Result>(
    _ iv: [UInt8],
    _ sequence: UInt64,
    _ body: (UnsafeRawBufferPointer) -> Result
) -> Result {
    let length = iv.count
    @inline(__always) func fill(_ nonce: UnsafeMutableRawBufferPointer) {
        iv.withUnsafeBytes { nonce.copyMemory(from: $0) }
        for index in 0..<min(8, length) {
            nonce[length - 1 - index] ^= UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(index)))
        }
    }
    guard length <= 16 else {
        return withUnsafeTemporaryAllocation(byteCount: length, alignment: 1) { nonce in
            fill(nonce)
            return body(UnsafeRawBufferPointer(nonce))
        }
    }
    var words: (UInt64, UInt64) = (0, 0)
    return withUnsafeMutableBytes(of: &words) { all in
        let nonce = UnsafeMutableRawBufferPointer(rebasing: all[..<length])
        fill(nonce)
        return body(UnsafeRawBufferPointer(nonce))
    }
}

/// An AEAD key, set up once for all the records or packets it opens: AES-GCM (RFC 5116 5.1,
/// 5.3) or ChaCha20-Poly1305 (RFC 8439 2.8).
///
/// It calls the BoringSSL that swift-crypto builds and links. swift-crypto's `open` sets the
/// key up again and wraps nonce, ciphertext, tag and plaintext in `Data` on every call:
/// 14,000 instructions per QUIC Initial, of which the cipher is 1,500 (issue 14's QUIC
/// flood). Here a call costs the cipher and one array for the plaintext.
final class AEADKey: @unchecked Sendable {  // the context is written by init, deinit, and rekey when unshared
    enum Algorithm: Sendable { case aesGCM, chaCha20Poly1305 }

    /// Tag length of the three AEADs read here (RFC 5116 5.1, RFC 8439 2.8).
    static let tagLength = 16
    private let context: UnsafeMutablePointer<EVP_AEAD_CTX>

    /// Nil when the key's length is not one of the algorithm's (16 or 32 bytes for AES-GCM,
    /// 32 for ChaCha20-Poly1305).
    init?(_ algorithm: Algorithm, key: [UInt8]) {
        guard let context = key.withUnsafeBytes({ Self.makeContext(algorithm, key: $0) }) else { return nil }
        self.context = context
    }

    /// `init(_:key:)` from bytes in place (a QUIC Initial's key, derived on the stack).
    init?(_ algorithm: Algorithm, keyBytes key: UnsafeRawBufferPointer) {
        guard let context = Self.makeContext(algorithm, key: key) else { return nil }
        self.context = context
    }

    /// New key bytes in this context, for an owner that holds the only reference (QUIC's
    /// Initial key cache, reusing what it evicts). False when refused: the key is unusable.
    func rekey(_ algorithm: Algorithm, keyBytes key: UnsafeRawBufferPointer) -> Bool {
        guard let aead = Self.aead(algorithm, keyLength: key.count) else { return false }
        CCryptoBoringSSL_EVP_AEAD_CTX_cleanup(context)
        CCryptoBoringSSL_EVP_AEAD_CTX_zero(context)
        return CCryptoBoringSSL_EVP_AEAD_CTX_init(
            context,
            aead,
            key.baseAddress?.assumingMemoryBound(to: UInt8.self),
            key.count,
            Self.tagLength,
            nil
        ) == 1
    }

    private static func aead(_ algorithm: Algorithm, keyLength: Int) -> OpaquePointer? {
        switch (algorithm, keyLength) {
        case (.aesGCM, 16): CCryptoBoringSSL_EVP_aead_aes_128_gcm()
        case (.aesGCM, 32): CCryptoBoringSSL_EVP_aead_aes_256_gcm()
        case (.chaCha20Poly1305, 32): CCryptoBoringSSL_EVP_aead_chacha20_poly1305()
        default: nil
        }
    }

    private static func makeContext(
        _ algorithm: Algorithm,
        key: UnsafeRawBufferPointer
    ) -> UnsafeMutablePointer<EVP_AEAD_CTX>? {
        guard let aead = aead(algorithm, keyLength: key.count) else { return nil }
        let context = UnsafeMutablePointer<EVP_AEAD_CTX>.allocate(capacity: 1)
        CCryptoBoringSSL_EVP_AEAD_CTX_zero(context)
        let initialised = CCryptoBoringSSL_EVP_AEAD_CTX_init(
            context,
            aead,
            key.baseAddress?.assumingMemoryBound(to: UInt8.self),
            key.count,
            tagLength,
            nil
        )
        guard initialised == 1 else {
            context.deallocate()
            return nil
        }
        return context
    }

    deinit {
        CCryptoBoringSSL_EVP_AEAD_CTX_cleanup(context)
        context.deallocate()
    }

    /// Opens `sealed`, the ciphertext followed by its tag, under `nonce` (12 bytes) with
    /// `additionalData`; nil when it does not authenticate.
    func open(
        nonce: UnsafeRawBufferPointer,
        sealed: UnsafeRawBufferPointer,
        additionalData: UnsafeRawBufferPointer
    ) -> [UInt8]? {
        var plaintext: [UInt8] = []
        guard open(nonce: nonce, sealed: sealed, additionalData: additionalData, appendingTo: &plaintext) != nil
        else { return nil }
        return plaintext
    }

    /// `open` into the end of `plaintext`, a buffer the caller reuses (a QUIC Initial flood
    /// allocated an array per packet). Returns where the plaintext lies; on failure
    /// `plaintext` is as it was.
    func open(
        nonce: UnsafeRawBufferPointer,
        sealed: UnsafeRawBufferPointer,
        additionalData: UnsafeRawBufferPointer,
        appendingTo plaintext: inout [UInt8]
    ) -> Range<Int>? {
        guard sealed.count >= Self.tagLength else { return nil }
        // Opened in place in a copy of `sealed` appended to the buffer (BoringSSL allows
        // `out == in`). `Array(repeating:count:)` and `unsafeUninitializedCapacity` reach the
        // unspecialised allocator, whose metadata lookup cost more than the copy (issue 14).
        let start = plaintext.count
        plaintext.append(contentsOf: sealed)
        var written = 0
        let authentic = plaintext.withUnsafeMutableBufferPointer { all in
            let buffer = UnsafeMutableBufferPointer(rebasing: all[start...])
            return CCryptoBoringSSL_EVP_AEAD_CTX_open(
                context,
                buffer.baseAddress,
                &written,
                buffer.count,
                nonce.baseAddress?.assumingMemoryBound(to: UInt8.self),
                nonce.count,
                buffer.baseAddress,
                buffer.count,
                additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self),
                additionalData.count
            ) == 1
        }
        // An AEAD's plaintext is its ciphertext without the tag (RFC 5116 2.2).
        plaintext.removeLast(plaintext.count - start - (authentic ? written : 0))
        return authentic ? start..<(start + written) : nil
    }

    /// `open` with the nonce and additional data in arrays.
    func open(nonce: [UInt8], sealed: UnsafeRawBufferPointer, additionalData: [UInt8]) -> [UInt8]? {
        nonce.withUnsafeBytes { nonce in
            additionalData.withUnsafeBytes { open(nonce: nonce, sealed: sealed, additionalData: $0) }
        }
    }
}

/// QUIC's header protection key (RFC 9001 5.4), set up once: an AES key schedule
/// (AES-ECB of the sample, 5.4.3) or the ChaCha20 key (5.4.4).
final class HeaderProtectionKey: @unchecked Sendable {  // written by init, deinit, and rekey when unshared
    private let aes: UnsafeMutablePointer<AES_KEY>?
    private let chaChaKey: [UInt8]

    /// Nil when the key's length is not 16 or 32 (AES) or 32 (ChaCha20).
    init?(chaCha: Bool, key: [UInt8]) {
        guard let parts = key.withUnsafeBytes({ Self.parts(chaCha: chaCha, key: $0) }) else { return nil }
        (aes, chaChaKey) = parts
    }

    /// `init(chaCha:key:)` from bytes in place (a QUIC Initial's key, derived on the stack).
    init?(chaCha: Bool, keyBytes key: UnsafeRawBufferPointer) {
        guard let parts = Self.parts(chaCha: chaCha, key: key) else { return nil }
        (aes, chaChaKey) = parts
    }

    /// New key bytes in this key's own storage, for an owner that holds the only reference.
    /// False when the kind or length differs: the key is then unchanged.
    func rekey(chaCha: Bool, keyBytes key: UnsafeRawBufferPointer) -> Bool {
        guard !chaCha, let aes, key.count == 16 || key.count == 32, let bytes = key.baseAddress else { return false }
        return CCryptoBoringSSL_AES_set_encrypt_key(
            bytes.assumingMemoryBound(to: UInt8.self),
            UInt32(8 * key.count),
            aes
        )
            == 0
    }

    private static func parts(
        chaCha: Bool,
        key: UnsafeRawBufferPointer
    ) -> (aes: UnsafeMutablePointer<AES_KEY>?, chaChaKey: [UInt8])? {
        if chaCha { return key.count == 32 ? (nil, Array(key)) : nil }
        guard key.count == 16 || key.count == 32, let bytes = key.baseAddress else { return nil }
        let schedule = UnsafeMutablePointer<AES_KEY>.allocate(capacity: 1)
        guard
            CCryptoBoringSSL_AES_set_encrypt_key(
                bytes.assumingMemoryBound(to: UInt8.self),
                UInt32(8 * key.count),
                schedule
            ) == 0
        else {
            schedule.deallocate()
            return nil
        }
        return (schedule, [])
    }

    deinit { aes?.deallocate() }

    /// The five mask bytes from a 16-byte sample: the first five bytes of AES-ECB of the
    /// sample (5.4.3), or of ChaCha20 over five zeros with the sample's first four bytes as
    /// the little-endian block counter and the rest as the nonce (5.4.4).
    func mask(sample: UnsafeRawBufferPointer) -> (UInt8, UInt8, UInt8, UInt8, UInt8)? {
        guard sample.count == 16, let input = sample.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            return nil
        }
        var block: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &block) { output in
            let out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
            if let aes {
                CCryptoBoringSSL_AES_encrypt(input, out, aes)
            } else {
                let counter =
                    UInt32(sample[0]) | UInt32(sample[1]) << 8 | UInt32(sample[2]) << 16 | UInt32(sample[3]) << 24
                let zeros: (UInt64, UInt64) = (0, 0)
                withUnsafeBytes(of: zeros) { zeros in
                    chaChaKey.withUnsafeBufferPointer { key in
                        CCryptoBoringSSL_CRYPTO_chacha_20(
                            out,
                            zeros.baseAddress!.assumingMemoryBound(to: UInt8.self),
                            5,
                            key.baseAddress,
                            input + 4,
                            counter
                        )
                    }
                }
            }
            return (output[0], output[1], output[2], output[3], output[4])
        }
    }
}
