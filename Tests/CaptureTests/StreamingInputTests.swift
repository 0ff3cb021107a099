import Foundation
import TestSupport
import Testing

/// Standard input and FIFOs are read as bytes arrive: a recorded capture written into a
/// pipe that then stays open gives all its records while it is open, within the pairing
/// hold (0.5 s) of the bytes' arrival, plain or gzip.
@Suite struct StreamingInputTests {
    static let captures = ["tls12-ticket.pcap", "lb-sticky.pcap", "tls13-psk.pcap"]

    /// Writes `bytes` into tlsreuse's standard input (or `fifo`), keeps it open `seconds`,
    /// and returns the records that came while it was open and all of them.
    func stream(_ bytes: Data, fifo: URL? = nil, seconds: Double = 2.5) throws -> (whileOpen: Int, all: [Substring]) {
        let process = Process()
        process.executableURL = Paths.binary
        process.arguments = ["handshakes", "--format", "jsonl", "-q", fifo?.path ?? "-"]
        let input = Pipe()
        let output = Pipe()
        if fifo == nil { process.standardInput = input }
        process.standardOutput = output
        let log = ArrivalLog()
        log.follow(output.fileHandleForReading)
        try process.run()
        let writer: FileHandle
        if let fifo {
            writer = try FileHandle(forWritingTo: fifo)
        } else {
            writer = input.fileHandleForWriting
        }
        writer.write(bytes)
        Thread.sleep(forTimeInterval: seconds)
        let whileOpen = log.lines.count
        try writer.close()
        let all = String(decoding: log.waitForEnd(), as: UTF8.self).split(separator: "\n")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return (whileOpen, all)
    }

    @Test(arguments: captures)
    func pipeThatStaysOpenGivesRecordsWhileOpen(capture: String) throws {
        let path = Paths.captures.appendingPathComponent(capture)
        let expected = try runProcess(Paths.binary.path, ["handshakes", "--format", "jsonl", "-q", path.path]).stdout
            .split(separator: "\n").count
        #expect(expected > 0)
        let plain = try stream(try Data(contentsOf: path))
        #expect(plain.whileOpen == expected, "\(capture): \(plain.whileOpen) of \(expected) records while open")
        #expect(plain.all.count == expected)
        let gzip = try runProcess("/bin/sh", ["-c", "gzip -c '\(path.path)' | base64 -w0"]).stdout
        let compressed = try #require(Data(base64Encoded: gzip))
        let inflated = try stream(compressed)
        #expect(inflated.whileOpen == expected, "\(capture) (gzip): \(inflated.whileOpen) of \(expected)")
        #expect(inflated.all == plain.all)
    }

    /// A FIFO given by name is read by one worker, as it arrives (two would split its bytes).
    @Test func fifoIsReadWholeAndAsItArrives() throws {
        let path = Paths.captures.appendingPathComponent("lb-sticky.pcap")
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-fifo-\(getpid())")
        try? FileManager.default.removeItem(at: fifo)
        #expect(mkfifo(fifo.path, 0o600) == 0)
        defer { try? FileManager.default.removeItem(at: fifo) }
        let result = try stream(try Data(contentsOf: path), fifo: fifo)
        #expect(result.whileOpen == 24 && result.all.count == 24)
    }
}
