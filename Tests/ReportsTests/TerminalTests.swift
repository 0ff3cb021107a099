import Foundation
import Reports
import TestSupport
import Testing

/// Runs tlsreuse on a pseudo-terminal (util-linux `script`), so it sees a terminal on
/// standard output and standard error; returns what the terminal showed.
func onTerminal(_ arguments: [String], environment: String = "") throws -> String {
    // Whatever runs the tests may set NO_COLOR or a dumb TERM itself.
    let command =
        "env -u NO_COLOR TERM=xterm-256color " + environment + " "
        + ([Paths.binary.path] + arguments).map { "'\($0)'" }.joined(separator: " ")
    return try runProcess("script", ["-qfec", command, "/dev/null"]).stdout
}

@Suite(.serialized, .enabled(if: toolAvailable("script"), "util-linux script provides the terminal"))
struct TerminalTests {
    static let capture = Paths.captures.appendingPathComponent("lb-roundrobin.pcap").path
    static let green = "\u{1b}[32m"

    @Test func colourOnATerminalOnly() throws {
        let shown = try onTerminal(["-q", Self.capture])
        #expect(shown.contains(Self.green), "\(shown.debugDescription.prefix(400))")
        #expect(!(try onTerminal(["-q", Self.capture], environment: "NO_COLOR=1")).contains("\u{1b}["))
        #expect(!(try onTerminal(["-q", "--color", "never", Self.capture])).contains("\u{1b}["))
        #expect(!(try tlsreuse(["-q", Self.capture])).stdout.contains("\u{1b}["))
        #expect(try tlsreuse(["-q", "--color", "always", Self.capture]).stdout.contains(Self.green))
        // Colour codes do not shift the columns: without them the lines are the plain report.
        let coloured = try tlsreuse(["-q", "--color", "always", Self.capture]).stdout
        let plain = try tlsreuse(["-q", Self.capture]).stdout
        #expect(coloured.replacingOccurrences(of: "\u{1b}\\[[0-9;]*m", with: "", options: .regularExpression) == plain)
    }

    /// SYNTHETIC: a 70 MiB capture of non-IP frames, so the bar has something to measure.
    @Test func progressBarForLargeInputsOnATerminal() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var pcap = PcapWriter()
        let frame = [UInt8](repeating: 0xaa, count: 12) + [0x88, 0xb5] + [UInt8](repeating: 0, count: 262_000)
        for i in 0..<280 { pcap.add(frame, at: Double(i)) }
        let big = dir.appendingPathComponent("big.pcap")
        try pcap.write(to: big)
        let shown = try onTerminal(["handshakes", "--format", "jsonl", big.path])
        #expect(shown.contains("% [") && shown.contains(" of 70.0 MiB"), "\(shown.prefix(300))")
        #expect(!(try onTerminal(["handshakes", "-q", "--format", "jsonl", big.path])).contains("% ["))
        #expect(!(try tlsreuse(["handshakes", "--format", "jsonl", big.path])).stderr.contains("% ["))
        // Small inputs get no bar.
        #expect(!(try onTerminal(["handshakes", Self.capture])).contains("% ["))
    }

    @Test func progressLine() {
        #expect(
            ProgressLine.render(done: 512 << 20, total: 1 << 30, elapsedNanos: 2_000_000_000, barWidth: 10)
                == " 50% [#####.....] 512 MiB of 1.00 GiB  256 MiB/s  ETA 0:02"
        )
        #expect(ProgressLine.clock(3725) == "1:02:05")
        #expect(ProgressLine.bytes(1536) == "1.50 KiB")
    }
}
