import Foundation
import Reports
import TLSWire
import TestSupport
import Testing

@testable import Handshakes

/// Gives every field of the schema a value unlike its initial one, so a record made with it
/// shows whether each format carries each field.
private struct EveryFieldSet: RecordFieldVisitor {
    static var fillsRecord: Bool { true }
    private var serial = 0

    private mutating func sample<T: RecordScalar>(_ kind: FieldKind) -> T {
        serial += 1
        var candidates: [ScalarValue]
        switch kind {
        // Text, or hex for fields held as bytes (a TLS random).
        case .text: candidates = [.text("v\(serial) \u{2028}\"\\"), .text(String(format: "%064x", serial))]
        case .address: candidates = [.text(serial % 2 == 0 ? "192.0.2.\(serial)" : "2001:db8::\(serial)")]
        case .name: candidates = [.text("TLSv1.2"), .integer(0x1301)]
        case .flag: candidates = [.flag(true)]
        case .count, .port: candidates = [.integer(Int64(serial))]
        case .time: candidates = [.integer(1_796_000_000_123_456_000 + Int64(serial) * 1000)]
        case .wholeSeconds: candidates = [.integer(253_402_300_799 - Int64(serial))]
        case .interval: candidates = [.number(Double(serial) + 0.25)]
        }
        if let spelled = T.self as? any WireSpelling.Type, let last = spelled.spellings.last {
            candidates.insert(.text(last), at: 0)
        }
        guard let value = candidates.lazy.compactMap({ T(scalar: $0, kind) }).first else {
            Issue.record("no sample for a \(T.self) of kind \(kind)")
            return T.placeholder
        }
        return value
    }

    mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        if origin != .shown { value = sample(kind) }
    }

    mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        if origin != .shown { value = sample(kind) as T }
    }

    mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        values = [sample(kind), sample(kind)]
    }

    mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {
        var filled = T.placeholder
        filled.visitFields(&self)
        value = filled
    }

    mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
        var first = T.placeholder
        var second = T.placeholder
        first.visitFields(&self)
        second.visitFields(&self)
        values = [first, second]
    }
}

/// Clears what a later stage fills in: what reading records back leaves for the analysis.
private struct DerivedCleared: RecordFieldVisitor {
    mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        #expect(origin != .derived, "a derived field must be optional: \(key)")
    }

    mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        if origin == .derived { value = nil }
    }

    mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {}
    mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {}
    mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {}
}

/// The schema's keys as the table in ARCHITECTURE.md shows them.
private struct KeyTable: RecordFieldVisitor {
    var prefix = ""
    var rows: [String] = []

    private mutating func row(_ key: StaticString, _ shape: String, _ origin: FieldOrigin) {
        let from =
            switch origin {
            case .captured: "capture"
            case .derived: "analysis"
            case .shown: "capture (shown)"
            }
        rows.append("| `\(prefix)\(key)` | \(shape) | \(from) |")
    }

    /// A fixed set by its spellings, else the kind.
    private static func shape<T>(_ kind: FieldKind, _ type: T.Type) -> String {
        if let spelled = T.self as? any WireSpelling.Type {
            return spelled.spellings.map { "`\($0)`" }.joined(separator: ", ")
        }
        return shape(kind)
    }

    private static func shape(_ kind: FieldKind) -> String {
        switch kind {
        case .text: "text"
        case .flag: "true/false"
        case .count: "number"
        case .port: "port"
        case .time: "epoch seconds"
        case .wholeSeconds: "epoch seconds (whole)"
        case .interval: "seconds"
        case .address: "IP address"
        case .name: "name"
        }
    }

    mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        row(key, Self.shape(kind, T.self), origin)
    }

    mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        row(key, Self.shape(kind, T.self) + " or null", origin)
    }

    mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        row(key, "list of \(Self.shape(kind))", origin)
    }

    private mutating func members<T: RecordObject>(
        _ key: StaticString,
        _ type: T.Type,
        _ shape: String,
        _ origin: FieldOrigin
    ) {
        row(key, shape, origin)
        var inner = KeyTable(prefix: prefix + key.description + ".")
        var placeholder = T.placeholder
        placeholder.visitFields(&inner)
        rows += inner.rows
    }

    mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {
        members(key, T.self, "object or null", origin)
    }

    mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
        members(key, T.self, "list of objects", origin)
    }
}

@Suite struct RecordSchemaTests {
    static func everyFieldSet() -> HandshakeRecord {
        var record = HandshakeRecord.placeholder
        var filler = EveryFieldSet()
        record.visitFields(&filler)
        return record
    }

    /// Every field, given a value, survives the spill file exactly and JSON but for what
    /// the analysis derives again; the flat formats have a cell for each column.
    @Test func everyFieldSurvivesEveryForm() throws {
        let record = Self.everyFieldSet()
        #expect(record != .placeholder)

        var writer = RecordSpillWriter()
        record.spill(into: &writer)
        var reader = RecordSpillReader(writer.bytes)
        #expect(HandshakeRecord(spilled: &reader) == record)
        #expect(reader.isAtEnd)

        var json = JSONWriter()
        record.writeJSON(into: &json)
        let read = try HandshakeRecord(json: JSONParser.parse(json.bytes))
        var expected = record
        var clear = DerivedCleared()
        expected.visitFields(&clear)
        #expect(read == expected)
        #expect(read.offer == nil && read.backend == nil && record.offer != nil, "derived fields are worked out again")

        #expect(FlatRecord.cells(record).count == FlatRecord.columns.count)
        #expect(FlatRecord.cells(.placeholder).count == FlatRecord.columns.count)
    }

    /// The CSV and Zeek rows that `RecordOutput` writes straight from the schema are, byte for
    /// byte, the rows built from the cell values (`FlatRecord.csvRow`, `zeekRow`): a record
    /// with every field set (two objects in each list), the placeholder (every optional and
    /// object absent, every list empty), and HAND-MADE hostile strings (a formula, separators,
    /// the Zeek markers, controls, a bidi override, non-ASCII).
    @Test func flatRowsMatchTheCellReference() throws {
        var hostile = Self.everyFieldSet()
        hostile.sni = "=cmd|' /C calc'!A0,\"x\"\t\\-\u{202e}é\r\n"
        hostile.alpnOffered = ["-", "(empty)", "", "a,b", "\u{1b}[31m", "+1", "plain"]
        hostile.alert = "-"
        hostile.malformed = "(empty)"
        hostile.certificate = nil
        var absentMembers = Self.everyFieldSet()
        absentMembers.serverTraits = ServerTraits(ttl: 64)
        absentMembers.pskIdentities = []
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-flat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (index, record) in [Self.everyFieldSet(), .placeholder, hostile, absentMembers].enumerated() {
            for format in [RecordFormat.csv, .zeek] {
                let path = dir.appendingPathComponent("\(index).\(format.rawValue)").path
                let output = RecordOutput(format: format, writer: try LineWriter(path: path))
                output.write(record)
                output.finish()
                let lines = try Data(contentsOf: URL(fileURLWithPath: path)).split(separator: 0x0a).map(Array.init)
                // CSV: the row after the header; Zeek: the line that is not a # header.
                let written = format == .csv ? lines.dropFirst().first : lines.first { $0.first != UInt8(ascii: "#") }
                let cells = FlatRecord.cells(record)
                let reference = format == .csv ? FlatRecord.csvRow(cells) : FlatRecord.zeekRow(cells)
                #expect(written == reference, "record \(index), \(format)")
            }
        }
    }

    /// A record whose captured field is missing or of the wrong type is refused by name.
    @Test func missingOrMistypedFieldsAreNamed() throws {
        var json = JSONWriter()
        Self.everyFieldSet().writeJSON(into: &json)
        let text = String(decoding: json.bytes, as: UTF8.self)
        for (edit, key) in [("\"hrr\":true,", "hrr"), ("\"ttl\":", "server_traits.ttl")] {
            let damaged =
                key == "hrr"
                ? text.replacingOccurrences(of: edit, with: "")
                : text.replacingOccurrences(of: edit, with: "\"ttl\":\"x\",\"was\":")
            #expect(throws: RecordParseError.self) { try HandshakeRecord(json: JSONParser.parse(Array(damaged.utf8))) }
            do {
                _ = try HandshakeRecord(json: JSONParser.parse(Array(damaged.utf8)))
            } catch let error as RecordParseError {
                #expect(error.description.contains("\"\(key)\""), "\(error)")
            }
        }
        // A random held as bytes takes hex of at most 32 bytes, nothing else.
        for bad in ["zz", "abc", String(repeating: "ab", count: 33)] {
            let damaged = text.replacing(/"client_random":"[0-9a-f]*"/, with: "\"client_random\":\"\(bad)\"")
            #expect(damaged != text)
            #expect(throws: RecordParseError.self) { try HandshakeRecord(json: JSONParser.parse(Array(damaged.utf8))) }
        }
    }

    /// ARCHITECTURE.md's key table is the schema's (regenerate with UPDATE_GOLDEN=1).
    @Test func architectureListsEveryKey() throws {
        var table = KeyTable()
        var record = HandshakeRecord.placeholder
        record.visitFields(&table)
        let generated = (["| key | value | filled from |", "|---|---|---|"] + table.rows).joined(separator: "\n")
        let path = Paths.repository.appendingPathComponent("ARCHITECTURE.md")
        let text = try String(contentsOf: path, encoding: .utf8)
        let begin = "<!-- record keys: generated by RecordSchemaTests -->\n"
        let end = "\n<!-- end of record keys -->"
        let start = try #require(text.range(of: begin))
        let stop = try #require(text.range(of: end))
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try (String(text[..<start.upperBound]) + generated + String(text[stop.lowerBound...])).write(
                to: path,
                atomically: true,
                encoding: .utf8
            )
            return
        }
        #expect(String(text[start.upperBound..<stop.lowerBound]) == generated)
    }
}

/// The SYN-ACK option layout kept as a server trait: a TCP Fast Open cookie (34, or 254 in
/// RFC 6994's experimental form) and the NOPs that padded it at the end are left out, since a
/// server sends one only to a client that asked (tcp-fastopen.pcap shows both on one nginx).
/// Writers copy `plainName` as it is, in every format: it must be the value's text and need
/// no escape or quote anywhere.
@Suite struct PlainNameTests {
    static func isPlain(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
                    || "_-. ()".utf8.contains(byte)
            } && name.first != "-"
    }

    @Test func spellingsAreTheirRawValues() {
        func check<T: WireSpelling>(_: T.Type) {
            for value in T.allCases {
                #expect(value.plainName(.text) == value.rawValue)
                #expect(Self.isPlain(value.rawValue))
            }
        }
        check(Mechanism.self)
        check(Transport.self)
        check(PSKKind.self)
        check(SessionAgeOrigin.self)
        check(StartTLSProtocol.self)
        check(ProxyTunnelKind.self)
    }

    @Test func versionAndCipherNamesArePlain() {
        for raw in UInt16.min...UInt16.max {
            let version = ProtocolVersion(rawValue: raw)
            let suite = CipherSuite(rawValue: raw)
            #expect(version.plainName(.name) == version.description)
            #expect(suite.plainName(.name) == suite.description)
            #expect(version.plainName(.count) == nil && suite.plainName(.count) == nil)
            if !Self.isPlain(version.description) || !Self.isPlain(suite.description) {
                Issue.record("not plain: \(version.description) \(suite.description)")
                return
            }
        }
    }
}

@Suite struct ServerTraitTests {
    @Test(arguments: [
        ([2, 4, 8, 1, 3] as [UInt8], "2,4,8,1,3"),
        ([2, 4, 8, 1, 3, 34, 1, 1], "2,4,8,1,3"),
        ([2, 4, 8, 1, 3, 254, 1, 1], "2,4,8,1,3"),
        ([34, 1, 1, 2], "1,1,2"),
        ([2, 1, 34, 1], "2"),
        ([2, 1, 1], "2,1,1"),
        ([], ""),
        ([255, 30, 0], "255,30,0"),
    ])
    func fastOpenCookiesAreNotAHostTrait(layout: [UInt8], expected: String) {
        #expect(ServerTraits.hostOptionLayout(layout) == expected)
    }
}
