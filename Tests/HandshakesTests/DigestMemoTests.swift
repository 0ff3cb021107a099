import Testing

@testable import Handshakes

/// The ticket digest memo gives what SHA-256 gives, whatever it is fed. Inputs here are
/// HAND-MADE bytes: tickets that repeat, that share their first and last bytes (the memo's
/// slot) but differ inside, and that are longer than it keeps.
@Suite struct DigestMemoTests {
    @Test func memoisedDigestsAreTheDigests() {
        let memo = DigestMemo()
        var generator = SystemRandomNumberGenerator()
        var inputs: [[UInt8]] = (0..<300).map { index in
            (0..<(1 + index * 7 % 1100)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        }
        // Same length and ends, another middle: the same slot, another digest.
        var twin = inputs[200]
        twin[twin.count / 2] ^= 0xff
        inputs.append(twin)
        // Repeats, as clients offer a ticket again.
        inputs += inputs.prefix(50) + inputs.suffix(50)
        for input in inputs {
            #expect(memo.shortDigest(input) == shortDigestBytes(input))
            #expect(memo.shortDigest(input[...]) == shortDigestBytes(input))
        }
        #expect(memo.shortDigest(inputs[200]) != memo.shortDigest(twin))
    }

    /// A slice that does not start at index 0 is read from its own start.
    @Test func slicesAreReadFromTheirStart() {
        let memo = DigestMemo()
        let bytes = (0..<400).map { UInt8(truncatingIfNeeded: $0 * 31) }
        let slice = bytes[37..<290]
        #expect(memo.shortDigest(slice) == shortDigestBytes(Array(slice)))
        #expect(memo.shortDigest(Array(slice)) == shortDigestBytes(Array(slice)))
    }
}
