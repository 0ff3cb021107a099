/// Writes JSON into a byte buffer without Foundation: keys in the order given, numbers
/// as written, strings escaped per RFC 8259 7.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    /// One entry per open container: whether it already holds an entry (so the next needs a comma).
    private var hasEntry: [Bool] = []
    /// A key was just written, so the value that follows takes no comma.
    private var afterKey = false

    public init(reservingCapacity capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    /// Hands over the bytes written so far and clears them, keeping the open containers,
    /// so a large document can be written out in pieces.
    public mutating func takeBytes() -> [UInt8] {
        defer { bytes.removeAll(keepingCapacity: true) }
        return bytes
    }

    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        hasEntry.removeAll(keepingCapacity: true)
        afterKey = false
    }

    private mutating func prepareEntry() {
        if afterKey {
            afterKey = false
            return
        }
        guard let last = hasEntry.last else { return }
        if last { bytes.append(UInt8(ascii: ",")) }
        hasEntry[hasEntry.count - 1] = true
    }

    public mutating func beginObject() {
        prepareEntry()
        bytes.append(UInt8(ascii: "{"))
        hasEntry.append(false)
    }
    public mutating func endObject() {
        hasEntry.removeLast()
        bytes.append(UInt8(ascii: "}"))
    }
    public mutating func beginArray() {
        prepareEntry()
        bytes.append(UInt8(ascii: "["))
        hasEntry.append(false)
    }
    public mutating func endArray() {
        hasEntry.removeLast()
        bytes.append(UInt8(ascii: "]"))
    }

    /// A key inside an object; the next call writes its value.
    public mutating func key(_ key: String) {
        prepareEntry()
        appendQuoted(key)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    /// A key of the record schema: plain ASCII identifiers, written as they are.
    public mutating func key(_ key: StaticString) {
        prepareEntry()
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    public mutating func string(_ value: String) {
        prepareEntry()
        appendQuoted(value)
    }
    public mutating func raw(_ text: String) {
        prepareEntry()
        bytes.append(contentsOf: text.utf8)
    }
    public mutating func int<I: BinaryInteger>(_ value: I) {
        guard let value = Int64(exactly: value) else { return raw(String(value)) }
        prepareEntry()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        appendDecimal(value.magnitude)
    }
    public mutating func bool(_ value: Bool) { literal(value ? "true" : "false") }
    public mutating func null() { literal("null") }

    private mutating func literal(_ text: StaticString) {
        prepareEntry()
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Epoch seconds with six decimals, `epochSeconds(_:)`'s form, written in place.
    public mutating func epochSeconds(_ nanos: Int64) {
        prepareEntry()
        let micros = nanos.magnitude / 1000
        if nanos < 0 && micros > 0 { bytes.append(UInt8(ascii: "-")) }
        appendDecimal(micros / 1_000_000)
        bytes.append(UInt8(ascii: "."))
        appendDecimal(micros % 1_000_000, width: 6)
    }

    /// The decimal digits of `value`, at least `width` of them (zeros in front), with no
    /// string between.
    private mutating func appendDecimal(_ value: UInt64, width: Int = 1) {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        let count = max(digits, width)
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: count))
        bytes.withUnsafeMutableBufferPointer { buffer in
            var rest = value
            var index = start + count - 1
            for _ in 0..<digits {
                buffer[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                index -= 1
            }
        }
    }
    public mutating func double(_ value: Double, decimals: Int = 6) { raw(formatFixed(value, decimals: decimals)) }

    private mutating func appendQuoted(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        // Most values (hex, names, versions) need no escape: one scan, one copy.
        let plain = text.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            for byte in utf8 where byte < 0x20 || byte >= 0x7f || byte == 0x22 || byte == 0x5c { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if plain == true {
            bytes.append(UInt8(ascii: "\""))
            return
        }
        if !text.utf8.allSatisfy({ $0 < 0x80 }) {
            appendQuotedScalars(text)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5c, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5c, 0x5c])
            case 0x0a: bytes.append(contentsOf: [0x5c, UInt8(ascii: "n")])
            case 0x0d: bytes.append(contentsOf: [0x5c, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5c, UInt8(ascii: "t")])
            case 0..<0x20, 0x7f:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [
                    0x5c, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xf)],
                ])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Text with non-ASCII characters: a character that `DisplayText` would not show raw
    /// (C1 controls, bidi overrides, ...) is written as \uXXXX (a surrogate pair past the
    /// BMP, RFC 8259 7), so the value is the same and `cat` of the output cannot act on a
    /// terminal.
    private mutating func appendQuotedScalars(_ text: String) {
        let hex = Array("0123456789abcdef".utf8)
        func unit(_ value: UInt32) {
            bytes.append(contentsOf: [
                0x5c, UInt8(ascii: "u"), hex[Int(value >> 12 & 0xf)], hex[Int(value >> 8 & 0xf)],
                hex[Int(value >> 4 & 0xf)], hex[Int(value & 0xf)],
            ])
        }
        for scalar in text.unicodeScalars {
            let value = scalar.value
            switch value {
            case 0x22: bytes.append(contentsOf: [0x5c, 0x22])
            case 0x5c: bytes.append(contentsOf: [0x5c, 0x5c])
            case 0x0a: bytes.append(contentsOf: [0x5c, UInt8(ascii: "n")])
            case 0x0d: bytes.append(contentsOf: [0x5c, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5c, UInt8(ascii: "t")])
            default:
                if !DisplayText.needsEscape(scalar) {
                    bytes.append(contentsOf: UTF8.encode(scalar)!)
                } else if value < 0x10000 {
                    unit(value)
                } else {
                    let offset = value - 0x10000
                    unit(0xd800 + offset >> 10)
                    unit(0xdc00 + offset & 0x3ff)
                }
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
