import Handshakes
import Packets
import TLSWire

/// How handshake records are written. Every format walks the record schema
/// (`HandshakeRecord.visitFields`).
public enum RecordFormat: String, CaseIterable, Sendable {
    /// Aligned columns for reading.
    case text
    /// One JSON object per line.
    case jsonl
    /// One JSON array, a record per line.
    case json
    /// RFC 4180: comma-separated, CRLF line ends, a header row.
    case csv
    /// Zeek's ASCII log: tab-separated with #separator, #fields and #types headers (zeek-cut reads it).
    case zeek
}

/// A column of the flat formats (CSV, Zeek): nested objects become "parent.child" columns,
/// and a list of objects becomes one list column per member.
public struct RecordColumn: Equatable, Sendable {
    public var name: String
    /// The Zeek type name, e.g. "count", "vector[string]".
    public var zeekType: String
}

/// Writes records in one format, streaming: nothing but the text table's first rows and the
/// JSON array's last record is held back.
public final class RecordOutput {
    public let format: RecordFormat
    private let writer: LineWriter
    private var json = JSONWriter()
    private var table = HandshakeTextTable()
    private var firstRows: [HandshakeRecord] = []
    /// JSON array: the previous record, written once it is known not to be the last.
    private var heldBack: [UInt8]?
    private var started = false
    private let openedAtNanos: Int64
    /// Text columns are sized from this many first rows, then rows stream.
    static let sizingRows = 200

    /// `openedAtNanos` is the wall-clock time for Zeek's #open and #close lines.
    public init(format: RecordFormat, writer: LineWriter, openedAtNanos: Int64 = 0) {
        self.format = format
        self.writer = writer
        self.openedAtNanos = openedAtNanos
    }

    public func write(_ record: HandshakeRecord) {
        if !started { start() }
        switch format {
        case .text:
            if firstRows.count < RecordOutput.sizingRows {
                firstRows.append(record)
                if firstRows.count == RecordOutput.sizingRows { table.lines(for: firstRows).forEach(writer.line) }
            } else {
                table.lines(for: [record]).forEach(writer.line)
            }
        case .jsonl:
            json.reset()
            record.writeJSON(into: &json)
            json.withBytes { writer.line(bytes: $0) }
        case .json:
            json.reset()
            record.writeJSON(into: &json)
            if var previous = heldBack {
                previous.append(UInt8(ascii: ","))
                writer.line(bytes: previous)
            }
            heldBack = json.bytes
        case .csv:
            writer.line(bytes: FlatRecord.csvRow(FlatRecord.cells(record)))
        case .zeek:
            writer.line(bytes: FlatRecord.zeekRow(FlatRecord.cells(record)))
        }
    }

    /// Writes what was held back and the closing lines; call once at the end.
    public func finish(closedAtNanos: Int64 = 0) {
        if !started { start() }
        switch format {
        case .text:
            if firstRows.count < RecordOutput.sizingRows { table.lines(for: firstRows).forEach(writer.line) }
        case .json:
            if let last = heldBack { writer.line(bytes: last) }
            writer.line("]")
        case .zeek:
            writer.line("#close\t\(zeekTime(closedAtNanos))")
        case .jsonl, .csv:
            break
        }
        writer.flush()
    }

    private func start() {
        started = true
        switch format {
        case .json:
            writer.line("[")
        case .csv:
            writer.line(
                bytes: FlatRecord.csvRow(FlatRecord.columns.map { .scalar(.string($0.name)) }, quoteFormulas: false)
            )
        case .zeek:
            writer.line("#separator \\x09")
            writer.line("#set_separator\t,")
            writer.line("#empty_field\t(empty)")
            writer.line("#unset_field\t-")
            writer.line("#path\ttlsreuse_handshakes")
            writer.line("#open\t\(zeekTime(openedAtNanos))")
            writer.line("#fields\t" + FlatRecord.columns.map(\.name).joined(separator: "\t"))
            writer.line("#types\t" + FlatRecord.columns.map(\.zeekType).joined(separator: "\t"))
        case .text, .jsonl:
            break
        }
    }

    /// Zeek's #open/#close time format, e.g. "2026-11-29-08-15-00".
    private func zeekTime(_ nanos: Int64) -> String {
        String(utcTimestamp(nanos, fractionDigits: 0).map { $0 == " " || $0 == ":" ? "-" : $0 })
    }
}

/// A record flattened to the columns of the CSV and Zeek formats.
public enum FlatRecord {
    public enum Cell: Equatable {
        case scalar(FieldValue)
        case list([FieldValue])
    }

    /// The columns, from the schema with every optional member present, so the header does
    /// not depend on which records come first.
    public static let columns: [RecordColumn] = {
        var lister = ColumnLister(prefix: "", inList: false)
        var record = HandshakeRecord.placeholder
        record.visitFields(&lister)
        return lister.columns
    }()

    /// The field list of a record with every optional member present (the column template).
    static let templateFields: [Field] = {
        var collector = FieldCollector(template: true)
        var record = HandshakeRecord.placeholder
        record.visitFields(&collector)
        return collector.fields
    }()

    /// Names the flat columns and their Zeek types: "parent.child" for a nested object's
    /// members, a vector column per member of a list of objects.
    private struct ColumnLister: RecordFieldVisitor {
        static var onlyReads: Bool { true }
        let prefix: String
        let inList: Bool
        var columns: [RecordColumn] = []

        init(prefix: String, inList: Bool) {
            self.prefix = prefix
            self.inList = inList
        }

        private static func zeekType(_ kind: FieldKind) -> String {
            switch kind {
            case .flag: "bool"
            case .count: "count"
            case .port: "port"
            case .time, .wholeSeconds: "time"
            case .interval: "interval"
            case .address: "addr"
            case .text, .name: "string"
            }
        }

        private mutating func add(_ key: StaticString, _ type: String) {
            columns.append(RecordColumn(name: prefix + key.description, zeekType: inList ? "vector[\(type)]" : type))
        }

        mutating func scalar<T: RecordScalar>(
            _ key: StaticString,
            _ value: inout T,
            _ kind: FieldKind,
            _ origin: FieldOrigin
        ) {
            add(key, Self.zeekType(kind))
        }

        mutating func optional<T: RecordScalar>(
            _ key: StaticString,
            _ value: inout T?,
            _ kind: FieldKind,
            _ origin: FieldOrigin
        ) {
            add(key, Self.zeekType(kind))
        }

        mutating func list<T: RecordScalar>(
            _ key: StaticString,
            _ values: inout [T],
            _ kind: FieldKind,
            _ origin: FieldOrigin
        ) {
            add(key, "vector[\(Self.zeekType(kind == .name ? .text : kind))]")
        }

        private mutating func members<T: RecordObject>(_ key: StaticString, _ type: T.Type, inList: Bool) {
            var inner = ColumnLister(prefix: prefix + key.description + ".", inList: inList)
            var placeholder = T.placeholder
            placeholder.visitFields(&inner)
            columns += inner.columns
        }

        mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {
            members(key, T.self, inList: inList)
        }

        mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
            members(key, T.self, inList: true)
        }
    }

    /// The record's cells in column order.
    public static func cells(_ record: HandshakeRecord) -> [Cell] {
        var cells: [Cell] = []
        cells.reserveCapacity(columns.count)
        flatten(record.fields, template: templateFields, into: &cells)
        return cells
    }

    private static func flatten(_ fields: [Field], template: [Field], into cells: inout [Cell]) {
        for (field, shape) in zip(fields, template) {
            switch (shape.value, field.value) {
            case let (.object(shapeChildren), .object(children)):
                flatten(children, template: shapeChildren, into: &cells)
            case let (.object(shapeChildren), _):
                absent(shapeChildren, into: &cells)
            case let (.objects(shapeList), .objects(list)):
                for (index, member) in (shapeList.first ?? []).enumerated() {
                    cells.append(
                        .list(list.map { index < $0.count && $0[index].key == member.key ? $0[index].value : .null })
                    )
                }
            case let (.objects(shapeList), _):
                for _ in shapeList.first ?? [] { cells.append(.list([])) }
            case let (_, value):
                cells.append(.scalar(value))
            }
        }
    }

    private static func absent(_ template: [Field], into cells: inout [Cell]) {
        for field in template {
            if case let .object(children) = field.value {
                absent(children, into: &cells)
            } else {
                cells.append(.scalar(.null))
            }
        }
    }

    // MARK: CSV (RFC 4180)

    /// One CSV row with its CRLF (RFC 4180 2.1): fields holding a comma, quote or line break are
    /// quoted, with quotes doubled (2.6, 2.7); a list is a JSON array in one field.
    /// `quoteFormulas`: a string starting with = + - @ or a tab gets a leading apostrophe, so a
    /// spreadsheet shows it instead of evaluating it (hostile SNI values).
    public static func csvRow(_ cells: [Cell], quoteFormulas: Bool = true) -> [UInt8] {
        var row: [UInt8] = []
        row.reserveCapacity(512)
        for (index, cell) in cells.enumerated() {
            if index > 0 { row.append(UInt8(ascii: ",")) }
            let text: String
            switch cell {
            case let .scalar(value): text = csvText(value, quoteFormulas: quoteFormulas)
            case let .list(values):
                if values.isEmpty {
                    text = "[]"
                    break
                }
                var json = JSONWriter()
                json.beginArray()
                for value in values { json.value(value) }
                json.endArray()
                text = String(decoding: json.bytes, as: UTF8.self)
            }
            appendCSVField(text, to: &row)
        }
        row.append(0x0d)  // LineWriter adds the LF.
        return row
    }

    private static func csvText(_ value: FieldValue, quoteFormulas: Bool) -> String {
        switch value {
        case .null: return ""
        case let .bool(b): return b ? "true" : "false"
        case let .int(i): return String(i)
        case let .timestamp(nanos): return epochSeconds(nanos)
        case let .wholeSeconds(seconds): return epochSeconds(whole: seconds)
        case let .seconds(s): return formatFixed(s, decimals: 3)
        case let .string(wire):
            // No raw control or formatting character in a cell: a spreadsheet or terminal shows the escape.
            let s = DisplayText.escaped(wire)
            if quoteFormulas, let first = s.utf8.first,
                [UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), 0x09, 0x0d].contains(first)
            {
                return "'" + s
            }
            return s
        case .strings, .ints, .object, .objects:
            var json = JSONWriter()
            json.value(value)
            return String(decoding: json.bytes, as: UTF8.self)
        }
    }

    private static func appendCSVField(_ text: String, to row: inout [UInt8]) {
        let needsQuotes = text.utf8.contains {
            $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0a || $0 == 0x0d
        }
        guard needsQuotes else {
            row.append(contentsOf: text.utf8)
            return
        }
        row.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            if byte == UInt8(ascii: "\"") { row.append(byte) }
            row.append(byte)
        }
        row.append(UInt8(ascii: "\""))
    }

    // MARK: Zeek ASCII log

    /// One tab-separated row: "-" when unset, "(empty)" for an empty string or list, lists
    /// joined with ",", and tabs, commas in list members, backslashes and control bytes
    /// written as \xHH, as Zeek's ASCII writer does.
    public static func zeekRow(_ cells: [Cell]) -> [UInt8] {
        var row: [UInt8] = []
        row.reserveCapacity(512)
        for (index, cell) in cells.enumerated() {
            if index > 0 { row.append(0x09) }
            switch cell {
            case let .scalar(value):
                appendZeek(value, inList: false, to: &row)
            case let .list(values):
                if values.isEmpty {
                    row.append(contentsOf: "(empty)".utf8)
                    continue
                }
                for (position, value) in values.enumerated() {
                    if position > 0 { row.append(UInt8(ascii: ",")) }
                    appendZeek(value, inList: true, to: &row)
                }
            }
        }
        return row
    }

    private static func appendZeek(_ value: FieldValue, inList: Bool, to row: inout [UInt8]) {
        switch value {
        case .null: row.append(UInt8(ascii: "-"))
        case let .bool(b): row.append(UInt8(ascii: b ? "T" : "F"))
        case let .int(i): row.append(contentsOf: String(i).utf8)
        case let .timestamp(nanos): row.append(contentsOf: epochSeconds(nanos).utf8)
        case let .wholeSeconds(seconds): row.append(contentsOf: epochSeconds(whole: seconds).utf8)
        case let .seconds(s): row.append(contentsOf: formatFixed(s, decimals: 3).utf8)
        case let .string(s): appendZeekString(s, inList: inList, to: &row)
        case let .strings(list):
            if list.isEmpty {
                row.append(contentsOf: "(empty)".utf8)
                return
            }
            for (position, s) in list.enumerated() {
                if position > 0 { row.append(UInt8(ascii: ",")) }
                appendZeekString(s, inList: true, to: &row)
            }
        case let .ints(list):
            if list.isEmpty {
                row.append(contentsOf: "(empty)".utf8)
                return
            }
            row.append(contentsOf: list.map { String($0) }.joined(separator: ",").utf8)
        case .object, .objects:
            var json = JSONWriter()
            json.value(value)
            appendZeekString(String(decoding: json.bytes, as: UTF8.self), inList: inList, to: &row)
        }
    }

    private static func appendZeekString(_ s: String, inList: Bool, to row: inout [UInt8]) {
        if s.isEmpty {
            row.append(contentsOf: "(empty)".utf8)
            return
        }
        let hex = Array("0123456789abcdef".utf8)
        // A value that reads as the unset or empty marker is escaped at its first byte.
        let marker = s == "-" || s == "(empty)"
        func escape(_ byte: UInt8) {
            row.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "x"), hex[Int(byte >> 4)], hex[Int(byte & 0xf)]])
        }
        if s.utf8.allSatisfy({ $0 < 0x80 }) {
            for (index, byte) in s.utf8.enumerated() {
                if byte < 0x20 || byte == 0x7f || byte == UInt8(ascii: "\\") || (inList && byte == UInt8(ascii: ","))
                    || (marker && index == 0)
                {
                    escape(byte)
                } else {
                    row.append(byte)
                }
            }
            return
        }
        // Non-ASCII: a character `DisplayText` would not show raw (C1, bidi, ...) goes as its UTF-8 bytes in \xHH.
        for scalar in s.unicodeScalars {
            let utf8 = UTF8.encode(scalar)!
            if scalar.value < 0x80 {
                let byte = UInt8(scalar.value)
                if byte < 0x20 || byte == 0x7f || byte == UInt8(ascii: "\\") || (inList && byte == UInt8(ascii: ",")) {
                    escape(byte)
                } else {
                    row.append(byte)
                }
            } else if DisplayText.needsEscape(scalar) {
                utf8.forEach(escape)
            } else {
                row.append(contentsOf: utf8)
            }
        }
    }
}
