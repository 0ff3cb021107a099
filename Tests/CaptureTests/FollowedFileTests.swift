import Capture
import Foundation
import Testing

/// A key log read as it grows (`live --keylog`), and the packets that wait for it.
@Suite struct FollowedFileTests {
    func scratchFile() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-follow-\(UUID()).log").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        return path
    }

    func append(_ text: String, to path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    func text(_ read: (text: [UInt8], firstLine: Int)?) -> String? {
        read.map { String(decoding: $0.text, as: UTF8.self) }
    }

    /// A line still being written waits for its newline; line numbers run on across reads.
    @Test func completeLinesOnlyWithTheirNumbers() throws {
        let path = try scratchFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try FollowedFile(path: path, maximumLineLength: 64)
        #expect(file.readNewLines() == nil)
        try append("one\ntwo\nthr", to: path)
        let first = file.readNewLines()
        #expect(text(first) == "one\ntwo\n" && first?.firstLine == 1)
        #expect(file.readNewLines() == nil)
        try append("ee\nfour\n", to: path)
        let second = file.readNewLines()
        #expect(text(second) == "three\nfour\n" && second?.firstLine == 3)
    }

    /// A file truncated in place (a client that starts its key log over) is read from its start.
    @Test func truncatedFileIsReadAgain() throws {
        let path = try scratchFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try FollowedFile(path: path, maximumLineLength: 64)
        try append("a long first line\nanother\n", to: path)
        #expect(text(file.readNewLines()) == "a long first line\nanother\n")
        try Data("new\n".utf8).write(to: URL(fileURLWithPath: path))
        let again = file.readNewLines()
        #expect(text(again) == "new\n" && again?.firstLine == 1 && file.truncations == 1)
    }

    /// HAND-MADE: a line past the longest is handed over cut, once, for the reader to count
    /// as malformed; the rest of it is passed over, and the next line reads.
    @Test func overlongLineIsHandedOverOnce() throws {
        let path = try scratchFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try FollowedFile(path: path, maximumLineLength: 8)
        try append(String(repeating: "x", count: 20), to: path)
        #expect(text(file.readNewLines()) == String(repeating: "x", count: 20) + "\n")
        try append(String(repeating: "y", count: 20) + "\nok\n", to: path)
        let next = file.readNewLines()
        #expect(text(next) == "ok\n" && next?.firstLine == 2)
    }

    @Test func missingFileIsRefused() {
        #expect(throws: CaptureError.self) { try FollowedFile(path: "/nonexistent/keys.log", maximumLineLength: 8) }
        #expect(throws: CaptureError.self) { try FollowedFile(path: "/tmp", maximumLineLength: 8) }
    }

    /// Packets come out in the order they went in, with their bytes, across many wraps of
    /// the ring; a full ring refuses until the oldest are taken.
    @Test func delayLineIsFirstInFirstOut() {
        var line = PacketDelayLine(capacityBytes: 1 << 16)
        var expected: [(Int64, [UInt8])] = []
        var generator = SystemRandomNumberGenerator()
        var next: Int64 = 0
        for _ in 0..<4_000 {
            if Bool.random(using: &generator) || expected.isEmpty {
                var bytes = [UInt8](
                    repeating: UInt8(truncatingIfNeeded: next),
                    count: Int.random(in: 0...3000, using: &generator)
                )
                if !bytes.isEmpty { bytes[bytes.count / 2] = UInt8.random(in: 0...255, using: &generator) }
                let accepted = bytes.withUnsafeBytes { raw in
                    line.append(
                        CapturedPacket(
                            timestampNanos: next,
                            linkType: .ethernet,
                            originalLength: bytes.count + 1,
                            bytes: raw
                        )
                    )
                }
                if accepted {
                    expected.append((next, bytes))
                    next += 1
                } else {
                    #expect(!expected.isEmpty)  // only a ring holding packets is full
                }
            } else {
                let (timestamp, bytes) = expected.removeFirst()
                #expect(line.oldestTimestampNanos == timestamp)
                line.takeOldest(linkType: .ethernet) { packet in
                    #expect(packet.timestampNanos == timestamp && Array(packet.bytes) == bytes)
                    #expect(packet.originalLength == bytes.count + 1)
                }
            }
            #expect(line.count == expected.count)
        }
    }
}
