import Testing

@testable import Packets

/// The flow tables' keyed hash against OpenSSL's SipHash (`openssl mac -macopt hexkey:KEY
/// -macopt size:8 [-macopt c-rounds:1 -macopt d-rounds:3] SIPHASH` on the same 40 bytes; it
/// prints the hash's eight bytes little-endian).
@Suite struct KeyedHashTests {
    /// The 40 bytes `first`, `first + 1`, ... as five little-endian words.
    func words(from first: UInt8) -> (UInt64, UInt64, UInt64, UInt64, UInt64) {
        func word(_ index: Int) -> UInt64 {
            (0..<8).reduce(0) { $0 | UInt64(first &+ UInt8(8 * index + $1)) << (8 * UInt64($1)) }
        }
        return (word(0), word(1), word(2), word(3), word(4))
    }

    @Test func matchesOpenSSLSipHash() {
        // Key 00 01 ... 0f, message 00 01 ... 27: SipHash-2-4 printed D0A704536BA93E0E.
        let paperKey: (UInt64, UInt64) = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908)
        #expect(
            KeyedHash.sipHash(words: words(from: 0), key: paperKey, compressionRounds: 2, finalizationRounds: 4)
                == 0x0e3e_a96b_5304_a7d0
        )
        // SipHash-1-3 (Swift's Hasher's variant, the one the tables use): 3115E4993236D2C1.
        #expect(
            KeyedHash.sipHash(words: words(from: 0), key: paperKey, compressionRounds: 1, finalizationRounds: 3)
                == 0xc1d2_3632_99e4_1531
        )
        // Key f0 e1 d2 c3 b4 a5 96 87 78 69 5a 4b 3c 2d 1e 0f, message 64 65 ... 8b: 451DE1E44AAE4386.
        let otherKey: (UInt64, UInt64) = (0x8796_a5b4_c3d2_e1f0, 0x0f1e_2d3c_4b5a_6978)
        #expect(
            KeyedHash.sipHash(words: words(from: 100), key: otherKey, compressionRounds: 1, finalizationRounds: 3)
                == 0x8643_ae4a_e4e1_1d45
        )
    }

    /// The process's key is drawn at random: not the paper's, not zero, and the hash of a
    /// word differs from the unkeyed one.
    @Test func keyIsRandom() {
        let key = KeyedHash.key
        #expect(key.0 != 0 || key.1 != 0)
        let sample = words(from: 0)
        #expect(
            KeyedHash.hash(sample.0, sample.1, sample.2, sample.3, sample.4)
                != KeyedHash.sipHash(words: sample, key: (0, 0), compressionRounds: 1, finalizationRounds: 3)
        )
    }
}
