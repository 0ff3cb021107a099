import Foundation
import TestSupport
import Testing

/// The README's table of errors, one test per row: the exit code, and one clear line on
/// standard error (with -q, nothing else is printed there).
@Suite struct ErrorTableTests {
    func run(_ arguments: [String], asNobody: Bool = false) throws -> ProcessResult {
        if asNobody {
            return try runProcess(
                "setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", Paths.binary.path] + arguments
            )
        }
        return try runProcess(Paths.binary.path, arguments)
    }

    func lines(_ text: String) -> [Substring] { text.split(separator: "\n") }

    static func temporary(_ name: String, _ bytes: [UInt8], mode: Int = 0o644) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-errors-\(getpid())-\(name)")
        try Data(bytes).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        return url
    }

    let good = Paths.captures.appendingPathComponent("tls12-session-id.pcap").path
    let alsoGood = Paths.captures.appendingPathComponent("tls12-ticket.pcap").path

    /// Options given before the subcommand's name go to the subcommand: the parser would
    /// otherwise run `report` on a file named "handshakes" (exit 1 or 66).
    @Test func optionsBeforeTheSubcommand() throws {
        let expected = try run(["handshakes", "--format", "jsonl", "-q", alsoGood])
        #expect(expected.status == 0 && !expected.stdout.isEmpty)
        let before = try run(["-q", "handshakes", "--format", "jsonl", alsoGood])
        #expect(before.status == 0 && before.stdout == expected.stdout && before.stderr.isEmpty)
        let report = try run(["--jobs", "1", "-q", "report", "--format", "json", alsoGood])
        #expect(report.status == 0)
        #expect(report.stdout == (try run(["report", "--jobs", "1", "-q", "--format", "json", alsoGood])).stdout)
        // An option the subcommand does not take is named as usual.
        let wrong = try run(["--pairs", "handshakes", alsoGood])
        #expect(wrong.status == 64 && wrong.stderr.contains("--pairs"))
    }

    /// The summary on stderr counts connections as the report does: a balancer's back leg
    /// repeats its client's connection and is counted apart.
    @Test(arguments: ["lb-sticky.pcap", "lb-roundrobin.pcap", "tls12-ticket.pcap"])
    func summaryCountsWhatTheReportCounts(capture: String) throws {
        let path = Paths.captures.appendingPathComponent(capture).path
        let result = try run(["report", "--format", "json", path])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let services = try #require(report["services"] as? [[String: Any]])
        let connections = services.compactMap { $0["connections"] as? Int }.reduce(0, +)
        let summary = try #require(lines(result.stderr).last)
        #expect(
            summary.hasPrefix("tlsreuse: \(connections) TLS connection\(connections == 1 ? "" : "s")"),
            "\(summary)"
        )
        let records = try run(["handshakes", "--format", "jsonl", "-q", path]).stdout.split(separator: "\n")
        let backLegs = records.filter { $0.contains("\"backside_of\":\"") }.count
        #expect(backLegs == records.count - connections)
        #expect(summary.contains(", plus \(backLegs) back legs (balancer to backend),") == (backLegs > 0), "\(summary)")
    }

    @Test func missingFile() throws {
        let result = try run(["-q", "/nonexistent/capture.pcap"])
        #expect(result.status == 66)
        #expect(lines(result.stderr) == ["tlsreuse: could not read /nonexistent/capture.pcap: no such file"])
    }

    @Test(.enabled(if: getuid() == 0, "needs root to run a command as another user"))
    func unreadableFile() throws {
        let file = try Self.temporary(
            "private.pcap",
            try Array(Data(contentsOf: URL(fileURLWithPath: good))),
            mode: 0o600
        )
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try run(["-q", file.path], asNobody: true)
        #expect(result.status == 66)
        #expect(lines(result.stderr) == ["tlsreuse: could not read \(file.path): permission denied"])
    }

    /// DELIBERATELY MALFORMED: text, not a capture.
    @Test func notACapture() throws {
        let file = try Self.temporary("notes.txt", Array("this is not a capture\n".utf8))
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try run(["-q", file.path])
        #expect(result.status == 66)
        #expect(lines(result.stderr).count == 1)
        #expect(result.stderr.contains("not a pcap or pcapng file"))
    }

    /// SYNTHETIC: a pcap of link type 147 (reserved for private use).
    @Test func unsupportedLinkType() throws {
        var pcap = PcapWriter(linkType: 147)
        for i in 0..<5 { pcap.add([UInt8](repeating: 0x55, count: 60), at: Double(i)) }
        let file = try Self.temporary("linktype.pcap", pcap.bytes)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try run(["-q", file.path])
        #expect(result.status == 1)
        #expect(lines(result.stderr) == ["tlsreuse: link type LINKTYPE_147 is not supported: 5 packets skipped"])
    }

    @Test func badFilterExpression() throws {
        let result = try run(["-q", "--bpf", "tcp port", good])
        #expect(result.status == 64)
        #expect(lines(result.stderr).count == 1)
        #expect(result.stderr.contains("bad --bpf expression 'tcp port'"))
    }

    @Test func badOptions() throws {
        for arguments in [["report", "--format", "xml", good], ["report", "--jobs", "0", good], ["handshakes"]] {
            let result = try run(arguments)
            #expect(result.status == 64, "\(arguments)")
            #expect(result.stderr.hasPrefix("Error:"), "\(arguments)")
        }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to run a command as another user"))
    func capturePermission() throws {
        let result = try run(["live", "-i", "lo", "--duration", "1"], asNobody: true)
        #expect(result.status == 77)
        #expect(lines(result.stderr).count == 1)
        #expect(result.stderr.contains("setcap cap_net_raw,cap_net_admin=eip"))
    }

    @Test func outputCannotBeWritten() throws {
        let result = try run(["-q", "-o", "/nonexistent/dir/report.txt", good])
        #expect(result.status == 73)
        #expect(lines(result.stderr).count == 1)
    }

    /// Policy when the second of three files is broken: report what could be read, name
    /// what could not, exit 1.
    @Test func secondOfThreeFilesBroken() throws {
        let broken = try Self.temporary("broken.pcap", [0xde, 0xad, 0xbe, 0xef] + [UInt8](repeating: 0, count: 60))
        defer { try? FileManager.default.removeItem(at: broken) }
        let result = try run(["handshakes", "--format", "jsonl", "-q", good, broken.path, alsoGood])
        #expect(result.status == 1)
        #expect(lines(result.stderr).count == 1)
        #expect(result.stderr.contains("could not read \(broken.path)"))
        #expect(lines(result.stdout).count == 12)
    }
}
