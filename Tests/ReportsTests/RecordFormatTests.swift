import Foundation
import Handshakes
import Packets
import Reports
import TestSupport
import Testing

/// A scratch directory for one test's output files.
func scratchDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

@discardableResult
func tlsreuse(_ arguments: [String]) throws -> ProcessResult {
    try runProcess(Paths.binary.path, arguments)
}

let checkFlat = Paths.repository.appendingPathComponent("Tests/ReportsTests/check_flat.py").path

/// Every format, read back by a real consumer and compared cell by cell with the JSON Lines
/// of the same run: Python's csv module, a Zeek log reader, jq.
@Suite(.enabled(if: toolAvailable("python3") && toolAvailable("jq"), "python3 and jq read the formats back"))
struct RecordFormatTests {
    static let captures = Paths.recordedCaptures + Paths.peerCaptures

    @Test(arguments: captures)
    func csvAndZeekReadBackByRealConsumers(_ capture: URL) throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for format in ["jsonl", "csv", "zeek"] {
            try tlsreuse([
                "handshakes", "-q", "--format", format, "-o", dir.appendingPathComponent("out.\(format)").path,
                capture.path,
            ])
        }
        let jsonl = dir.appendingPathComponent("out.jsonl").path
        for format in ["csv", "zeek"] {
            let check = try runProcess(
                "python3",
                [checkFlat, format, dir.appendingPathComponent("out.\(format)").path, jsonl]
            )
            #expect(check.status == 0, "\(format) of \(capture.lastPathComponent): \(check.stdout)\(check.stderr)")
        }
    }

    @Test(arguments: captures)
    func jsonArrayAndLinesReadBackByJq(_ capture: URL) throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let jsonl = dir.appendingPathComponent("out.jsonl").path
        let json = dir.appendingPathComponent("out.json").path
        try tlsreuse(["handshakes", "-q", "--format", "jsonl", "-o", jsonl, capture.path])
        try tlsreuse(["handshakes", "-q", "--format", "json", "-o", json, capture.path])
        let lines = try runProcess("jq", ["-c", ".", jsonl])
        let array = try runProcess("jq", ["-c", ".[]", json])
        #expect(lines.status == 0 && array.status == 0, "\(lines.stderr)\(array.stderr)")
        #expect(array.stdout == lines.stdout)
        let count = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n").count
        #expect(
            try runProcess("jq", ["length", json]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                == String(count)
        )
    }

    /// HAND-MADE RECORD with hostile strings (an attacker chooses the SNI and ALPN): separators,
    /// quotes, line breaks, backslashes, a spreadsheet formula and the Zeek markers survive
    /// every format and read back as they were.
    @Test func hostileStringsSurviveEveryFormat() throws {
        var record = HandshakeRecord(
            uid: "Chostile0001",
            timestampNanos: 1_795_932_231_371_638_000,
            client: IPAddress("192.0.2.1")!,
            clientPort: 40000,
            server: IPAddress("2001:db8::1")!,
            serverPort: 443
        )
        record.sni = "=HYPERLINK(\"x\"),a\tb\nc\\d"
        record.alpnOffered = ["h2,evil", "-", "(empty)", "", "quote\"d"]
        record.alert = "-"
        record.malformed = "line\r\nbreak"
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for format in [RecordFormat.jsonl, .csv, .zeek] {
            let output = RecordOutput(
                format: format,
                writer: try LineWriter(path: dir.appendingPathComponent("out.\(format.rawValue)").path)
            )
            output.write(record)
            output.finish()
        }
        let jsonl = dir.appendingPathComponent("out.jsonl").path
        for format in ["csv", "zeek"] {
            let check = try runProcess(
                "python3",
                [checkFlat, format, dir.appendingPathComponent("out.\(format)").path, jsonl]
            )
            #expect(check.status == 0, "\(format): \(check.stdout)\(check.stderr)")
        }
        // The spreadsheet formula is shown, not evaluated.
        let csv = try String(contentsOfFile: dir.appendingPathComponent("out.csv").path, encoding: .utf8)
        #expect(csv.contains("\"'=HYPERLINK("))
        // And the JSON Lines record parses back to the same record.
        let line = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n")[0]
        #expect(try HandshakeRecord(json: JSONParser.parse(Array(line.utf8))) == record)
    }

    /// The header does not depend on the records: every record has every column.
    @Test func columnsComeFromTheFieldList() {
        let names = FlatRecord.columns.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.prefix(6) == ["uid", "ts", "client", "client_port", "server", "server_port"])
        #expect(names.contains("server_traits.ttl") && names.contains("psk_identities.digest"))
        let record = HandshakeRecord(
            uid: "C",
            timestampNanos: 0,
            client: IPAddress("192.0.2.1")!,
            clientPort: 1,
            server: IPAddress("192.0.2.2")!,
            serverPort: 2
        )
        #expect(FlatRecord.cells(record).count == names.count)
    }
}

/// `--from`: the analysis run on saved records gives the report the capture gives.
@Suite(.enabled(if: toolAvailable("python3"), "python3 compares the JSON reports"))
struct RecordsAnalysisTests {
    /// The report's JSON without its source section ("capture" or "records"), keys sorted.
    static func analysisPart(_ json: String) throws -> String {
        let result = try runProcess(
            "python3",
            [
                "-c",
                """
                import json, sys
                d = json.load(sys.stdin)
                d.pop("capture", None); d.pop("records", None)
                print(json.dumps(d, sort_keys=True))
                """,
            ],
            stdin: Data(json.utf8)
        )
        return result.stdout
    }

    @Test(arguments: Paths.recordedCaptures)
    func reportFromRecordsEqualsReportFromCapture(_ capture: URL) throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let records = dir.appendingPathComponent("records.jsonl").path
        try tlsreuse(["handshakes", "-q", "--format", "jsonl", "-o", records, capture.path])
        for extra in [[], ["--pairs"]] {
            let direct = try tlsreuse(["report", "-q", "--format", "json"] + extra + [capture.path])
            let fromRecords = try tlsreuse(["report", "-q", "--format", "json"] + extra + ["--from", records])
            #expect(direct.status == 0 && fromRecords.status == 0, "\(fromRecords.stderr)")
            let expected = try Self.analysisPart(direct.stdout)
            #expect(expected.count > 20)
            #expect(try Self.analysisPart(fromRecords.stdout) == expected, "\(capture.lastPathComponent) \(extra)")
        }
        // The text report too, but for the heading (packet times there, ClientHello times here)
        // and the coverage, which only a capture shows (conversations that left no record).
        var text = try tlsreuse(["report", "-q", capture.path]).stdout.split(
            separator: "\n",
            omittingEmptySubsequences: false
        )
        if let coverage = text.firstIndex(where: { $0.hasPrefix("coverage: ") }) {
            text.remove(at: coverage)
            if coverage > 0, text[coverage - 1].isEmpty { text.remove(at: coverage - 1) }
        }
        let textFromRecords = try tlsreuse(["report", "-q", "--from", records]).stdout.split(
            separator: "\n",
            omittingEmptySubsequences: false
        )
        #expect(text.dropFirst() == textFromRecords.dropFirst())
    }

    /// Reading records back and writing them again gives the same bytes: nothing is lost.
    @Test(arguments: Paths.recordedCaptures)
    func recordsRoundTripExactly(_ capture: URL) throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let records = dir.appendingPathComponent("records.jsonl").path
        try tlsreuse(["handshakes", "-q", "--format", "jsonl", "-o", records, capture.path])
        let again = try tlsreuse(["handshakes", "-q", "--format", "jsonl", "--from", records])
        #expect(again.stdout == (try String(contentsOfFile: records, encoding: .utf8)))
    }

    /// Two sensors, each seeing half of the connections (split by tshark), extracted apart
    /// and analysed together: the report equals the whole capture's, in any argument order,
    /// compressed or not, from JSON Lines or the JSON array.
    @Test(
        .enabled(if: toolAvailable("tshark")),
        arguments: ["tls12-session-id.pcap", "lb-sticky.pcap", "tls13-psk.pcap"]
    )
    func recordsFromTwoSensorsMergeInTimeOrder(_ name: String) throws {
        let capture = Paths.captures.appendingPathComponent(name).path
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var parts: [String] = []
        for (index, filter) in ["tcp.stream % 2 == 0", "tcp.stream % 2 == 1"].enumerated() {
            let pcap = dir.appendingPathComponent("sensor\(index).pcap").path
            let split = try runProcess("tshark", ["-r", capture, "-Y", filter, "-w", pcap])
            #expect(split.status == 0, "\(split.stderr)")
            let records = dir.appendingPathComponent("sensor\(index).\(index == 0 ? "jsonl" : "json")").path
            try tlsreuse(["handshakes", "-q", "--format", index == 0 ? "jsonl" : "json", "-o", records, pcap])
            parts.append(records)
        }
        _ = try runProcess("gzip", ["-k", parts[0]])
        let expected = try Self.analysisPart(tlsreuse(["report", "-q", "--format", "json", "--pairs", capture]).stdout)
        for order in [[parts[0], parts[1]], [parts[1], parts[0]], [parts[1], parts[0] + ".gz"]] {
            let merged = try tlsreuse(["report", "-q", "--format", "json", "--pairs", "--from"] + order)
            #expect(merged.status == 0, "\(merged.stderr)")
            #expect(
                try Self.analysisPart(merged.stdout) == expected,
                "\(order.map { URL(fileURLWithPath: $0).lastPathComponent })"
            )
        }
    }

    /// A cut-off last line (a killed run) and a foreign line are counted and named; the rest
    /// is analysed and the exit code says the results are partial. A missing file is one line.
    @Test func damagedRecordFilesArePartialResults() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let records = dir.appendingPathComponent("records.jsonl").path
        try tlsreuse([
            "handshakes", "-q", "--format", "jsonl", "-o", records,
            Paths.captures.appendingPathComponent("tls12-ticket.pcap").path,
        ])
        let whole = try String(contentsOfFile: records, encoding: .utf8)
        let lines = whole.split(separator: "\n")
        let damaged = dir.appendingPathComponent("damaged.jsonl").path
        let text = "not a record\n" + lines.dropLast().joined(separator: "\n") + "\n" + lines.last!.prefix(40)
        try text.write(toFile: damaged, atomically: true, encoding: .utf8)
        let result = try tlsreuse(["report", "-q", "--format", "json", "--from", damaged])
        #expect(result.status == 1)
        #expect(
            result.stderr.contains("damaged.jsonl: 2 lines not a handshake record (first: line 1"),
            "\(result.stderr)"
        )
        #expect(result.stdout.contains("\"records\":\(lines.count - 1)"))

        let missing = try tlsreuse(["report", "-q", "--from", dir.appendingPathComponent("absent.jsonl").path])
        #expect(missing.status == 66)
        #expect(
            missing.stderr.split(separator: "\n").count == 1 && missing.stderr.contains("absent.jsonl: no such file"),
            "\(missing.stderr)"
        )

        let mixed = try tlsreuse(["report", "-q", "--from", records, dir.appendingPathComponent("absent.jsonl").path])
        #expect(mixed.status == 1)
        #expect(mixed.stdout.contains("1 service"))

        let bpf = try tlsreuse(["report", "--bpf", "tcp", "--from", records])
        #expect(bpf.status == 64)
        let keylog = try tlsreuse(["report", "--keylog", records, "--from", records])
        #expect(keylog.status == 64 && keylog.stderr.contains("--keylog opens captured connections"))
    }
}

/// The writer's commas at every depth (a bit per level for 64 levels, an array beyond), and
/// a copy of a writer writing on its own bytes.
@Suite struct JSONWriterTests {
    @Test func commasAtEveryDepth() throws {
        var json = JSONWriter()
        for _ in 0..<100 {
            json.beginArray()
            json.int(1)
            json.string("a\"b")
        }
        for _ in 0..<100 {
            json.endArray()
            json.null()
        }
        // Outermost: [1,"a\"b",[...],null]; the document's last null is outside every array.
        var text = String(decoding: json.bytes, as: UTF8.self)
        #expect(text.hasSuffix("],null]null"))
        text.removeLast(4)
        var value = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any])
        for level in 0..<99 {
            #expect(value.count == 4, "level \(level)")
            #expect(value[0] as? Int == 1 && value[1] as? String == "a\"b" && value[3] is NSNull)
            value = try #require(value[2] as? [Any])
        }
        #expect(value.count == 2)
    }

    @Test func copiesWriteOnTheirOwnBytes() {
        var first = JSONWriter()
        first.beginArray()
        first.int(1)
        var second = first
        second.int(2)
        first.int(3)
        first.endArray()
        second.endArray()
        #expect(String(decoding: first.bytes, as: UTF8.self) == "[1,3]")
        #expect(String(decoding: second.bytes, as: UTF8.self) == "[1,2]")
    }

    /// The eight-bytes-at-a-time scan for characters to escape: each such character at every
    /// place of a word and of the tail, in strings of every length around a word, parses
    /// back (Foundation's parser) to the same string, with no raw control byte written.
    @Test func everyEscapeAtEveryPlace() throws {
        // The escapes, their neighbours in ASCII (which must stay raw), and non-ASCII.
        let specials: [Character] = [
            "\u{0}", "\u{1f}", "\u{7f}", "\"", "\\", "\n", "é", "\u{202e}", "\u{80}", "\u{10ffff}", " ", "~", "!", "#",
            "[", "]",
        ]
        var json = JSONWriter()
        json.beginArray()
        var written: [String] = []
        for length in 1...19 {
            for place in 0..<length {
                for special in specials {
                    var text = String(repeating: "a", count: length)
                    text.replaceSubrange(
                        text.index(text.startIndex, offsetBy: place)...text.index(text.startIndex, offsetBy: place),
                        with: String(special)
                    )
                    json.string(text)
                    written.append(text)
                }
            }
        }
        json.endArray()
        #expect(!json.bytes.contains { $0 < 0x20 || $0 == 0x7f })
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String])
        #expect(parsed == written)
    }

    /// Integers written two digits at a time, with their digit count found by comparison.
    @Test func integersAtEveryDigitCount() throws {
        var values: [Int64] = [0, -1, Int64.max, Int64.min]
        var power: Int64 = 1
        for _ in 0..<18 {
            power *= 10
            values += [power - 1, power, power + 1, -power, 7 * power + 3]
        }
        var json = JSONWriter()
        json.beginArray()
        for value in values { json.int(value) }
        json.epochSeconds(1_796_535_844_000_000_007)
        json.epochSeconds(-1_500_000)
        json.endArray()
        let text = String(decoding: json.bytes, as: UTF8.self)
        let expected = values.map(String.init) + ["1796535844.000000", "-0.001500"]
        #expect(text == "[" + expected.joined(separator: ",") + "]")
    }

    /// Session IDs of every length (0 to 32 bytes, random) and ticket digests are written in
    /// each format as the same lowercase hex as `hexString`, four bytes at a time and the rest
    /// one by one, and read back from JSON Lines as the same bytes.
    @Test func sessionIDsAreWrittenAsHexInEveryFormat() throws {
        var generator = SystemRandomNumberGenerator()
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var records: [HandshakeRecord] = []
        for length in 0...32 {
            let id = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let digest = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
            records.append(
                syntheticRecord("C\(length)", at: Double(length)) {
                    $0.clientSessionID = ShortBytes(id)
                    $0.serverSessionID = ShortBytes(id.reversed())
                    $0.issuedTicketDigest = ShortBytes(digest)
                }
            )
        }
        for format in [RecordFormat.jsonl, .csv, .zeek] {
            let output = RecordOutput(
                format: format,
                writer: try LineWriter(path: dir.appendingPathComponent("out.\(format.rawValue)").path)
            )
            for record in records { output.write(record) }
            output.finish()
            let text = try String(
                contentsOfFile: dir.appendingPathComponent("out.\(format.rawValue)").path,
                encoding: .utf8
            )
            for record in records where !record.clientSessionID.isEmpty {
                #expect(text.contains(hexString(record.clientSessionID.withBytes { Array($0) })), "\(format)")
                #expect(text.contains(record.issuedTicketDigest!.hex), "\(format)")
            }
        }
        let lines = try String(contentsOfFile: dir.appendingPathComponent("out.jsonl").path, encoding: .utf8)
            .split(separator: "\n")
        #expect(lines.count == records.count)
        for (line, record) in zip(lines, records) {
            #expect(try HandshakeRecord(json: JSONParser.parse(Array(line.utf8))) == record)
        }
    }

    /// Fractions written in place agree with `formatFixed`, the String form they replaced,
    /// on rounding edges, signs, huge values and non-numbers.
    @Test func fractionsAgreeWithFormatFixed() {
        var generator = SystemRandomNumberGenerator()
        var values: [Double] = [
            0, -0.0, 0.0005, 0.0004999, -0.0005, 1.9995, 2.5, 86_400.125, 9e15, 9.5e15, 1e300, -1e300,
        ]
        values += [.nan, .infinity, -.infinity, .ulpOfOne, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        values += (0..<2000).map { _ in Double.random(in: -1e7...1e7, using: &generator) }
        for decimals in [0, 3, 6] {
            var json = JSONWriter()
            json.beginArray()
            for value in values { json.double(value, decimals: decimals) }
            json.endArray()
            let expected = "[" + values.map { formatFixed($0, decimals: decimals) }.joined(separator: ",") + "]"
            #expect(String(decoding: json.bytes, as: UTF8.self) == expected, "decimals \(decimals)")
        }
    }
}
