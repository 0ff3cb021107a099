import Foundation
import TLSWire
import TestSupport
import Testing

/// Wire strings built to attack whoever reads the output: terminal escapes, carriage
/// returns and line feeds, C1 controls, bidi overrides, invalid UTF-8. Every capture here is
/// HAND-MADE (`HandMadeTLS`). Text output must show them escaped; JSON, CSV and Zeek must
/// keep the bytes recoverable and hold no raw control character.
@Suite struct OutputInjectionTests {
    /// The hostile server names, as bytes on the wire.
    static let names: [[UInt8]] = [
        Array("a\u{1b}]0;owned\u{07}.example".utf8),  // OSC: retitles a terminal
        Array("b\r\u{1b}[2Kforged row".utf8),  // carriage return and erase line
        Array("c\nforged line".utf8),
        Array("d\u{9b}31m.example".utf8),  // C1 CSI (U+009B)
        Array("e\u{202e}elpmaxe.moc".utf8),  // right-to-left override
        Array("f\u{2066}x\u{2069}\u{200b}.example".utf8),  // isolates, zero-width space
        [0x67, 0xff, 0xfe, 0x5c, 0x2e, 0x65, 0x78] + Array("\u{0}".utf8),  // invalid UTF-8, a backslash, NUL
    ]

    static func capture(_ name: String) throws -> URL {
        var writer = PcapWriter()
        var time = 1_700_000_000.0
        for (index, name) in names.enumerated() {
            for frame in HandMadeTLS.fullHandshake(client: UInt32(index), sni: name) {
                writer.add(frame, at: time)
                time += 0.001
            }
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tlsreuse-injection-\(getpid())-\(name).pcap"
        )
        try writer.write(to: file)
        return file
    }

    /// Bytes no output line may hold: C0 controls other than the line end, DEL, and the
    /// UTF-8 of C1 controls, bidi controls and zero-width characters.
    static func rawControls(_ output: String, allowingStyle: Bool = false) -> [String] {
        var found: [String] = []
        let scalars = Array(output.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if allowingStyle, scalar == "\u{1b}" {
                let rest = String(String.UnicodeScalarView(scalars[index...].prefix(5)))
                if let code = ["[0m", "[1m", "[31m", "[32m", "[33m"].first(where: { rest.dropFirst().hasPrefix($0) }) {
                    index += 1 + code.unicodeScalars.count
                    continue
                }
            }
            let value = scalar.value
            if (value < 0x20 && value != 0x0a && value != 0x09) || (0x7f..<0xa0).contains(value)
                || (0x202a...0x202e).contains(value)
                || (0x2066...0x2069).contains(value) || value == 0x200b
            {
                found.append(String(value, radix: 16))
            }
            index += 1
        }
        return found
    }

    @Test func textOutputShowsEscapes() throws {
        let file = try Self.capture("text")
        defer { try? FileManager.default.removeItem(at: file) }
        let table = try runProcess(Paths.binary.path, ["handshakes", "-q", file.path])
        #expect(table.status == 0)
        #expect(Self.rawControls(table.stdout).isEmpty, "\(Self.rawControls(table.stdout))")
        #expect(
            table.stdout.split(separator: "\n").count == Self.names.count + 1,
            "one line per connection, none forged"
        )
        #expect(table.stdout.contains(#"a\x1b]0;owned\x07.example"#))
        #expect(table.stdout.contains(#"e\u{202e}elpmaxe.moc"#))
        #expect(table.stdout.contains(#"d\u{9b}31m.example"#))
        for colour in ["never", "always"] {
            let report = try runProcess(Paths.binary.path, ["report", "-q", "--color", colour, file.path])
            #expect(report.status == 0)
            #expect(
                Self.rawControls(report.stdout, allowingStyle: colour == "always").isEmpty,
                "\(colour): \(Self.rawControls(report.stdout))"
            )
            #expect(!report.stdout.contains("forged line\n"))
        }
    }

    @Test func recordFormatsKeepTheBytes() throws {
        let file = try Self.capture("records")
        defer { try? FileManager.default.removeItem(at: file) }
        let jsonl = try runProcess(Paths.binary.path, ["handshakes", "--format", "jsonl", "-q", file.path])
        #expect(Self.rawControls(jsonl.stdout).isEmpty)
        #expect(jsonl.stdout.contains(#"\u202e"#))
        let names = jsonl.stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["sni"] as? String
        }
        // Every name's bytes come back from its text, exactly (WireText).
        #expect(names.map(WireText.bytes) == Self.names)
        #expect(names.last == #"g\xff\xfe\x5c.ex"# + "\u{0}")
        for format in ["csv", "zeek"] {
            let output = try runProcess(Paths.binary.path, ["handshakes", "--format", format, "-q", file.path])
            #expect(output.status == 0)
            let withoutLineEnds = output.stdout.replacingOccurrences(of: "\r\n", with: "\n")
            #expect(Self.rawControls(withoutLineEnds).isEmpty, "\(format): \(Self.rawControls(withoutLineEnds))")
            #expect(
                withoutLineEnds.split(separator: "\n").filter { !$0.hasPrefix("#") }.count == Self.names.count
                    + (format == "csv" ? 1 : 0)
            )
        }
        // A CSV reader and a Zeek log reader get every cell as JSON has it (CSV: escaped for display).
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-injection-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let saved = folder.appendingPathComponent("out.jsonl").path
        try Data(jsonl.stdout.utf8).write(to: URL(fileURLWithPath: saved))
        for format in ["csv", "zeek"] {
            let path = folder.appendingPathComponent("out.\(format)").path
            _ = try runProcess(Paths.binary.path, ["handshakes", "--format", format, "-q", "-o", path, file.path])
            let check = try runProcess("python3", [checkFlat, format, path, saved])
            #expect(check.status == 0, "\(format): \(check.stdout)\(check.stderr)")
        }
        // Saved records read back to the same names.
        let back = try runProcess(
            Paths.binary.path,
            ["handshakes", "--format", "jsonl", "-q", "--from", "-"],
            stdin: Data(jsonl.stdout.utf8)
        )
        #expect(back.stdout == jsonl.stdout)
    }

    /// HAND-MADE: one 20,000-byte server name does not widen every row of the table.
    @Test func longNameIsCut() throws {
        var writer = PcapWriter()
        var time = 1_700_000_000.0
        for (index, name) in [Array(repeating: UInt8(ascii: "x"), count: 20_000), Array("short.example".utf8)]
            .enumerated()
        {
            for frame in HandMadeTLS.fullHandshake(client: UInt32(index), sni: name) {
                writer.add(frame, at: time)
                time += 0.001
            }
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-long-\(getpid()).pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        try writer.write(to: file)
        let table = try runProcess(Paths.binary.path, ["handshakes", "-q", file.path])
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.count < 300 }, "\(lines.map(\.count))")
        #expect(lines[1].contains("…"))
        let report = try runProcess(Paths.binary.path, ["report", "-q", file.path])
        #expect(report.stdout.split(separator: "\n").allSatisfy { $0.count < 400 })
    }
}
