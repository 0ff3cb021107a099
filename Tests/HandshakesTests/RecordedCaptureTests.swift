import Foundation
import Handshakes
import Reports
import TestSupport
import Testing

/// Verdicts on the captures in captures/, checked against what the recording client printed.
@Suite struct RecordedCaptureTests {
    static let withClientLogs: [String] = Paths.recordedCaptures.map(\.lastPathComponent).filter {
        FileManager.default.fileExists(atPath: Paths.captures.appendingPathComponent(logName($0)).path)
    }

    static func logName(_ capture: String) -> String {
        capture.replacingOccurrences(of: ".pcapng", with: "").replacingOccurrences(of: ".pcap", with: "")
            + ".client.log"
    }

    @Test func everyScenarioIsRecorded() {
        let expected = [
            "tls12-session-id.pcap", "tls12-ticket.pcap", "tls13-psk.pcap", "refused.pcap", "hrr.pcap",
            "cooked-any.pcap", "ipv6.pcap", "dumpcap.pcapng", "two-interfaces.pcapng", "external-psk.pcap",
            "legacy-versions.pcap", "nginx-curl.pcap", "nginx-timeout.pcap", "moved-session.pcap", "no-resumption.pcap",
            "lb-roundrobin.pcap", "lb-sticky.pcap", "lb-shared-tickets.pcap", "lb-tls13.pcap", "vxlan.pcap",
            "dtls.pcap", "starttls.pcap",
            "lb-reconnect.pcap", "lb-alternating.pcap", "probe-intervals.pcap", "tls13-keylog.pcap",
            "lb-tls13-keylog.pcap", "nginx-keylog.pcap",
        ]
        for name in expected {
            #expect(Self.withClientLogs.contains(name), "captures/\(name) or its client log is missing")
        }
    }

    /// `resumed` and `version` per connection equal what openssl s_client or curl printed.
    @Test(arguments: withClientLogs)
    func verdictsMatchTheRecordingClient(capture: String) throws {
        let records = try frontRecords(Paths.captures.appendingPathComponent(capture))
        let truth = try clientVerdicts(log: Paths.captures.appendingPathComponent(Self.logName(capture)))
        #expect(
            records.count == truth.count,
            "\(capture): \(records.count) records, client printed \(truth.count) verdicts"
        )
        for (record, verdict) in zip(records, truth) {
            #expect(record.version?.description == verdict.version, "\(capture) \(record.uid)")
            if record.pskKind == .external {
                // Deliberate difference: s_client prints "Reused" for an external PSK, but
                // no earlier session was resumed (issue 3: psk_kind "external").
                #expect(verdict.reused && record.resumed == false && record.offeredPSK)
            } else {
                #expect(
                    record.resumed == verdict.reused,
                    "\(capture) \(record.uid): tlsreuse \(String(describing: record.resumed)), client \(verdict)"
                )
            }
            #expect(record.established, "\(capture) \(record.uid) not established")
        }
    }

    @Test func resumptionMechanismsAreNamed() throws {
        func mechanisms(_ name: String) throws -> [String?] {
            try extractRecords(Paths.captures.appendingPathComponent(name)).map { $0.resumption?.rawValue }
        }
        #expect(try mechanisms("tls12-session-id.pcap") == [nil] + Array(repeating: "session_id", count: 5))
        #expect(try mechanisms("tls12-ticket.pcap") == [nil] + Array(repeating: "ticket", count: 5))
        #expect(try mechanisms("tls13-psk.pcap") == [nil, "psk", "psk", nil])
    }

    /// OpenSSL's server sends an empty session ID when it issues a ticket; its client offers
    /// a session ID of its own with the ticket, which the server echoes on resumption.
    @Test func openSSLTicketQuirk() throws {
        let records = try extractRecords(Paths.captures.appendingPathComponent("tls12-ticket.pcap"))
        let full = try #require(records.first)
        #expect(full.ticketIssued && full.serverSessionID == "" && full.issuedTicketDigest != nil)
        for resumed in records.dropFirst() {
            #expect(resumed.offeredTicket && !resumed.clientSessionID.isEmpty)
            #expect(resumed.serverSessionID == resumed.clientSessionID)
            #expect(resumed.offeredTicketDigest == full.issuedTicketDigest)
        }
    }

    /// TLS 1.3 middlebox compatibility mode echoes the client's session ID in every
    /// ServerHello (RFC 8446 D.4); that echo is not a resumption.
    @Test func tls13SessionIDEchoIsNotResumption() throws {
        let records = try extractRecords(Paths.captures.appendingPathComponent("tls13-psk.pcap"))
        let first = try #require(records.first)
        #expect(first.clientSessionID.count == 32 && first.serverSessionID == first.clientSessionID)
        #expect(first.resumed == false && !first.offeredPSK)
        let refused = try #require(records.last)
        #expect(refused.offeredPSK && refused.pskSelected == nil && refused.resumed == false)
    }

    @Test func helloRetryRequestIsRecorded() throws {
        let records = try extractRecords(Paths.captures.appendingPathComponent("hrr.pcap"))
        #expect(records.count == 2)
        #expect(records.filter(\.hrr).count == records.count)
        #expect(records.map(\.resumed) == [false, true])
    }

    @Test func externalPSKIsFlagged() throws {
        let records = try extractRecords(Paths.captures.appendingPathComponent("external-psk.pcap"))
        #expect(records.count == 2)
        for record in records {
            #expect(record.pskKind == .external)
            #expect(record.pskIdentities.first?.text == "Client_identity")
            #expect(record.pskIdentities.first?.obfuscatedTicketAge == 0)
            #expect(record.pskSelected == 0 && record.resumed == false && record.resumption == nil)
        }
    }

    @Test func cookedAndIPv6AndPcapng() throws {
        let cooked = try extractRecords(Paths.captures.appendingPathComponent("cooked-any.pcap"))
        #expect(cooked.count == 6)
        let ipv6 = try extractRecords(Paths.captures.appendingPathComponent("ipv6.pcap"))
        #expect(ipv6.allSatisfy { $0.client.isIPv6 && $0.server.description == "::1" })
        // dumpcap on lo and any at once: two link types, every packet twice, one record per connection.
        let (twice, statistics) = try extractRecords([
            Paths.captures.appendingPathComponent("two-interfaces.pcapng").path
        ])
        #expect(twice.count == 6)
        #expect(statistics.reassembly.retransmittedBytes > 0)
    }

    /// Golden output per capture, in JSON Lines; regenerate with UPDATE_GOLDEN=1 after
    /// checking the change against the client logs and tshark.
    @Test(arguments: Paths.recordedCaptures.map(\.lastPathComponent))
    func goldenOutput(capture: String) throws {
        let records = try extractRecords(Paths.captures.appendingPathComponent(capture))
        var writer = JSONWriter()
        var lines: [String] = []
        for record in records {
            writer.reset()
            writer.object(record.fields)
            lines.append(String(decoding: writer.bytes, as: UTF8.self))
        }
        let actual = lines.joined(separator: "\n") + "\n"
        let golden = Paths.captures.appendingPathComponent("golden").appendingPathComponent(capture + ".jsonl")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(
                at: golden.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try actual.write(to: golden, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: golden, encoding: .utf8)
        let expectedLines = expected.split(separator: "\n")
        let actualLines = actual.split(separator: "\n")
        #expect(expectedLines.count == actualLines.count, "\(capture): record count differs from golden")
        for (index, (want, got)) in zip(expectedLines, actualLines).enumerated() where want != got {
            Issue.record("\(capture) line \(index + 1) differs from golden:\n  golden: \(want)\n  actual: \(got)")
        }
    }

    /// Rotated files read as one capture give the same records as the whole capture.
    @Test func rotatedFilesReadAsOne() throws {
        try #require(toolAvailable("editcap"), "editcap (tshark's package) is needed to split a capture")
        let whole = Paths.captures.appendingPathComponent("tls12-session-id.pcap")
        try withRotatedCapture(whole, packetsPerFile: 17) { parts in
            #expect(parts.count > 2)
            let expected = try extractRecords(whole)
            // Given in reverse order: the reader merges by timestamp.
            let (merged, statistics) = try extractRecords(parts.reversed())
            #expect(merged == expected)
            #expect(statistics.inputs.count == parts.count)
        }
    }

    @Test func gzipInputGivesTheSameRecords() throws {
        let plain = Paths.captures.appendingPathComponent("tls13-psk.pcap")
        let compressed = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-\(getpid()).pcap.gz")
        defer { try? FileManager.default.removeItem(at: compressed) }
        let result = try runProcess("/bin/sh", ["-c", "gzip -c '\(plain.path)' > '\(compressed.path)'"])
        #expect(result.status == 0)
        let (records, statistics) = try extractRecords([compressed.path])
        let expected = try extractRecords(plain)
        #expect(records == expected)
        #expect(statistics.inputs.first?.format == "pcap+gzip")
    }
}

/// Workers change nothing: one file with its flows shared between workers, and rotated
/// files taken a group per worker, give the same records as one worker.
@Suite struct ParallelExtractionTests {
    func records(_ arguments: [String]) throws -> String {
        let result = try runProcess(Paths.binary.path, ["handshakes", "--format", "jsonl", "-q"] + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdout
    }

    /// One reader decodes every packet and hands each worker its flows' segments and
    /// datagrams: TCP, DTLS and QUIC, tunnels, IPv6, and the key logs a pcapng file carries
    /// (which every worker needs for the TLS 1.3 connections it follows).
    @Test(arguments: [
        "lb-tls13.pcap", "two-interfaces.pcapng", "moved-session.pcap", "dtls.pcap", "quic.pcap",
        "tls13-keylog-dsb.pcapng", "proxy-tunnels.pcap", "vxlan.pcap", "ipv6.pcap",
    ])
    func sharedFlowsGiveTheSameRecords(capture: String) throws {
        let path = Paths.captures.appendingPathComponent(capture).path
        let one = try records(["--jobs", "1", path])
        #expect(!one.isEmpty)
        #expect(try records(["--jobs", "2", path]) == one)
        #expect(try records(["--jobs", "3", path]) == one)
    }

    /// The whole JSON report, coverage examples included: which worker follows a flow
    /// changes from run to run (the shard hash is keyed per process), and the examples kept
    /// are the earliest whoever saw them. The JA4 suite's capture of single packets leaves
    /// dozens of conversations without a handshake.
    @Test(.enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present: skipped"))
    func reportIsTheSameOnEveryWorkerCount() throws {
        let path = Paths.peerCorpus.appendingPathComponent("ja4/pcap/single-packets.pcap").path
        func report(_ jobs: Int) throws -> String {
            let result = try runProcess(
                Paths.binary.path,
                ["report", "--format", "json", "--pairs", "-q", "--jobs", String(jobs), path]
            )
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout
        }
        let one = try report(1)
        #expect(one.contains("\"examples\""))
        for jobs in [2, 2, 2, 3, 4] { #expect(try report(jobs) == one, "--jobs \(jobs)") }
    }

    @Test(.enabled(if: toolAvailable("editcap"), "editcap (tshark's package) is needed to rotate a capture"))
    func rotatedFilesPerWorkerGiveTheSameRecords() throws {
        let whole = Paths.captures.appendingPathComponent("lb-roundrobin.pcap")
        // Small pieces, so handshakes cross file boundaries.
        try withRotatedCapture(whole, packetsPerFile: 23) { parts in
            #expect(parts.count > 5)
            let expected = try records(["--jobs", "1", whole.path])
            #expect(try records(["--jobs", "1"] + parts) == expected)
            #expect(try records(["--jobs", "2"] + parts) == expected)
            #expect(try records(["--jobs", "4"] + parts) == expected)
        }
    }
}
