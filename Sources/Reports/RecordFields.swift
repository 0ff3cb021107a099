import Handshakes
import Packets
import TLSWire

/// A value in a rendered record: the one description every output format works from.
public indirect enum FieldValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    /// Nanoseconds since the epoch, rendered as seconds with microseconds.
    case timestamp(Int64)
    /// Whole seconds since the epoch, rendered like `timestamp` (certificate validity).
    case wholeSeconds(Int64)
    case seconds(Double)
    case string(String)
    case strings([String])
    case ints([Int64])
    case object([Field])
    case objects([[Field]])
}

public struct Field: Equatable, Sendable {
    public var key: String
    public var value: FieldValue
    public init(_ key: String, _ value: FieldValue) {
        self.key = key
        self.value = value
    }
}

extension FieldValue {
    static func optional(_ value: String?) -> FieldValue { value.map(FieldValue.string) ?? .null }
    static func optional(_ value: Bool?) -> FieldValue { value.map(FieldValue.bool) ?? .null }
    static func optional<I: BinaryInteger>(_ value: I?) -> FieldValue { value.map { .int(Int64($0)) } ?? .null }
}

extension HandshakeRecord {
    /// The record's fields in output order, as values: what the CSV and Zeek formats flatten.
    public var fields: [Field] {
        var collector = FieldCollector(template: false)
        var record = self
        record.visitFields(&collector)
        return collector.fields
    }

    /// Writes the record as one JSON object, straight from the schema into the writer's bytes.
    public func writeJSON(into json: inout JSONWriter) {
        var record = self
        json.beginObject()
        json.writingEntries { bytes in
            var writer = JSONRecordWriter(into: bytes)
            record.visitFields(&writer)
        }
        json.endObject()
    }
}

extension FieldValue {
    /// The value of one scalar of the schema.
    init(_ scalar: ScalarValue, _ kind: FieldKind) {
        switch (scalar, kind) {
        case let (.integer(nanos), .time): self = .timestamp(nanos)
        case let (.integer(seconds), .wholeSeconds): self = .wholeSeconds(seconds)
        case let (.integer(value), _): self = .int(value)
        case let (.number(seconds), _): self = .seconds(seconds)
        case let (.text(text), _): self = .string(text)
        case let (.flag(flag), _): self = .bool(flag)
        }
    }
}

/// Collects the schema's fields as values. As a template (`template` true), absent values
/// and objects are filled with placeholders and lists of objects hold one, so every column
/// shows whatever the record holds.
struct FieldCollector: RecordFieldVisitor {
    static var onlyReads: Bool { true }
    let template: Bool
    private(set) var fields: [Field] = []

    init(template: Bool) {
        self.template = template
        fields.reserveCapacity(64)
    }

    mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        fields.append(Field(key.description, FieldValue(value.scalar(kind), kind)))
    }

    mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        let shown = template ? value ?? T.placeholder : value
        fields.append(Field(key.description, shown.map { FieldValue($0.scalar(kind), kind) } ?? .null))
    }

    mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        let scalars = values.map { $0.scalar(kind) }
        let value: FieldValue
        if case .integer = T.placeholder.scalar(kind) {
            value = .ints(scalars.map { if case let .integer(i) = $0 { i } else { 0 } })
        } else {
            value = .strings(scalars.map { if case let .text(t) = $0 { t } else { "" } })
        }
        fields.append(Field(key.description, value))
    }

    mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {
        guard var present = value ?? (template ? T.placeholder : nil) else {
            fields.append(Field(key.description, .null))
            return
        }
        var inner = FieldCollector(template: template)
        present.visitFields(&inner)
        fields.append(Field(key.description, .object(inner.fields)))
    }

    mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
        let members = template && values.isEmpty ? [T.placeholder] : values
        fields.append(
            Field(
                key.description,
                .objects(
                    members.map { member in
                        var member = member
                        var inner = FieldCollector(template: template)
                        member.visitFields(&inner)
                        return inner.fields
                    }
                )
            )
        )
    }
}

/// Writes the schema's fields into an open JSON object as it walks them, straight into the
/// bytes with no values between (issue 20: a writer call per key and value, each checking
/// the buffer's ownership and the comma state of every open container, cost twice this).
/// Lives only for one `writeJSON` call, which lends it the bytes.
struct JSONRecordWriter: RecordFieldVisitor {
    static var onlyReads: Bool { true }
    private let out: OutputBytes
    /// The open object or array already holds an entry, so the next one takes a comma.
    private var comma = false

    init(into out: OutputBytes) { self.out = out }

    @inline(__always)
    private mutating func key(_ key: StaticString) {
        out.appendKey(key, comma: comma)
        comma = true
    }

    @inline(__always)
    private func put<T: RecordScalar>(_ value: T, _ kind: FieldKind) { out.appendScalar(value, kind, .json) }

    mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        self.key(key)
        put(value, kind)
    }

    mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        self.key(key)
        if let value { put(value, kind) } else { out.appendNull() }
    }

    mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        self.key(key)
        out.append(UInt8(ascii: "["))
        for index in values.indices {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            put(values[index], kind)
        }
        out.append(UInt8(ascii: "]"))
    }

    mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {
        self.key(key)
        guard var present = value else { return out.appendNull() }
        writeObject(&present)
    }

    mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
        self.key(key)
        out.append(UInt8(ascii: "["))
        for index in values.indices {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            var member = values[index]
            writeObject(&member)
        }
        out.append(UInt8(ascii: "]"))
    }

    private mutating func writeObject<T: RecordObject>(_ value: inout T) {
        out.append(UInt8(ascii: "{"))
        comma = false
        value.visitFields(&self)
        out.append(UInt8(ascii: "}"))
        comma = true
    }
}

/// How a scalar is spelled: a JSON value, a CSV field, a Zeek field or list member.
enum ScalarStyle {
    case json
    case csv
    case zeek(inList: Bool)
}

extension OutputBytes {
    /// One scalar of the schema in `style`.
    @inline(__always)
    func appendScalar<T: RecordScalar>(_ value: T, _ kind: FieldKind, _ style: ScalarStyle) {
        // The client random's hex and the addresses straight from their bytes, with no String
        // between (the casts resolve when the walk is specialised for each field's type):
        // plain text in every style, quoted in JSON.
        let quoted: Bool
        if case .json = style { quoted = true } else { quoted = false }
        if let bytes = value as? ShortBytes, !bytes.isEmpty {
            return bytes.withBytes { quoted ? appendQuotedHex($0) : appendHex($0) }
        }
        if let address = value as? IPAddress {
            return address.withText { quoted ? appendQuotedPlain($0) : append($0) }
        }
        // Flags, counts and names of fixed sets, with no `ScalarValue` between.
        if let flag = value as? Bool {
            if case .zeek = style { return append(UInt8(ascii: flag ? "T" : "F")) }
            return appendBool(flag)
        }
        if let count = value as? UInt8 { return appendDecimal(UInt64(count)) }
        if let count = value as? UInt16 { return appendDecimal(UInt64(count)) }
        if let count = value as? UInt32 { return appendDecimal(UInt64(count)) }
        if var name = value.plainName(kind) {
            return name.withUTF8 { quoted ? appendQuotedPlain($0) : append($0) }
        }
        switch (value.scalar(kind), kind) {
        case let (.integer(nanos), .time): appendEpochSeconds(nanos)
        case let (.integer(seconds), .wholeSeconds): appendEpochSeconds(whole: seconds)
        case let (.integer(integer), _): appendInteger(integer)
        case let (.number(seconds), _): appendFixed(seconds, decimals: 3)
        case let (.flag(flag), _):
            if case .zeek = style { append(UInt8(ascii: flag ? "T" : "F")) } else { appendBool(flag) }
        case let (.text(text), _):
            switch style {
            case .json: appendQuoted(text)
            case .csv: appendCSVString(text, quoteFormulas: true)
            case let .zeek(inList): appendZeekString(text, inList: inList)
            }
        }
    }
}

extension JSONWriter {
    public mutating func value(_ value: FieldValue) {
        switch value {
        case .null: null()
        case let .bool(b): bool(b)
        case let .int(i): int(i)
        case let .timestamp(nanos): epochSeconds(nanos)
        case let .wholeSeconds(seconds): raw(Reports.epochSeconds(whole: seconds))
        case let .seconds(s): double(s, decimals: 3)
        case let .string(s): string(s)
        case let .strings(list):
            beginArray()
            for s in list { string(s) }
            endArray()
        case let .ints(list):
            beginArray()
            for i in list { int(i) }
            endArray()
        case let .object(fields): object(fields)
        case let .objects(list):
            beginArray()
            for fields in list { object(fields) }
            endArray()
        }
    }

    public mutating func object(_ fields: [Field]) {
        beginObject()
        for field in fields {
            key(field.key)
            value(field.value)
        }
        endObject()
    }
}

/// Epoch seconds with microseconds, e.g. "1732857976.123456", or "-1.500000" for half a
/// second before 1970-01-01 (pcapng allows such times). The inverse of `JSONValue.epochNanos`.
public func epochSeconds(_ nanos: Int64) -> String {
    let micros = nanos.magnitude / 1000
    let fraction = String(micros % 1_000_000)
    let sign = nanos < 0 && micros > 0 ? "-" : ""
    return sign + String(micros / 1_000_000) + "." + String(repeating: "0", count: 6 - fraction.count) + fraction
}

/// Whole epoch seconds in the form of `epochSeconds(_:)` ("253402300799.000000"): certificate
/// validity, which reaches years that nanoseconds cannot.
public func epochSeconds(whole seconds: Int64) -> String { "\(seconds).000000" }

/// "2026-11-29 05:26:16.123456" in UTC (civil-from-days, proleptic Gregorian). Times before
/// 1970 count back correctly ("1969-12-31 23:59:59.500000").
public func utcTimestamp(_ nanos: Int64, fractionDigits: Int = 6) -> String {
    var (totalSeconds, fractionNanos) = nanos.quotientAndRemainder(dividingBy: 1_000_000_000)
    if fractionNanos < 0 {
        totalSeconds -= 1
        fractionNanos += 1_000_000_000
    }
    var text = utcDate(seconds: totalSeconds)
    if fractionDigits > 0 {
        let fraction = String(fractionNanos / 1000)
        text += "." + String((String(repeating: "0", count: 6 - fraction.count) + fraction).prefix(fractionDigits))
    }
    return text
}

/// "9999-12-31 23:59:59" for seconds since the epoch, any year from 0000 to 9999.
public func utcDate(seconds totalSeconds: Int64) -> String {
    var (days, secondOfDay) = totalSeconds.quotientAndRemainder(dividingBy: 86_400)
    if secondOfDay < 0 {
        days -= 1
        secondOfDay += 86_400
    }
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
    let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let yearText =
        year < 1000 ? String(repeating: "0", count: year < 10 ? 3 : year < 100 ? 2 : 1) + "\(year)" : "\(year)"
    return
        "\(yearText)-\(two(month))-\(two(day)) "
        + "\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))"
}
