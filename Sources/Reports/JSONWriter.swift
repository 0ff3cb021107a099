/// The bytes a `JSONWriter` has written: a buffer of its own, so appending a byte or a run
/// of bytes is a store or a copy (Array's append took its generic path for byte runs).
final class JSONBytes {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Shared by writers made without capacity; never written to, since it is never the only
    /// reference (`JSONWriter.buffer` copies it first).
    nonisolated(unsafe) static let empty = JSONBytes(capacity: 0)

    func copy() -> JSONBytes {
        let copy = JSONBytes(capacity: capacity)
        copy.append(UnsafeBufferPointer(start: base, count: count))
        return copy
    }

    @inline(__always)
    func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    private func grow(to needed: Int) {
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: max(capacity * 2, needed))
        grown.update(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = max(capacity * 2, needed)
    }

    @inline(__always)
    func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    /// `count` bytes of `fill`, returned for writing in place (digits written from the end).
    @inline(__always)
    func extend(by extra: Int, fill: UInt8) -> UnsafeMutableBufferPointer<UInt8> {
        reserve(extra)
        let added = UnsafeMutableBufferPointer(start: base + count, count: extra)
        added.initialize(repeating: fill)
        count += extra
        return added
    }

    /// `"key":`, after a comma when `comma`, in one reservation.
    @inline(__always)
    func appendQuotedKey(_ key: UnsafeBufferPointer<UInt8>, comma: Bool) {
        let start = comma ? 1 : 0
        reserve(start + key.count + 3)
        let out = base + count
        out[0] = UInt8(ascii: ",")  // overwritten below when there is no comma
        out[start] = UInt8(ascii: "\"")
        if let source = key.baseAddress { (out + start + 1).update(from: source, count: key.count) }
        out[start + 1 + key.count] = UInt8(ascii: "\"")
        out[start + 2 + key.count] = UInt8(ascii: ":")
        count += start + key.count + 3
    }

    /// `text`, after a comma when `comma`, in one reservation.
    @inline(__always)
    func append(_ text: UnsafeBufferPointer<UInt8>, comma: Bool) {
        let start = comma ? 1 : 0
        reserve(start + text.count)
        let out = base + count
        out[0] = UInt8(ascii: ",")
        if let source = text.baseAddress { (out + start).update(from: source, count: text.count) }
        count += start + text.count
    }

    func removeAll() { count = 0 }
}

/// Writes JSON into a byte buffer without Foundation: keys in the order given, numbers
/// as written, strings escaped per RFC 8259 7. A value type: a copy writes on its own bytes.
public struct JSONWriter {
    private var storage: JSONBytes
    /// Per open container, whether it already holds an entry (so the next needs a comma): a
    /// bit per level for the first 64 levels, an array beyond.
    private var entryBits: UInt64 = 0
    private var deeperEntries: [Bool] = []
    private var depth = 0
    /// A key was just written, so the value that follows takes no comma.
    private var afterKey = false

    /// With no capacity the writer shares an empty buffer until it first writes (a writer
    /// that is only swapped with another allocates nothing).
    public init(reservingCapacity capacity: Int = 1024) {
        storage = capacity == 0 ? JSONBytes.empty : JSONBytes(capacity: capacity)
    }

    /// The bytes written so far (a copy).
    public var bytes: [UInt8] { withBytes { Array($0) } }

    /// The bytes written so far, lent for the call.
    public func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
    }

    /// Makes the buffer this writer's alone before it is written to (copy on write).
    @inline(__always)
    private mutating func unique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// Hands over the bytes written so far and clears them, keeping the open containers,
    /// so a large document can be written out in pieces.
    public mutating func takeBytes() -> [UInt8] {
        defer {
            unique()
            storage.removeAll()
        }
        return bytes
    }

    public mutating func reset() {
        unique()
        storage.removeAll()
        entryBits = 0
        deeperEntries.removeAll(keepingCapacity: true)
        depth = 0
        afterKey = false
    }

    /// The comma before an entry, unless it follows its key or opens its container.
    @inline(__always)
    private mutating func prepareEntry() {
        if needsComma() { storage.append(UInt8(ascii: ",")) }
    }

    /// Whether the next entry takes a comma (it neither follows its key nor opens its
    /// container), marking its container as holding one.
    @inline(__always)
    private mutating func needsComma() -> Bool {
        if afterKey {
            afterKey = false
            return false
        }
        guard depth > 0 else { return false }
        if depth <= 64 {
            let bit: UInt64 = 1 << (depth - 1)
            defer { entryBits |= bit }
            return entryBits & bit != 0
        }
        defer { deeperEntries[depth - 65] = true }
        return deeperEntries[depth - 65]
    }

    public mutating func beginObject() { open(UInt8(ascii: "{")) }
    public mutating func endObject() { close(UInt8(ascii: "}")) }
    public mutating func beginArray() { open(UInt8(ascii: "[")) }
    public mutating func endArray() { close(UInt8(ascii: "]")) }

    private mutating func open(_ bracket: UInt8) {
        unique()
        prepareEntry()
        storage.append(bracket)
        depth += 1
        if depth <= 64 { entryBits &= ~(1 << (depth - 1)) } else { deeperEntries.append(false) }
    }

    private mutating func close(_ bracket: UInt8) {
        if depth > 64 { deeperEntries.removeLast() }
        depth -= 1
        unique()
        storage.append(bracket)
    }

    /// A key inside an object; the next call writes its value.
    public mutating func key(_ key: String) {
        unique()
        prepareEntry()
        Self.appendQuoted(key, to: storage)
        storage.append(UInt8(ascii: ":"))
        afterKey = true
    }

    /// A key of the record schema: plain ASCII identifiers, written as they are.
    public mutating func key(_ key: StaticString) {
        unique()
        storage.appendQuotedKey(
            UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount),
            comma: needsComma()
        )
        afterKey = true
    }

    /// `"key":null` in one call: a record has a score of absent fields.
    public mutating func keyNull(_ key: StaticString) {
        unique()
        storage.appendQuotedKey(
            UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount),
            comma: needsComma()
        )
        let null: StaticString = "null"
        storage.append(UnsafeBufferPointer(start: null.utf8Start, count: null.utf8CodeUnitCount))
    }

    public mutating func string(_ value: String) {
        unique()
        prepareEntry()
        Self.appendQuoted(value, to: storage)
    }

    public mutating func raw(_ text: String) {
        unique()
        prepareEntry()
        var text = text
        text.withUTF8 { storage.append($0) }
    }

    public mutating func int<I: BinaryInteger>(_ value: I) {
        guard let value = Int64(exactly: value) else { return raw(String(value)) }
        unique()
        prepareEntry()
        if value < 0 { storage.append(UInt8(ascii: "-")) }
        Self.appendDecimal(value.magnitude, to: storage)
    }

    public mutating func bool(_ value: Bool) { literal(value ? "true" : "false") }
    public mutating func null() { literal("null") }

    private mutating func literal(_ text: StaticString) {
        unique()
        storage.append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount), comma: needsComma())
    }

    /// Epoch seconds with six decimals, `epochSeconds(_:)`'s form, written in place.
    public mutating func epochSeconds(_ nanos: Int64) {
        unique()
        prepareEntry()
        let micros = nanos.magnitude / 1000
        if nanos < 0 && micros > 0 { storage.append(UInt8(ascii: "-")) }
        Self.appendDecimal(micros / 1_000_000, to: storage)
        storage.append(UInt8(ascii: "."))
        Self.appendDecimal(micros % 1_000_000, width: 6, to: storage)
    }

    public mutating func double(_ value: Double, decimals: Int = 6) { raw(formatFixed(value, decimals: decimals)) }

    /// The decimal digits of `value`, at least `width` of them (zeros in front), written in
    /// place, two at a time.
    private static func appendDecimal(_ value: UInt64, width: Int = 1, to out: JSONBytes) {
        var digits = 1
        var threshold: UInt64 = 10
        while digits < 20, value >= threshold {
            digits += 1
            threshold = threshold &* 10
        }
        let field = out.extend(by: max(digits, width), fill: UInt8(ascii: "0"))
        var rest = value
        var index = field.count - 1
        while rest >= 100 {
            let pair = UInt8(truncatingIfNeeded: rest % 100)
            rest /= 100
            field[index] = UInt8(ascii: "0") + pair % 10
            field[index - 1] = UInt8(ascii: "0") + pair / 10
            index -= 2
        }
        if rest >= 10 {
            field[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            field[index - 1] = UInt8(ascii: "0") + UInt8(rest / 10)
        } else {
            field[index] = UInt8(ascii: "0") + UInt8(rest)
        }
    }

    private static let hexDigits: StaticString = "0123456789abcdef"

    /// `\uXXXX` for one UTF-16 unit.
    private static func appendUnit(_ value: UInt32, to out: JSONBytes) {
        out.append(0x5c)
        out.append(UInt8(ascii: "u"))
        for shift: UInt32 in [12, 8, 4, 0] {
            out.append(hexDigits.utf8Start[Int(value >> shift & 0xf)])
        }
    }

    /// The two-byte escape of a quote, a backslash, newline, return and tab, or nil.
    private static func shortEscape(_ value: UInt32) -> UInt8? {
        switch value {
        case 0x22: UInt8(ascii: "\"")
        case 0x5c: UInt8(ascii: "\\")
        case 0x0a: UInt8(ascii: "n")
        case 0x0d: UInt8(ascii: "r")
        case 0x09: UInt8(ascii: "t")
        default: nil
        }
    }

    private static func appendQuoted(_ text: String, to out: JSONBytes) {
        out.append(UInt8(ascii: "\""))
        // Most values (hex, names, versions) need no escape: one scan, one copy.
        let plain = text.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            guard !needsEscape(utf8) else { return false }
            out.append(utf8)
            return true
        }
        if plain != true {
            if text.utf8.allSatisfy({ $0 < 0x80 }) {
                for byte in text.utf8 {
                    if let escape = Self.shortEscape(UInt32(byte)) {
                        out.append(0x5c)
                        out.append(escape)
                    } else if byte < 0x20 || byte == 0x7f {
                        Self.appendUnit(UInt32(byte), to: out)
                    } else {
                        out.append(byte)
                    }
                }
            } else {
                Self.appendQuotedScalars(text, to: out)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Whether a byte of `utf8` is a control, DEL, non-ASCII, a quote or a backslash: eight
    /// bytes at a time (a word has a byte below n when (w - n*0x01..) & ~w & 0x80.. is not
    /// zero, and a byte equal to c when w ^ c*0x01.. has a zero byte), then the tail.
    @inline(__always)
    private static func needsEscape(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func hasZeroByte(_ word: UInt64) -> Bool { (word &- ones) & ~word & highs != 0 }
        var index = 0
        if let base = UnsafeRawPointer(utf8.baseAddress) {
            while index + 8 <= utf8.count {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                let belowSpace = (word &- ones &* 0x20) & ~word & highs != 0
                if word & highs != 0 || belowSpace || hasZeroByte(word ^ (ones &* 0x7f))
                    || hasZeroByte(word ^ (ones &* 0x22)) || hasZeroByte(word ^ (ones &* 0x5c))
                {
                    return true
                }
                index += 8
            }
        }
        while index < utf8.count {
            let byte = utf8[index]
            if byte < 0x20 || byte >= 0x7f || byte == 0x22 || byte == 0x5c { return true }
            index += 1
        }
        return false
    }

    /// Text with non-ASCII characters: a character that `DisplayText` would not show raw
    /// (C1 controls, bidi overrides, ...) is written as \uXXXX (a surrogate pair past the
    /// BMP, RFC 8259 7), so the value is the same and `cat` of the output cannot act on a
    /// terminal.
    private static func appendQuotedScalars(_ text: String, to out: JSONBytes) {
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if let escape = shortEscape(value) {
                out.append(0x5c)
                out.append(escape)
            } else if !DisplayText.needsEscape(scalar) {
                for byte in UTF8.encode(scalar)! { out.append(byte) }
            } else if value < 0x10000 {
                appendUnit(value, to: out)
            } else {
                let offset = value - 0x10000
                appendUnit(0xd800 + offset >> 10, to: out)
                appendUnit(0xdc00 + offset & 0x3ff, to: out)
            }
        }
    }
}

/// `value` with exactly `decimals` digits after the point, without Foundation.
public func formatFixed(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "null" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let negative = value < 0
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9e18 else { return String(value) }
    let whole = UInt64(scaled)
    let integer = whole / UInt64(scale)
    let fraction = whole % UInt64(scale)
    var text = (negative ? "-" : "") + String(integer)
    if decimals > 0 {
        let digits = String(fraction)
        text += "." + String(repeating: "0", count: decimals - digits.count) + digits
    }
    return text
}
