import Foundation
import TestSupport
import Testing

/// Values at and past the edge of what tlsreuse represents: times far from today, before
/// 1970 and past 2262, certificate validity in any year, option values out of range. None
/// may trap (exit 132); each is read correctly, refused per packet or record with a count,
/// or refused as a usage error (exit 64). Every capture here is HAND-MADE: packets built by
/// the test (`HandMadeTLS`, `PcapngWriter`), certificates made by `openssl ca`.
@Suite struct NoTrapTests {
    static func temporary(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-notrap-\(getpid())-\(name)")
    }

    /// Runs the binary and checks it did not trap.
    func run(_ arguments: [String], stdin: Data? = nil) throws -> ProcessResult {
        let result = try runProcess(Paths.binary.path, arguments, stdin: stdin)
        #expect(!result.crashed, "\(arguments): \(result.stderr)")
        return result
    }

    func lines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// HAND-MADE: one full handshake in a pcapng whose interface clock starts `offsetSeconds`
    /// from the epoch, its packets `unitsStart` nanoseconds on from there.
    func pcapng(offsetSeconds: Int64?, unitsStart: UInt64, certificates: [[UInt8]] = []) -> [UInt8] {
        var writer = PcapngWriter()
        writer.addInterface(offsetSeconds: offsetSeconds)
        for (index, frame) in HandMadeTLS.fullHandshake(
            client: 1,
            sni: Array("old.example".utf8),
            certificates: certificates
        ).enumerated() {
            writer.add(frame, units: unitsStart &+ UInt64(index) * 1000)
        }
        return writer.bytes
    }

    /// HAND-MADE: packets at ±5e18 ns and at the largest 64-bit count, around a handshake at
    /// a normal time: the impossible ones are counted, the handshake is still read.
    @Test func timestampsNearTheEndsOfSixtyFourBits() throws {
        var writer = PcapngWriter()
        writer.addInterface()  // nanoseconds from the epoch
        writer.addInterface(offsetSeconds: -9_000_000_000)  // 9e9 s before the epoch
        let syn = Frames.tcp(from: (Frames.address(7), 53), to: (Frames.address(8), 53), seq: 1, flags: Frames.syn)
        writer.add(syn, units: 5_000_000_000_000_000_000)
        writer.add(syn, units: UInt64.max)
        for (index, frame) in HandMadeTLS.fullHandshake(client: 1, sni: nil).enumerated() {
            writer.add(frame, units: 1_700_000_000_000_000_000 + UInt64(index) * 1000)
        }
        // 4e18 ns after an offset 9e9 s before the epoch: 1811.
        writer.add(syn, units: 4_000_000_000_000_000_000, interface: 1)
        let bytes = writer.bytes
        let file = Self.temporary("far.pcapng")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(bytes).write(to: file)
        let result = try run(["report", "--format", "json", "-q", file.path])
        #expect(result.status == 1, "damaged input: exit 1")
        #expect(result.stderr.contains("packet time outside 1900 to 2149"))
        // 5e18 ns (2128) is read; 2^64-1 ns (2554) and 4e18 ns after -9e9 s (1811) are not.
        #expect(skippedCounts(result.stdout)["unusable_capture_records"] == 2)
        let handshakes = try run(["handshakes", "--format", "jsonl", "-q", file.path])
        #expect(lines(handshakes.stdout).count == 1)
    }

    /// HAND-MADE: a handshake whose ClientHello is at 1969-12-31 23:59:58.500003 (pcapng allows
    /// times before 1970; the ClientHello is the fourth packet, 3 µs after the first) is
    /// written correctly in every format, and `--from` reads it back to the same time.
    @Test func timesBeforeNineteenSeventyInEveryFormat() throws {
        let file = Self.temporary("1969.pcapng")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(pcapng(offsetSeconds: -2, unitsStart: 500_000_000)).write(to: file)
        let jsonl = try run(["handshakes", "--format", "jsonl", "-q", file.path])
        #expect(jsonl.status == 0)
        let record = try #require(lines(jsonl.stdout).first)
        #expect(jsonl.stdout.contains("\"ts\":-1.499997"))
        #expect((record["ts"] as? Double) == -1.499997)
        let json = try run(["handshakes", "--format", "json", "-q", file.path])
        #expect(
            (try? JSONSerialization.jsonObject(with: Data(json.stdout.utf8))) != nil,
            "valid JSON: \(json.stdout.prefix(300))"
        )
        let csv = try run(["handshakes", "--format", "csv", "-q", file.path])
        #expect(csv.stdout.contains(",-1.499997,"))
        let zeek = try run(["handshakes", "--format", "zeek", "-q", file.path])
        #expect(zeek.stdout.split(separator: "\n").contains { $0.contains("\t-1.499997\t") })
        let text = try run(["handshakes", "-q", file.path])
        #expect(text.stdout.contains("1969-12-31 23:59:58.500003"))
        let report = try run(["report", "--format", "json", "-q", file.path])
        #expect((try? JSONSerialization.jsonObject(with: Data(report.stdout.utf8))) != nil)
        let back = try run(["handshakes", "--format", "jsonl", "-q", "--from", "-"], stdin: Data(jsonl.stdout.utf8))
        #expect(back.status == 0)
        #expect(back.stdout.contains("\"ts\":-1.499997"))
        // 2,170,000,000 s before the epoch: 1901-03-28 06:13:20 (Python's datetime agrees), in
        // the text report's heading.
        try Data(pcapng(offsetSeconds: -2_170_000_000, unitsStart: 0)).write(to: file)
        let early = try run(["report", "-q", file.path])
        #expect(early.status == 0)
        #expect(early.stdout.contains("1901-03-28 06:13:20"))
    }

    /// DELIBERATELY MALFORMED saved records: times no capture can hold are lines that are
    /// not records (counted, exit 1); the good line is still read.
    @Test func savedRecordsWithImpossibleTimes() throws {
        let file = Self.temporary("ok.pcapng")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(pcapng(offsetSeconds: nil, unitsStart: 1_700_000_000_000_000_000)).write(to: file)
        let good = try #require(
            try run(["handshakes", "--format", "jsonl", "-q", file.path]).stdout.split(separator: "\n").first.map(
                String.init
            )
        )
        var input = good + "\n"
        for ts in ["99999999999", "-9223372037", "9223372036", "9223372036854775807", "1e300", "-0.-5", "1.0000000001"]
        {
            input += good.replacingOccurrences(of: #""ts":1700000000.000003"#, with: "\"ts\":\(ts)") + "\n"
        }
        #expect(input.components(separatedBy: "\"ts\":1700000000.000003").count == 2, "each bad line has its own ts")
        let result = try run(["handshakes", "--format", "jsonl", "--from", "-"], stdin: Data(input.utf8))
        #expect(result.status == 1)
        #expect(lines(result.stdout).count == 1)
        #expect(result.stderr.contains("7 lines not a handshake record"), "\(result.stderr)")
    }

    /// Option values past what a time or duration can be: usage errors, not traps.
    @Test func optionValuesOutOfRange() throws {
        let capture = Paths.captures.appendingPathComponent("tls12-ticket.pcap").path
        for arguments in [
            ["--session-horizon", "1e12"], ["--session-horizon", "nan"], ["--session-horizon", "inf"],
            ["--since", "99999999999"], ["--until", "-1e300"], ["--since", "nan"], ["--since", "99999-01-01"],
            ["--age-buckets", "5,inf"],
            [
                "--age-buckets",
                Array(repeating: "1", count: 40).enumerated().map { "\($0.offset + 1)" }.joined(separator: ","),
            ],
        ] {
            let result = try run(["report", "-q"] + arguments + [capture])
            #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
        }
        for arguments in [
            ["--duration", "1e11"], ["--duration", "nan"], ["--interval", "1e11"], ["--interval", "nan"],
        ] {
            let result = try run(["live", "-i", "lo"] + arguments)
            #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
        }
    }

    /// Certificates (made by `openssl ca`) with validity in years nanoseconds cannot hold,
    /// with keys swift-certificates refuses (RSA-1024: fields read from the TBSCertificate)
    /// and accepts (RSA-2048): every date equals what openssl prints, in one hand-made
    /// handshake each, and survives `--from`.
    @Test func certificateValidityInAnyYear() throws {
        guard toolAvailable("openssl") else { return }
        let cases: [(bits: Int, notBefore: String, notAfter: String)] = [
            (1024, "00010101000000Z", "99991231235959Z"),
            (2048, "19691231235959Z", "99991231235959Z"),
            (1024, "23000101000000Z", "25001231120000Z"),
        ]
        for (index, item) in cases.enumerated() {
            let made = try MadeCertificates.make(bits: item.bits, notBefore: item.notBefore, notAfter: item.notAfter)
            var writer = PcapWriter()
            for (n, frame) in HandMadeTLS.fullHandshake(
                client: UInt32(index),
                sni: Array("far.example".utf8),
                certificates: [made.der]
            ).enumerated() {
                writer.add(frame, at: 1_700_000_000 + Double(n) / 1000)
            }
            let file = Self.temporary("cert-\(index).pcap")
            defer { try? FileManager.default.removeItem(at: file) }
            try writer.write(to: file)
            let result = try run(["handshakes", "--format", "jsonl", "-q", file.path])
            #expect(result.status == 0, "\(item): \(result.stderr)")
            let record = try #require(lines(result.stdout).first, "\(item)")
            let certificate = try #require(record["certificate"] as? [String: Any], "\(item)")
            #expect(certificate["cn"] as? String == "far.example")
            for (key, field) in [("not_before", "notBefore"), ("not_after", "notAfter")] {
                let seconds = try #require((certificate[key] as? NSNumber)?.int64Value, "\(item) \(key)")
                #expect(Self.opensslDate(seconds) == Self.field(field, of: made.dates), "\(item) \(key)")
            }
            if item.notAfter == "99991231235959Z" {
                #expect(result.stdout.contains("\"not_after\":253402300799.000000"))
            }
            let back = try run(
                ["handshakes", "--format", "jsonl", "-q", "--from", "-"],
                stdin: Data(result.stdout.utf8)
            )
            #expect(back.status == 0)
            let again = try #require(lines(back.stdout).first?["certificate"] as? [String: Any])
            #expect((again["not_before"] as? NSNumber) == (certificate["not_before"] as? NSNumber))
            #expect((again["not_after"] as? NSNumber) == (certificate["not_after"] as? NSNumber))
        }
    }

    /// "Dec 31 23:59:59 9999 GMT", as `openssl x509 -dates` prints it, from `openssl x509 -dates` output.
    static func field(_ name: String, of dates: String) -> String? {
        dates.split(separator: "\n").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
            .map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
    }

    /// Epoch seconds in openssl's form, by the proleptic Gregorian calendar computed here
    /// independently of tlsreuse (days counted year by year).
    static func opensslDate(_ seconds: Int64) -> String {
        var days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        var secondOfDay = seconds - days * 86_400
        func leap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }
        var year: Int64 = 1970
        while days < 0 {
            year -= 1
            days += leap(year) ? 366 : 365
        }
        while days >= (leap(year) ? 366 : 365) {
            days -= leap(year) ? 366 : 365
            year += 1
        }
        let lengths: [Int64] = [31, leap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        var month = 0
        while days >= lengths[month] {
            days -= lengths[month]
            month += 1
        }
        let names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let hours = secondOfDay / 3600
        secondOfDay %= 3600
        return "\(names[month]) \(days + 1) \(two(hours)):\(two(secondOfDay / 60)):\(two(secondOfDay % 60)) \(year) GMT"
    }
}
