import Foundation
import Packets
import TLSWire

/// Handshake records in a compact binary form, for a worker that runs ahead of the merge:
/// the records of a later rotated file wait in a temporary file instead of in memory, so
/// memory stays flat whatever the files hold. The format is private to one run.
///
/// Both directions walk the record's one field list (`HandshakeRecord.visitFields`): the
/// writer appends each value it is handed, the reader replaces it with what it reads.
/// Values are varints (zigzag for signed), a byte for a flag, a count before text and
/// lists, a presence byte before optional values; names (versions) go as their numbers.
package struct RecordSpillWriter: RecordFieldVisitor {
    package static var onlyReads: Bool { true }
    package private(set) var bytes: [UInt8] = []

    package init() {}

    private mutating func append(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private mutating func put(_ scalar: ScalarValue) {
        switch scalar {
        case let .text(text):
            var text = text
            text.withUTF8 { utf8 in
                append(UInt64(utf8.count))
                bytes.append(contentsOf: utf8)
            }
        // Zigzag, so small negative numbers stay short.
        case let .integer(value): append(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
        case let .flag(flag): bytes.append(flag ? 1 : 0)
        case let .number(number): append(number.bitPattern)
        }
    }

    /// A value's spilled form: its bytes when it has such a form, else its scalar. The types
    /// are compared, not cast to `any SpillsAsBytes`: the comparison folds away where `T` is
    /// known, the cast boxed every field of every record (it doubled the writer's cost).
    @inline(__always)
    private mutating func put<T: RecordScalar>(_ value: T, _ kind: FieldKind) {
        if T.self == ShortBytes.self { return putBytes(unsafeBitCast(value, to: ShortBytes.self)) }
        if T.self == IPAddress.self { return putBytes(unsafeBitCast(value, to: IPAddress.self)) }
        put(value.scalar(kind.spilled))
    }

    private mutating func putBytes(_ value: some SpillsAsBytes) {
        value.withSpilledBytes { spilled in
            append(UInt64(spilled.count))
            bytes.append(contentsOf: spilled)
        }
    }

    package mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        guard origin != .shown else { return }
        put(value, kind)
    }

    package mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        guard origin != .shown else { return }
        bytes.append(value == nil ? 0 : 1)
        if let value { put(value, kind) }
    }

    package mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        guard origin != .shown else { return }
        append(UInt64(values.count))
        for value in values { put(value, kind) }
    }

    package mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {
        guard origin != .shown else { return }
        bytes.append(value == nil ? 0 : 1)
        if var present = value { present.visitFields(&self) }
    }

    package mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
        guard origin != .shown else { return }
        append(UInt64(values.count))
        for var value in values { value.visitFields(&self) }
    }

    package mutating func reset() { bytes.removeAll(keepingCapacity: true) }
}

/// A value that spills as its bytes (a count, then the bytes) rather than as its text: read
/// back, the hex of session IDs and ticket digests and the text of addresses were parsed
/// again, most of the cost of reading a spilled record.
package protocol SpillsAsBytes {
    /// The bytes, handed to `body`.
    func withSpilledBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result
    /// Nil when `bytes` are not a value's.
    init?(spilledBytes bytes: UnsafeRawBufferPointer)
}

extension ShortBytes: SpillsAsBytes {
    package func withSpilledBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result { withBytes(body) }
    package init?(spilledBytes bytes: UnsafeRawBufferPointer) {
        guard bytes.count <= ShortBytes.capacity else { return nil }
        self.init(bytes)
    }
}

extension IPAddress: SpillsAsBytes {
    /// The family, then the 128 bits (high word first, each little-endian).
    package func withSpilledBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        withUnsafeTemporaryAllocation(byteCount: 17, alignment: 8) { buffer in
            buffer.storeBytes(of: isIPv6 ? 6 : 4, toByteOffset: 0, as: UInt8.self)
            buffer.storeBytes(of: high.littleEndian, toByteOffset: 1, as: UInt64.self)
            buffer.storeBytes(of: low.littleEndian, toByteOffset: 9, as: UInt64.self)
            return body(UnsafeRawBufferPointer(buffer))
        }
    }
    package init?(spilledBytes bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 17, bytes[0] == 4 || bytes[0] == 6 else { return nil }
        self.init(
            high: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 1, as: UInt64.self)),
            low: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 9, as: UInt64.self)),
            isIPv6: bytes[0] == 6
        )
    }
}

extension FieldKind {
    /// Names spill as their numbers: exact, and short.
    fileprivate var spilled: FieldKind { self == .name ? .count : self }
}

/// Reads what `RecordSpillWriter` wrote. A read that finds the bytes short or out of range
/// leaves its value and marks the reader `damaged`, so a damaged file ends the reading
/// instead of the process.
package struct RecordSpillReader: RecordFieldVisitor {
    package static var fillsRecord: Bool { true }
    private let bytes: [UInt8]
    private var index = 0
    package private(set) var damaged = false
    /// Summaries read so far, carried from frame to frame by the caller.
    package private(set) var certificates: SpilledCertificates

    package init(_ bytes: [UInt8], certificates: SpilledCertificates = SpilledCertificates()) {
        self.bytes = bytes
        self.certificates = certificates
    }

    package var isAtEnd: Bool { index == bytes.count }

    /// Nil, and damaged, when the varint is cut off or longer than 64 bits.
    private mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while !damaged, index < bytes.count, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        damaged = true
        return nil
    }

    /// A count of items that each take at least one byte: no more than the bytes left.
    private mutating func count() -> Int? {
        guard let count = varint(), count <= UInt64(bytes.count - index) else {
            damaged = true
            return nil
        }
        return Int(count)
    }

    private mutating func flag() -> Bool? {
        guard !damaged, index < bytes.count, bytes[index] <= 1 else {
            damaged = true
            return nil
        }
        index += 1
        return bytes[index - 1] == 1
    }

    /// A value `SpillsAsBytes` wrote; nil, and damaged, when its bytes do not read.
    private mutating func takeBytes<T: SpillsAsBytes>(_ type: T.Type) -> T? {
        guard let count = count() else { return nil }
        let value = bytes.withUnsafeBytes {
            T(spilledBytes: UnsafeRawBufferPointer(rebasing: $0[index..<(index + count)]))
        }
        index += count
        if value == nil { damaged = true }
        return value
    }

    /// A scalar of the form `T`'s values take for `kind`; nil, and damaged, when it does not fit.
    private mutating func take<T: RecordScalar>(_ type: T.Type, _ kind: FieldKind) -> T? {
        // As `RecordSpillWriter.put` chose.
        if T.self == ShortBytes.self { return takeBytes(ShortBytes.self).map { unsafeBitCast($0, to: T.self) } }
        if T.self == IPAddress.self { return takeBytes(IPAddress.self).map { unsafeBitCast($0, to: T.self) } }
        let read: ScalarValue?
        switch T.placeholder.scalar(kind.spilled) {
        case .text:
            if let count = count() {
                read = .text(String(decoding: bytes[index..<(index + count)], as: UTF8.self))
                index += count
            } else {
                read = nil
            }
        case .integer: read = varint().map { .integer(Int64(bitPattern: ($0 >> 1) ^ (0 &- ($0 & 1)))) }
        case .flag: read = flag().map(ScalarValue.flag)
        case .number: read = varint().map { .number(Double(bitPattern: $0)) }
        }
        guard let read, let value = T(scalar: read, kind.spilled) else {
            damaged = true
            return nil
        }
        return value
    }

    package mutating func scalar<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        guard origin != .shown, !damaged, let read = take(T.self, kind) else { return }
        value = read
    }

    package mutating func optional<T: RecordScalar>(
        _ key: StaticString,
        _ value: inout T?,
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        guard origin != .shown, !damaged else { return }
        value = flag() == true ? take(T.self, kind) : nil
    }

    package mutating func list<T: RecordScalar>(
        _ key: StaticString,
        _ values: inout [T],
        _ kind: FieldKind,
        _ origin: FieldOrigin
    ) {
        guard origin != .shown, !damaged, let count = count() else { return }
        var read: [T] = []
        read.reserveCapacity(count)
        for _ in 0..<count {
            guard let value = take(T.self, kind) else { return }
            read.append(value)
        }
        values = read
    }

    package mutating func object<T: RecordObject>(_ key: StaticString, _ value: inout T?, _ origin: FieldOrigin) {
        guard origin != .shown, !damaged else { return }
        guard flag() == true, !damaged else {
            value = nil
            return
        }
        var read = T.placeholder
        read.visitFields(&self)
        value = read
    }

    package mutating func objects<T: RecordObject>(_ key: StaticString, _ values: inout [T], _ origin: FieldOrigin) {
        guard origin != .shown, !damaged, let count = count() else { return }
        var read: [T] = []
        read.reserveCapacity(count)
        for _ in 0..<count where !damaged {
            var value = T.placeholder
            value.visitFields(&self)
            read.append(value)
        }
        values = read
    }

    package mutating func certificate(_ fields: CertificateFields?, leaf: String?) -> CertificateSummary? {
        fields.map { certificates.shared($0.summary, leaf: leaf) }
    }
}

extension HandshakeRecord {
    /// Appends the whole record; `init(spilled:)` reads it back equal.
    package func spill(into writer: inout RecordSpillWriter) {
        var record = self
        record.visitFields(&writer)
    }

    /// Reads one record that `spill(into:)` wrote; nil when the bytes are damaged.
    package init?(spilled reader: inout RecordSpillReader) {
        self = .placeholder
        visitFields(&reader)
        if reader.damaged { return nil }
    }
}

/// Certificate summaries read back from a spill, one instance per leaf certificate again, as
/// the extractor shares them. Bounded: a capture of many certificates only costs sharing.
package struct SpilledCertificates {
    /// Distinct leaf certificates remembered before the table starts afresh.
    static let maximumRemembered = 1024
    private var byLeaf: [String: CertificateSummary] = [:]

    package init() {}

    package mutating func shared(_ summary: CertificateSummary, leaf: String?) -> CertificateSummary {
        guard let leaf else { return summary }
        if let known = byLeaf[leaf], known == summary { return known }
        if byLeaf.count >= SpilledCertificates.maximumRemembered { byLeaf.removeAll(keepingCapacity: true) }
        byLeaf[leaf] = summary
        return summary
    }
}
