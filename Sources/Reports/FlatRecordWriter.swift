import Handshakes
import Packets

/// The flat formats written from the schema.
enum FlatFormat {
    case csv
    case zeek
}

/// Writes one record's cells for the CSV or Zeek format straight into a row as it walks the
/// schema: the cells of `FlatRecord.cells`, in column order (a nested object's members in
/// place, a column per member of a list of objects), with no cell value or String between
/// (issue 20: the row built from values cost four times the whole report). Lives only for
/// one row.
struct FlatRecordWriter: RecordFieldVisitor {
    static var onlyReads: Bool { true }
    private let out: OutputBytes
    private let format: FlatFormat
    /// A CSV cell holding a list is a JSON array, written here before it is quoted.
    private let scratch: OutputBytes
    private var firstCell = true
    /// Inside an absent object: every member's cell is unset.
    private var absent = false

    init(_ format: FlatFormat, into out: OutputBytes, scratch: OutputBytes) {
        self.format = format
        self.out = out
        self.scratch = scratch
    }

    private mutating func nextCell() {
        if firstCell {
            firstCell = false
        } else {
            out.append(format == .csv ? UInt8(ascii: ",") : 0x09)
        }
    }

    /// Unset: an empty CSV field, Zeek's "-".
    private func unset() {
        if format == .zeek { out.append(UInt8(ascii: "-")) }
    }

    /// An empty list: "[]" in CSV (a JSON array), "(empty)" in Zeek.
    private func emptyList() {
        if format == .csv { out.appendLiteral("[]") } else { out.appendLiteral("(empty)") }
    }

    /// A CSV list cell: the JSON array in `scratch`, quoted as a field.
    private func finishCSVList() {
        scratch.append(UInt8(ascii: "]"))
        scratch.withBytes { out.appendCSVField($0, apostrophe: false) }
    }

    mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        nextCell()
        if absent { return unset() }
        out.appendFlat(value, kind, format, inList: false)
    }

    mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        nextCell()
        guard !absent, let value else { return unset() }
        out.appendFlat(value, kind, format, inList: false)
    }

    mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        nextCell()
        if absent { return unset() }
        if values.isEmpty { return emptyList() }
        switch format {
        case .csv:
            scratch.removeAll()
            scratch.append(UInt8(ascii: "["))
            for index in values.indices {
                if index > 0 { scratch.append(UInt8(ascii: ",")) }
                scratch.appendJSONListMember(values[index], kind)
            }
            finishCSVList()
        case .zeek:
            for index in values.indices {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                switch values[index].scalar(kind) {
                case let .integer(integer): out.appendInteger(integer)
                case let .text(text): out.appendZeekString(text, inList: true)
                case let .flag(flag): out.append(UInt8(ascii: flag ? "T" : "F"))
                case let .number(number): out.appendFixed(number, decimals: 3)
                }
            }
        }
    }

    mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {
        guard !absent, var present = value else {
            // Every member's column, unset.
            let wasAbsent = absent
            absent = true
            var placeholder = T.placeholder
            placeholder.visitFields(&self)
            absent = wasAbsent
            return
        }
        present.visitFields(&self)
    }

    mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
        var counter = MemberCounter()
        var placeholder = T.placeholder
        placeholder.visitFields(&counter)
        for member in 0..<counter.count {
            nextCell()
            if absent {
                unset()
                continue
            }
            if values.isEmpty {
                emptyList()
                continue
            }
            // The member's values across the list, in one cell.
            let target = format == .csv ? scratch : out
            if format == .csv {
                scratch.removeAll()
                scratch.append(UInt8(ascii: "["))
            }
            for index in values.indices {
                if index > 0 { target.append(UInt8(ascii: ",")) }
                var picker = MemberCell(member: member, format: format, out: target)
                var item = values[index]
                item.visitFields(&picker)
            }
            if format == .csv { finishCSVList() }
        }
    }
}

/// Counts an object's members (the columns of a list of such objects).
private struct MemberCounter: RecordFieldVisitor {
    static var onlyReads: Bool { true }
    var count = 0

    mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) { count += 1 }
    mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) { count += 1 }
    mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) { count += 1 }
    mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) { count += 1 }
    mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
        count += 1
    }
}

/// Writes one member of one object of a list, as an element of that member's list cell:
/// a JSON value for CSV, a Zeek list element. Unset members are `null` and "-".
private struct MemberCell: RecordFieldVisitor {
    static var onlyReads: Bool { true }
    let member: Int
    let format: FlatFormat
    let out: OutputBytes
    private var index = 0

    init(member: Int, format: FlatFormat, out: OutputBytes) {
        self.member = member
        self.format = format
        self.out = out
    }

    private func write<T: RecordScalar>(_ value: T?, _ kind: FieldKind) {
        switch (value, format) {
        case let (value?, .csv): out.appendScalar(value, kind, .json)
        case let (value?, .zeek): out.appendFlat(value, kind, .zeek, inList: true)
        case (nil, .csv): out.appendNull()
        case (nil, .zeek): out.append(UInt8(ascii: "-"))
        }
    }

    /// Lists and objects do not occur in the schema's lists of objects; they would be unset.
    private func unset() { write(Int?.none, .count) }

    mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        var present: T? = value
        optional(key, &present, kind, origin)
    }

    mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        if index == member { write(value, kind) }
        index += 1
    }

    mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        if index == member { unset() }
        index += 1
    }

    mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {
        if index == member { unset() }
        index += 1
    }

    mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
        if index == member { unset() }
        index += 1
    }
}

extension OutputBytes {
    /// A scalar cell of the flat formats, or (`inList`) a Zeek list member.
    @inline(__always)
    func appendFlat<T: RecordScalar>(_ value: T, _ kind: FieldKind, _ format: FlatFormat, inList: Bool) {
        appendScalar(value, kind, format == .csv ? .csv : .zeek(inList: inList))
    }

    /// A member of a scalar list as `FieldCollector` lists it, in JSON: integers as numbers,
    /// the rest as their text.
    func appendJSONListMember<T: RecordScalar>(_ value: T, _ kind: FieldKind) {
        switch value.scalar(kind) {
        case let .integer(integer): appendInteger(integer)
        case let .text(text): appendQuoted(text)
        case let .flag(flag): appendBool(flag)
        case let .number(number): appendFixed(number, decimals: 3)
        }
    }
}
