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
    private let row = OutputBytes(capacity: 4096)
    private let scratch = OutputBytes(capacity: 256)
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
            writeFlat(record, .csv)
        case .zeek:
            writeFlat(record, .zeek)
        }
    }

    /// A CSV or Zeek row, straight from the schema into `row`.
    private func writeFlat(_ record: HandshakeRecord, _ format: FlatFormat) {
        row.removeAll()
        var record = record
        var cells = FlatRecordWriter(format, into: row, scratch: scratch)
        record.visitFields(&cells)
        if format == .csv { row.append(0x0d) }  // RFC 4180 2.1's CRLF; LineWriter adds the LF.
        row.withBytes { writer.line(bytes: $0) }
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
    /// spreadsheet shows it instead of evaluating it (hostile SNI values). Records are written
    /// by `FlatRecordWriter`, cell for cell the same; this writes the header and is its reference.
    public static func csvRow(_ cells: [Cell], quoteFormulas: Bool = true) -> [UInt8] {
        let row = OutputBytes(capacity: 512)
        for (index, cell) in cells.enumerated() {
            if index > 0 { row.append(UInt8(ascii: ",")) }
            switch cell {
            case let .scalar(.string(wire)): row.appendCSVString(wire, quoteFormulas: quoteFormulas)
            case let .scalar(value):
                var text = csvText(value)
                text.withUTF8 { row.appendCSVField($0, apostrophe: false) }
            case let .list(values):
                guard !values.isEmpty else {
                    row.appendLiteral("[]")
                    continue
                }
                var json = JSONWriter()
                json.beginArray()
                for value in values { json.value(value) }
                json.endArray()
                json.withBytes { row.appendCSVField($0, apostrophe: false) }
            }
        }
        row.append(0x0d)  // LineWriter adds the LF.
        return row.withBytes { Array($0) }
    }

    /// A cell's text, for every value but a string.
    private static func csvText(_ value: FieldValue) -> String {
        switch value {
        case .null: return ""
        case let .bool(b): return b ? "true" : "false"
        case let .int(i): return String(i)
        case let .timestamp(nanos): return epochSeconds(nanos)
        case let .wholeSeconds(seconds): return epochSeconds(whole: seconds)
        case let .seconds(s): return formatFixed(s, decimals: 3)
        case let .string(wire): return wire
        case .strings, .ints, .object, .objects:
            var json = JSONWriter()
            json.value(value)
            return String(decoding: json.bytes, as: UTF8.self)
        }
    }

    // MARK: Zeek ASCII log

    /// One tab-separated row: "-" when unset, "(empty)" for an empty string or list, lists
    /// joined with ",", and tabs, commas in list members, backslashes and control bytes
    /// written as \xHH, as Zeek's ASCII writer does. Records are written by
    /// `FlatRecordWriter`, cell for cell the same; this is its reference.
    public static func zeekRow(_ cells: [Cell]) -> [UInt8] {
        let row = OutputBytes(capacity: 512)
        for (index, cell) in cells.enumerated() {
            if index > 0 { row.append(0x09) }
            switch cell {
            case let .scalar(value):
                appendZeek(value, inList: false, to: row)
            case let .list(values):
                if values.isEmpty {
                    row.appendLiteral("(empty)")
                    continue
                }
                for (position, value) in values.enumerated() {
                    if position > 0 { row.append(UInt8(ascii: ",")) }
                    appendZeek(value, inList: true, to: row)
                }
            }
        }
        return row.withBytes { Array($0) }
    }

    private static func appendZeek(_ value: FieldValue, inList: Bool, to row: OutputBytes) {
        switch value {
        case .null: row.append(UInt8(ascii: "-"))
        case let .bool(b): row.append(UInt8(ascii: b ? "T" : "F"))
        case let .int(i): row.appendInteger(i)
        case let .timestamp(nanos): row.appendEpochSeconds(nanos)
        case let .wholeSeconds(seconds): row.appendEpochSeconds(whole: seconds)
        case let .seconds(s): row.appendFixed(s, decimals: 3)
        case let .string(s): row.appendZeekString(s, inList: inList)
        case let .strings(list):
            if list.isEmpty {
                row.appendLiteral("(empty)")
                return
            }
            for (position, s) in list.enumerated() {
                if position > 0 { row.append(UInt8(ascii: ",")) }
                row.appendZeekString(s, inList: true)
            }
        case let .ints(list):
            if list.isEmpty {
                row.appendLiteral("(empty)")
                return
            }
            for (position, i) in list.enumerated() {
                if position > 0 { row.append(UInt8(ascii: ",")) }
                row.appendInteger(i)
            }
        case .object, .objects:
            var json = JSONWriter()
            json.value(value)
            row.appendZeekString(String(decoding: json.bytes, as: UTF8.self), inList: inList)
        }
    }
}

extension OutputBytes {
    /// A CSV field (RFC 4180 2.6, 2.7): quoted, with quotes doubled, when it holds a comma, a
    /// quote or a line break; `apostrophe` puts one in front (a formula shown, not run).
    func appendCSVField(_ text: UnsafeBufferPointer<UInt8>, apostrophe: Bool) {
        let needsQuotes = OutputBytes.holdsCSVSpecial(text)
        guard needsQuotes else {
            if apostrophe { append(UInt8(ascii: "'")) }
            return append(text)
        }
        append(UInt8(ascii: "\""))
        if apostrophe { append(UInt8(ascii: "'")) }
        for byte in text {
            if byte == UInt8(ascii: "\"") { append(byte) }
            append(byte)
        }
        append(UInt8(ascii: "\""))
    }

    /// Whether `text` holds a comma, a quote, a line feed or a carriage return: eight bytes
    /// at a time (a zero byte of word ^ c*0x01.., as in `needsEscape`), then the tail.
    private static func holdsCSVSpecial(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        @inline(__always) func zeroBytes(_ value: UInt64) -> UInt64 { (value &- ones) & ~value }
        var flagged: UInt64 = 0
        var index = 0
        if let base = UnsafeRawPointer(text.baseAddress) {
            while index + 8 <= text.count {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                flagged |= zeroBytes(word ^ (ones &* 0x2c)) | zeroBytes(word ^ (ones &* 0x22))
                flagged |= zeroBytes(word ^ (ones &* 0x0a)) | zeroBytes(word ^ (ones &* 0x0d))
                index += 8
            }
        }
        if flagged & 0x8080_8080_8080_8080 != 0 { return true }
        while index < text.count {
            let byte = text[index]
            if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "\"") || byte == 0x0a || byte == 0x0d { return true }
            index += 1
        }
        return false
    }

    /// A wire string as a CSV field: no raw control or formatting character (a spreadsheet or
    /// terminal shows the escape), and with `quoteFormulas` a leading = + - @ tab or return
    /// behind an apostrophe.
    func appendCSVString(_ wire: String, quoteFormulas: Bool) {
        var shown = DisplayText.escaped(wire)
        shown.withUTF8 { text in
            let formula =
                quoteFormulas
                && text.first.map {
                    $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-")
                        || $0 == UInt8(ascii: "@") || $0 == 0x09 || $0 == 0x0d
                } == true
            appendCSVField(text, apostrophe: formula)
        }
    }

    /// A Zeek string: "(empty)" when empty; a value that reads as the unset or empty marker
    /// escaped at its first byte; controls, DEL, backslashes, commas in a list member and
    /// characters `DisplayText` would not show raw as \xHH of their UTF-8 bytes.
    func appendZeekString(_ s: String, inList: Bool) {
        var s = s
        let plain = s.withUTF8 { utf8 -> Bool in
            // Most values (names, hex, versions) have nothing to escape: one scan, one copy.
            guard utf8.count > 1 || (utf8.count == 1 && utf8[0] != UInt8(ascii: "-")) else { return false }
            for byte in utf8
            where byte < 0x20 || byte >= 0x7f || byte == UInt8(ascii: "\\") || (inList && byte == UInt8(ascii: ",")) {
                return false
            }
            if utf8.count == 7 && utf8.elementsEqual("(empty)".utf8) { return false }
            append(utf8)
            return true
        }
        if !plain { appendZeekEscaped(s, inList: inList) }
    }

    private func appendZeekEscaped(_ s: String, inList: Bool) {
        if s.isEmpty {
            appendLiteral("(empty)")
            return
        }
        let hex = Array("0123456789abcdef".utf8)
        // A value that reads as the unset or empty marker is escaped at its first byte.
        let marker = s == "-" || s == "(empty)"
        func escape(_ byte: UInt8) {
            append(UInt8(ascii: "\\"))
            append(UInt8(ascii: "x"))
            append(hex[Int(byte >> 4)])
            append(hex[Int(byte & 0xf)])
        }
        if s.utf8.allSatisfy({ $0 < 0x80 }) {
            for (index, byte) in s.utf8.enumerated() {
                if byte < 0x20 || byte == 0x7f || byte == UInt8(ascii: "\\") || (inList && byte == UInt8(ascii: ","))
                    || (marker && index == 0)
                {
                    escape(byte)
                } else {
                    append(byte)
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
                    append(byte)
                }
            } else if DisplayText.needsEscape(scalar) {
                utf8.forEach(escape)
            } else {
                for byte in utf8 { append(byte) }
            }
        }
    }
}
