import Testing

@testable import Packets

/// The defragmenter's covered-ranges bookkeeping and its "first copy wins" rule, on
/// hand-made fragments (the bytes are generated, not captured: the rule is what is tested).
@Suite struct DefragmenterTests {
    @Test func coveredRangesFindGapsAndMerge() {
        var covered = CoveredRanges()
        func gaps(_ range: Range<Int>) -> [Range<Int>] {
            var found: [Range<Int>] = []
            covered.forEachGap(in: range) { found.append($0) }
            return found
        }
        #expect(gaps(0..<50) == [0..<50])
        covered.insert(10..<20)
        covered.insert(30..<40)
        covered.insert(5..<5)
        #expect(covered.ranges == [10..<20, 30..<40])
        #expect(gaps(0..<50) == [0..<10, 20..<30, 40..<50])
        #expect(gaps(12..<35) == [20..<30])
        #expect(gaps(12..<18).isEmpty)
        #expect(gaps(40..<45) == [40..<45])
        // Touching ranges merge; one that spans several swallows them.
        covered.insert(20..<25)
        #expect(covered.ranges == [10..<25, 30..<40])
        covered.insert(0..<60)
        #expect(covered.ranges == [0..<60])
        #expect(covered.isExactly(0..<60) && !covered.isExactly(0..<61))
    }

    /// A 3,000-byte datagram cut into overlapping fragments with different bytes, sent in a
    /// shuffled order: each byte comes from the first fragment that carried it, and the
    /// datagram completes exactly when the last gap is filled.
    @Test(arguments: 1...20) func firstCopyWinsInAnyOrder(seed: UInt64) {
        var random = SplitMix(seed: seed)
        let length = 3000
        var fragments: [(offset: Int, bytes: [UInt8], isLast: Bool)] = []
        var offset = 0
        while offset < length {
            let size = min(8 * Int(1 + random.next() % 40), length - offset)
            fragments.append((offset, (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }, false))
            offset += size
        }
        fragments[fragments.count - 1].isLast = true
        // Overlapping copies with other bytes, anywhere.
        for _ in 0..<10 {
            let start = 8 * Int(random.next() % UInt64(length / 8))
            let size = min(8 * Int(1 + random.next() % 20), length - start)
            fragments.append((start, [UInt8](repeating: UInt8(random.next() % 256), count: size), false))
        }
        for index in fragments.indices.reversed() {
            fragments.swapAt(index, Int(random.next() % UInt64(index + 1)))
        }
        var expected = [UInt8](repeating: 0, count: length)
        var seen = [Bool](repeating: false, count: length)
        let defragmenter = Defragmenter()
        let key = Defragmenter.Key(
            source: IPAddress(ipv4: 0x0a00_0001),
            destination: IPAddress(ipv4: 0x0a00_0002),
            identification: 7,
            proto: .udp
        )
        var result: [UInt8]?
        for (arrival, fragment) in fragments.enumerated() {
            for (index, byte) in fragment.bytes.enumerated() where !seen[fragment.offset + index] {
                seen[fragment.offset + index] = true
                expected[fragment.offset + index] = byte
            }
            let outcome = fragment.bytes.withUnsafeBytes {
                defragmenter.add($0, at: fragment.offset, isLast: fragment.isLast, key: key, timestamp: Int64(arrival))
            }
            let whole = seen.allSatisfy { $0 } && fragments[...arrival].contains { $0.isLast }
            switch outcome {
            case let .complete(bytes):
                #expect(whole && result == nil)
                result = Array(bytes)
            case .incomplete: #expect(!whole)
            case .dropped: Issue.record("dropped at arrival \(arrival)")
            }
            if result != nil { break }
        }
        #expect(result == expected)
        #expect(defragmenter.pendingCount == 0 && defragmenter.takeDiscarded() == 0)
    }
}

/// A small deterministic generator (SplitMix64), so each seed gives the same fragments.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
