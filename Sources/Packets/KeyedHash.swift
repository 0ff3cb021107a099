/// SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) of five 64-bit
/// words under a random 128-bit key drawn once per process: the hash of the flow tables
/// (TCP, UDP handshakes), whose keys come from the wire. Without the key a crafted capture
/// cannot choose flows that share a probe chain.
///
/// It is SipHash-1-3, the variant and key size Swift's `Hasher` uses, with the rounds written
/// out for exactly five words: through `Hasher` the same hash cost about 370 instructions per
/// lookup (its byte buffer and a call per word), here about 150 (issue 14's QUIC flood
/// hashes a new flow per datagram).
public enum KeyedHash {
    /// The process's key: two words from the system's random source.
    public static let key: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()

    /// SipHash-1-3 of the five words as 40 little-endian bytes.
    @inlinable @inline(__always)
    public static func hash(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64, _ e: UInt64) -> UInt64 {
        sipHash(words: (a, b, c, d, e), key: key, compressionRounds: 1, finalizationRounds: 3)
    }

    /// SipHash-c-d of `words` (the message: 40 bytes, each word little-endian), as the paper
    /// defines it for any c and d; the flow tables use c = 1, d = 3.
    @inlinable @inline(__always)
    public static func sipHash(
        words: (UInt64, UInt64, UInt64, UInt64, UInt64),
        key: (UInt64, UInt64),
        compressionRounds: Int,
        finalizationRounds: Int
    ) -> UInt64 {
        var state = SipState(key: key)
        state.compress(words.0, rounds: compressionRounds)
        state.compress(words.1, rounds: compressionRounds)
        state.compress(words.2, rounds: compressionRounds)
        state.compress(words.3, rounds: compressionRounds)
        state.compress(words.4, rounds: compressionRounds)
        // The last block: no bytes left over, the length (40) in its top byte.
        state.compress(40 << 56, rounds: compressionRounds)
        return state.finalize(rounds: finalizationRounds)
    }
}

/// SipHash's four words of state (paper, 2.1-2.3).
@usableFromInline @frozen struct SipState {
    @usableFromInline var v0: UInt64
    @usableFromInline var v1: UInt64
    @usableFromInline var v2: UInt64
    @usableFromInline var v3: UInt64

    /// The key XORed into "somepseudorandomlygeneratedbytes".
    @inlinable @inline(__always) init(key: (UInt64, UInt64)) {
        v0 = key.0 ^ 0x736f_6d65_7073_6575
        v1 = key.1 ^ 0x646f_7261_6e64_6f6d
        v2 = key.0 ^ 0x6c79_6765_6e65_7261
        v3 = key.1 ^ 0x7465_6462_7974_6573
    }

    /// SipRound.
    @inlinable @inline(__always) mutating func round() {
        v0 &+= v1
        v1 = v1.rotatedLeft(13) ^ v0
        v0 = v0.rotatedLeft(32)
        v2 &+= v3
        v3 = v3.rotatedLeft(16) ^ v2
        v0 &+= v3
        v3 = v3.rotatedLeft(21) ^ v0
        v2 &+= v1
        v1 = v1.rotatedLeft(17) ^ v2
        v2 = v2.rotatedLeft(32)
    }

    @inlinable @inline(__always) mutating func compress(_ word: UInt64, rounds: Int) {
        v3 ^= word
        for _ in 0..<rounds { round() }
        v0 ^= word
    }

    @inlinable @inline(__always) mutating func finalize(rounds: Int) -> UInt64 {
        v2 ^= 0xff
        for _ in 0..<rounds { round() }
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    @inlinable @inline(__always)
    func rotatedLeft(_ count: UInt64) -> UInt64 { self << count | self >> (64 - count) }
}
