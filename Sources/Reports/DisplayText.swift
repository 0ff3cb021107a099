/// Text for a terminal, in which wire strings cannot act: every character that is not
/// printable is shown as an escape instead, as tcpdump and tshark do. ASCII control bytes
/// (C0 and DEL) read `\x1b`; other such characters `\u{202e}`. That covers C1 controls,
/// bidi overrides and isolates, zero-width and other format characters, line and paragraph
/// separators, private-use and unassigned code points (Unicode general categories Cc, Cf,
/// Zl, Zp, Co, Cn). Printable text, non-ASCII letters included, is left as it is.
public enum DisplayText {
    /// True for a character shown as an escape.
    @inline(__always)
    public static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value >= 0x20, value < 0x7f { return false }
        if value < 0xa0 { return true }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .unassigned, .surrogate: return true
        default: return false
        }
    }

    /// The high bit of each byte of `word` that is not printable ASCII, plus maybe false
    /// ones above such a byte: 0x80 or more (the word itself), 0x7f (word + 0x01..: a carry
    /// comes only from a byte already flagged), below 0x20 (~((word | 0x80..) - 0x20..), which
    /// borrows across no byte). Mask with 0x80.. after OR-ing words together.
    @inline(__always)
    static func unprintableBits(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        return word | (word &+ ones) | ~((word | (ones &* 0x80)) &- ones &* 0x20)
    }

    /// Whether every byte is printable ASCII (0x20 to 0x7e): eight at a time with no branch.
    @inline(__always)
    static func isPrintableASCII(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        var flagged: UInt64 = 0
        var index = 0
        if let base = UnsafeRawPointer(utf8.baseAddress) {
            while index + 8 <= utf8.count {
                flagged |= unprintableBits(base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                index += 8
            }
        }
        if flagged & 0x8080_8080_8080_8080 != 0 { return false }
        while index < utf8.count {
            if utf8[index] < 0x20 || utf8[index] >= 0x7f { return false }
            index += 1
        }
        return true
    }

    static func isPrintableASCII(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { isPrintableASCII($0) }
    }

    /// `text` with every character that `needsEscape` shown as an escape.
    public static func escaped(_ text: String) -> String {
        if isPrintableASCII(text) { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if needsEscape(scalar) { appendEscape(scalar, to: &out) } else { out.append(scalar) }
        }
        return String(out)
    }

    /// `text` escaped and cut to `width` characters, the cut marked with "…".
    public static func cell(_ text: String, width: Int) -> String {
        let shown = escaped(text)
        guard shown.count > width else { return shown }
        return String(shown.prefix(max(width - 1, 0))) + "…"
    }

    /// A whole line of tlsreuse's own text, escaped except for the SGR colour sequences that
    /// `TextStyle` writes (ESC [ 0, 1, 31, 32 or 33 m). Wire strings are escaped before
    /// they are put in a line, so an escape character left here is tlsreuse's own or a
    /// mistake, and a mistake is shown, not obeyed.
    public static func line(_ line: String) -> String {
        if isPrintableASCII(line) { return line }
        let scalars = Array(line.unicodeScalars)
        var out = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "\u{1b}", let length = styleSequenceLength(scalars, at: index) {
                out.append(contentsOf: scalars[index..<(index + length)])
                index += length
                continue
            }
            if needsEscape(scalar) { appendEscape(scalar, to: &out) } else { out.append(scalar) }
            index += 1
        }
        return String(out)
    }

    /// The length of the SGR sequence `TextStyle` writes that starts at `index`, if one does.
    private static func styleSequenceLength(_ scalars: [Unicode.Scalar], at index: Int) -> Int? {
        for code in TextStyle.codes {
            let sequence = Array("\u{1b}[\(code)m".unicodeScalars)
            if index + sequence.count <= scalars.count, Array(scalars[index..<(index + sequence.count)]) == sequence {
                return sequence.count
            }
        }
        return nil
    }

    private static func appendEscape(_ scalar: Unicode.Scalar, to out: inout String.UnicodeScalarView) {
        let value = scalar.value
        let text =
            value < 0x80
            ? "\\x" + (value < 0x10 ? "0" : "") + String(value, radix: 16)
            : "\\u{" + String(value, radix: 16) + "}"
        out.append(contentsOf: text.unicodeScalars)
    }
}

/// A count with its noun, "1 packet" or "2 packets" (the plural adds an "s").
package func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }
