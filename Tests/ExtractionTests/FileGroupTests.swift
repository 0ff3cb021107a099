import Testing

@testable import Extraction

/// Rotated files are shared among workers in contiguous groups of about equal size.
@Suite struct FileGroupTests {
    /// The bytes each group holds.
    static func groupBytes(_ sizes: [Int64], workers: Int) -> [Int64] {
        Extraction.fileGroups(sizes: sizes, into: workers).map { sizes[$0].reduce(0, +) }
    }

    @Test func groupsAreContiguousAndCoverEveryFile() {
        let cases: [([Int64], Int)] = [
            ([10], 2), ([49, 51], 2), ([51, 49], 2), ([100, 100, 50], 2), ([1, 1000], 2), ([1000, 1], 2),
            (Array(repeating: 100, count: 10), 3), ([0, 0, 0], 2), ([5, 0, 5, 0], 4), ([7, 3, 9, 1, 4], 64),
        ]
        for (sizes, workers) in cases {
            let groups = Extraction.fileGroups(sizes: sizes, into: workers)
            #expect(groups.first?.lowerBound == 0)
            #expect(groups.last?.upperBound == sizes.count)
            #expect(groups.allSatisfy { !$0.isEmpty })
            #expect(zip(groups, groups.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
            #expect(groups.count <= workers)
        }
    }

    /// Two files of nearly equal size get a worker each (they shared one before: the first
    /// group closed only once it held half the bytes).
    @Test func nearlyEqualFilesGetAWorkerEach() {
        #expect(Extraction.fileGroups(sizes: [49, 51], into: 2) == [0..<1, 1..<2])
        #expect(Extraction.fileGroups(sizes: [51, 49], into: 2) == [0..<1, 1..<2])
        #expect(Extraction.fileGroups(sizes: [31_940_291, 33_150_002], into: 2).count == 2)
    }

    /// tcpdump -C: equal files and a smaller last one. The split is the most even one.
    @Test func rotatedFilesSplitEvenly() {
        #expect(Self.groupBytes([100, 100, 50], workers: 2) == [100, 150])
        #expect(Self.groupBytes(Array(repeating: 100, count: 10), workers: 2) == [500, 500])
        #expect(Self.groupBytes(Array(repeating: 100, count: 9) + [40], workers: 3) == [300, 300, 340])
    }
}
