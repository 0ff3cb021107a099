/// A byte buffer the output formats write into (a `JSONWriter`'s bytes, a CSV or Zeek row):
/// appending a byte or a run of bytes is a store or a copy (Array's append took its generic
/// path for byte runs), and numbers, hex and JSON strings are written in place.
final class OutputBytes {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int
    /// The tables below, held here so that writing a number reads a field (a static is
    /// checked for its first use at every read).
    private let digitPairs = OutputBytes.digitPairTable
    private let powersOfTen = OutputBytes.powerOfTenTable

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Shared by writers made without capacity; never written to, since it is never the only
    /// reference (`JSONWriter.buffer` copies it first).
    nonisolated(unsafe) static let empty = OutputBytes(capacity: 0)

    func copy() -> OutputBytes {
        let copy = OutputBytes(capacity: capacity)
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

    /// Copies `count` bytes: up to 32 (keys, names, addresses) as two overlapping moves of
    /// 4, 8 or 16 bytes, with no call to memmove (a record has a hundred keys).
    @inline(__always)
    static func copy(_ source: UnsafePointer<UInt8>, to target: UnsafeMutablePointer<UInt8>, count: Int) {
        let from = UnsafeRawPointer(source)
        let to = UnsafeMutableRawPointer(target)
        @inline(__always) func pair<Word>(_: Word.Type) {
            let first = from.loadUnaligned(as: Word.self)
            let last = from.loadUnaligned(fromByteOffset: count - MemoryLayout<Word>.size, as: Word.self)
            to.storeBytes(of: first, as: Word.self)
            to.storeBytes(of: last, toByteOffset: count - MemoryLayout<Word>.size, as: Word.self)
        }
        switch count {
        case 16...32: pair(SIMD16<UInt8>.self)
        case 8..<16: pair(UInt64.self)
        case 4..<8: pair(UInt32.self)
        case 0..<4: for index in 0..<count { target[index] = source[index] }
        default: target.update(from: source, count: count)
        }
    }

    /// `"key":`, after a comma when `comma`, in one reservation.
    @inline(__always)
    func appendQuotedKey(_ key: UnsafeBufferPointer<UInt8>, comma: Bool) {
        let start = comma ? 1 : 0
        reserve(start + key.count + 3)
        let out = base + count
        out[0] = UInt8(ascii: ",")  // overwritten below when there is no comma
        out[start] = UInt8(ascii: "\"")
        if let source = key.baseAddress { OutputBytes.copy(source, to: out + start + 1, count: key.count) }
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

    /// The bytes written, lent for the call.
    func withBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    /// `"key":`, after a comma when `comma`: a key of the record schema (plain ASCII).
    @inline(__always)
    func appendKey(_ key: StaticString, comma: Bool) {
        appendQuotedKey(UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount), comma: comma)
    }

    /// ASCII text known to need no escape (".000000").
    @inline(__always)
    func appendLiteral(_ text: StaticString) {
        append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// `null`, `true` or `false`: one store of four bytes (and one more for `false`), no copy
    /// from a literal (a record holds a score of them).
    @inline(__always)
    func appendNull() { appendFour(0x6c6c_756e, extra: nil) }  // "null", little-endian

    @inline(__always)
    func appendBool(_ flag: Bool) {
        if flag { appendFour(0x6575_7274, extra: nil) } else { appendFour(0x736c_6166, extra: UInt8(ascii: "e")) }
    }

    @inline(__always)
    private func appendFour(_ littleEndian: UInt32, extra: UInt8?) {
        reserve(5)
        UnsafeMutableRawPointer(base + count).storeBytes(of: UInt32(littleEndian: littleEndian), as: UInt32.self)
        count += 4
        if let extra {
            base[count] = extra
            count += 1
        }
    }

    /// "00" to "99": two digits per division by 100. Never freed.
    private nonisolated(unsafe) static let digitPairTable: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 200)
        for number in 0..<100 {
            table[2 * number] = UInt8(ascii: "0") + UInt8(number / 10)
            table[2 * number + 1] = UInt8(ascii: "0") + UInt8(number % 10)
        }
        return UnsafePointer(table)
    }()

    /// 10^0 through 10^19. Never freed.
    private nonisolated(unsafe) static let powerOfTenTable: UnsafePointer<UInt64> = {
        let table = UnsafeMutablePointer<UInt64>.allocate(capacity: 20)
        var power: UInt64 = 1
        for exponent in 0..<20 {
            table[exponent] = power
            power = power &* 10
        }
        return UnsafePointer(table)
    }()

    /// The decimal digits of `value`, at least `minimumDigits` of them (zeros in front),
    /// written in place from the end.
    func appendDecimal(_ value: UInt64, minimumDigits: Int = 1) {
        // log10(2) ~ 1233/4096: the digits of the highest power of two below, then one more
        // if `value` reaches the next power of ten.
        let bits = 64 - value.leadingZeroBitCount
        var digits = (bits &* 1233) >> 12
        if value >= powersOfTen[digits] { digits += 1 }
        digits = max(digits, 1)
        let width = max(digits, minimumDigits)
        reserve(width)
        let field = base + count
        let pairs = digitPairs
        var index = width - 1
        var rest = value
        while rest >= 100 {
            let pair = Int(truncatingIfNeeded: rest % 100) &* 2
            rest /= 100
            field[index] = pairs[pair + 1]
            field[index - 1] = pairs[pair]
            index -= 2
        }
        if rest >= 10 {
            let pair = Int(truncatingIfNeeded: rest) &* 2
            field[index] = pairs[pair + 1]
            field[index - 1] = pairs[pair]
            index -= 2
        } else {
            field[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest)
            index -= 1
        }
        while index >= 0 {
            field[index] = UInt8(ascii: "0")
            index -= 1
        }
        count += width
    }

    /// A signed integer in decimal.
    @inline(__always)
    func appendInteger(_ value: Int64) {
        if value < 0 { append(UInt8(ascii: "-")) }
        appendDecimal(value.magnitude)
    }

    /// Epoch seconds with six decimals (`epochSeconds(_:)`'s form) from nanoseconds.
    func appendEpochSeconds(_ nanos: Int64) {
        let micros = nanos.magnitude / 1000
        if nanos < 0 && micros > 0 { append(UInt8(ascii: "-")) }
        appendDecimal(micros / 1_000_000)
        append(UInt8(ascii: "."))
        appendDecimal(micros % 1_000_000, minimumDigits: 6)
    }

    /// Whole epoch seconds in the same form ("253402300799.000000": certificate validity).
    func appendEpochSeconds(whole seconds: Int64) {
        appendInteger(seconds)
        appendLiteral(".000000")
    }

    /// `value` with exactly `decimals` digits after the point, as `formatFixed` spells it.
    func appendFixed(_ value: Double, decimals: Int) {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard value.isFinite, scaled < 9e18, decimals <= 18 else {
            var text = formatFixed(value, decimals: decimals)
            return text.withUTF8 { append($0) }
        }
        let whole = UInt64(scaled)
        let unit = UInt64(scale)
        if value < 0 { append(UInt8(ascii: "-")) }
        appendDecimal(whole / unit)
        guard decimals > 0 else { return }
        append(UInt8(ascii: "."))
        appendDecimal(whole % unit, minimumDigits: decimals)
    }

    private static let hexDigits: StaticString = "0123456789abcdef"

    /// `bytes` as a quoted string of lowercase hex digits.
    func appendQuotedHex(_ bytes: UnsafeRawBufferPointer) {
        reserve(2 * bytes.count + 2)
        let out = base + count
        out[0] = UInt8(ascii: "\"")
        OutputBytes.writeHex(bytes, to: out + 1)
        out[1 + 2 * bytes.count] = UInt8(ascii: "\"")
        count += 2 * bytes.count + 2
    }

    /// `bytes` in lowercase hex digits, unquoted.
    func appendHex(_ bytes: UnsafeRawBufferPointer) {
        reserve(2 * bytes.count)
        OutputBytes.writeHex(bytes, to: base + count)
        count += 2 * bytes.count
    }

    /// Lowercase hex of `bytes` at `out` (2 digits a byte), four bytes at a time: their
    /// nibbles spread into the eight bytes of a word, then made digits with no branch (10-15
    /// gain `a` - `0` - 10); session IDs, digests and randoms are 16 or 32 bytes.
    @inline(__always)
    static func writeHex(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutablePointer<UInt8>) {
        var index = 0
        while index + 4 <= bytes.count {
            let word = UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt32.self)))
            var spread = (word | word << 16) & 0x0000_FFFF_0000_FFFF
            spread = (spread | spread << 8) & 0x00FF_00FF_00FF_00FF
            // Each byte b now at an even place: its high nibble there, its low one just after.
            let nibbles = (spread >> 4) & 0x000F_000F_000F_000F | (spread & 0x000F_000F_000F_000F) << 8
            let letters = ((nibbles &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
            let digits = nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
            UnsafeMutableRawPointer(out + 2 * index).storeBytes(of: digits.littleEndian, as: UInt64.self)
            index += 4
        }
        let table = hexDigits.utf8Start
        while index < bytes.count {
            let byte = bytes[index]
            out[2 * index] = table[Int(byte >> 4)]
            out[2 * index + 1] = table[Int(byte & 0x0f)]
            index += 1
        }
    }

    /// `\uXXXX` for one UTF-16 unit.
    private func appendUnit(_ value: UInt32) {
        reserve(6)
        let out = base + count
        let digits = OutputBytes.hexDigits.utf8Start
        out[0] = 0x5c
        out[1] = UInt8(ascii: "u")
        out[2] = digits[Int(value >> 12 & 0xf)]
        out[3] = digits[Int(value >> 8 & 0xf)]
        out[4] = digits[Int(value >> 4 & 0xf)]
        out[5] = digits[Int(value & 0xf)]
        count += 6
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

    /// Text known to need no escape (an address), quoted.
    func appendQuotedPlain(_ text: UnsafeBufferPointer<UInt8>) {
        reserve(text.count + 2)
        let out = base + count
        out[0] = UInt8(ascii: "\"")
        if let source = text.baseAddress { OutputBytes.copy(source, to: out + 1, count: text.count) }
        out[1 + text.count] = UInt8(ascii: "\"")
        count += text.count + 2
    }

    /// `text` as a JSON string, escaped per RFC 8259 7.
    func appendQuoted(_ text: String) {
        // Most values (hex, names, versions) need no escape: one scan, one copy.
        var text = text
        let plain = text.withUTF8 { utf8 -> Bool in
            guard !OutputBytes.needsEscape(utf8) else { return false }
            appendQuotedPlain(utf8)
            return true
        }
        guard !plain else { return }
        append(UInt8(ascii: "\""))
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            for byte in text.utf8 {
                if let escape = OutputBytes.shortEscape(UInt32(byte)) {
                    append(0x5c)
                    append(escape)
                } else if byte < 0x20 || byte == 0x7f {
                    appendUnit(UInt32(byte))
                } else {
                    append(byte)
                }
            }
        } else {
            appendQuotedScalars(text)
        }
        append(UInt8(ascii: "\""))
    }

    /// Whether a byte of `utf8` is a control, DEL, non-ASCII, a quote or a backslash: eight
    /// bytes at a time with no branch (`DisplayText.unprintableBits`; a quote or a backslash
    /// is a zero byte of word ^ c*0x01.., which (v - 0x01..) & ~v flags, and falsely only a
    /// byte above a true one), then the tail.
    @inline(__always)
    private static func needsEscape(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var flagged: UInt64 = 0
        var index = 0
        if let base = UnsafeRawPointer(utf8.baseAddress) {
            while index + 8 <= utf8.count {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                let quote = word ^ (ones &* 0x22)
                let backslash = word ^ (ones &* 0x5c)
                flagged |= DisplayText.unprintableBits(word)
                flagged |= (quote &- ones) & ~quote | (backslash &- ones) & ~backslash
                index += 8
            }
        }
        if flagged & highs != 0 { return true }
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
    private func appendQuotedScalars(_ text: String) {
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if let escape = OutputBytes.shortEscape(value) {
                append(0x5c)
                append(escape)
            } else if !DisplayText.needsEscape(scalar) {
                for byte in UTF8.encode(scalar)! { append(byte) }
            } else if value < 0x10000 {
                appendUnit(value)
            } else {
                let offset = value - 0x10000
                appendUnit(0xd800 + offset >> 10)
                appendUnit(0xdc00 + offset & 0x3ff)
            }
        }
    }
}

/// Writes JSON into a byte buffer without Foundation: keys in the order given, numbers
/// as written, strings escaped per RFC 8259 7. A value type: a copy writes on its own bytes.
public struct JSONWriter {
    private var storage: OutputBytes
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
        storage = capacity == 0 ? OutputBytes.empty : OutputBytes(capacity: capacity)
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

    /// The buffer, this writer's alone, lent to `body` to write the entries of the container
    /// just opened straight into it (`HandshakeRecord.writeJSON`): the writer's own
    /// bookkeeping of commas is skipped, so `body` must write whole entries with their commas.
    mutating func writingEntries<R>(_ body: (OutputBytes) -> R) -> R {
        unique()
        let before = storage.count
        defer { if storage.count != before { _ = needsComma() } }
        return body(storage)
    }

    /// A key inside an object; the next call writes its value.
    public mutating func key(_ key: String) {
        unique()
        prepareEntry()
        storage.appendQuoted(key)
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
        storage.appendQuoted(value)
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
        storage.appendInteger(value)
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
        storage.appendEpochSeconds(nanos)
    }

    public mutating func double(_ value: Double, decimals: Int = 6) {
        unique()
        prepareEntry()
        storage.appendFixed(value, decimals: decimals)
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
