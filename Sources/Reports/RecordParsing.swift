import Handshakes
import Packets
import TLSWire

public struct RecordParseError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension HandshakeRecord {
    /// Rebuilds a record from one line of `handshakes --format jsonl` (or one record line of
    /// `--format json`), walking the record schema. What the analysis stages derive (links,
    /// ages, balancer legs) is left out: the analysis works it out again, as it does from a
    /// capture. Every captured key must be there; an optional one may be null.
    public init(json: JSONValue) throws(RecordParseError) {
        guard case .object = json else { throw RecordParseError(message: "not a JSON object") }
        var reader = JSONRecordReader(json, path: "")
        self = .placeholder
        visitFields(&reader)
        if let failed = reader.failed {
            throw RecordParseError(message: "field \"\(failed)\" missing or of the wrong type")
        }
    }
}

/// Fills a record in from a JSON object; the first key missing or of the wrong type is kept
/// in `failed` and ends the reading.
struct JSONRecordReader: RecordFieldVisitor {
    static var fillsRecord: Bool { true }
    private let object: JSONValue
    /// "server_traits." inside a nested object, for the failure's name.
    private let path: String
    private(set) var failed: String?

    init(_ object: JSONValue, path: String) {
        self.object = object
        self.path = path
    }

    private mutating func fail(_ key: StaticString) { if failed == nil { failed = path + key.description } }

    /// The key's value, or nil when reading stops here or the field is not read back.
    private mutating func member(_ key: StaticString, _ origin: FieldOrigin) -> JSONValue? {
        guard failed == nil, origin == .captured else { return nil }
        guard let value = object[key.description] else {
            fail(key)
            return nil
        }
        return value
    }

    private static func scalar<T: RecordScalar>(_ value: JSONValue, _ kind: FieldKind, as: T.Type) -> T? {
        let read: ScalarValue?
        switch kind {
        case .time: read = value.epochNanos.map(ScalarValue.integer)
        case .wholeSeconds: read = value.epochWholeSeconds.map(ScalarValue.integer)
        case .interval: read = value.double.map(ScalarValue.number)
        case .count, .port: read = value.int.map(ScalarValue.integer)
        case .flag: read = value.bool.map(ScalarValue.flag)
        case .text, .address, .name: read = value.string.map(ScalarValue.text)
        }
        return read.flatMap { T(scalar: $0, kind) }
    }

    mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        guard let member = member(key, origin) else { return }
        guard let read = Self.scalar(member, kind, as: T.self) else { return fail(key) }
        value = read
    }

    mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        guard let member = member(key, origin), !member.isNull else { return }
        guard let read = Self.scalar(member, kind, as: T.self) else { return fail(key) }
        value = read
    }

    mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        guard let member = member(key, origin) else { return }
        guard let elements = member.array else { return fail(key) }
        var read: [T] = []
        read.reserveCapacity(elements.count)
        for element in elements {
            guard let value = Self.scalar(element, kind, as: T.self) else { return fail(key) }
            read.append(value)
        }
        values = read
    }

    private mutating func nested<T: RecordObject>(_ member: JSONValue, _ key: StaticString) -> T? {
        guard case .object = member else {
            fail(key)
            return nil
        }
        var reader = JSONRecordReader(member, path: path + key.description + ".")
        var read = T.placeholder
        read.visitFields(&reader)
        if let failed = reader.failed {
            self.failed = failed
            return nil
        }
        return read
    }

    mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {
        guard let member = member(key, origin), !member.isNull else { return }
        value = nested(member, key)
    }

    mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
        guard let member = member(key, origin) else { return }
        guard let elements = member.array else { return fail(key) }
        var read: [T] = []
        read.reserveCapacity(elements.count)
        for element in elements {
            guard let value: T = nested(element, key) else { return }
            read.append(value)
        }
        values = read
    }
}
