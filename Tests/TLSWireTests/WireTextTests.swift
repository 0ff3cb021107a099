import TLSWire
import Testing

/// WireText keeps every byte of a wire string. The byte strings here are HAND-MADE.
@Suite struct WireTextTests {
    /// HAND-MADE BYTES: the eight-bytes-at-a-time scan agrees with a byte-by-byte one for a
    /// non-ASCII byte or a backslash at every place of every length up to 40 (words and tail),
    /// and for bytes next to a backslash (0x5b, 0x5d) that a borrow could confuse.
    @Test func plainASCIIScanAgreesByteByByte() {
        for length in 0...40 {
            let plain = [UInt8](repeating: UInt8(ascii: "a"), count: length)
            #expect(plain.withUnsafeBytes(WireText.isPlainASCII))
            for position in 0..<length {
                for odd: UInt8 in [0x5c, 0x80, 0xff, 0x5b, 0x5d, 0x00, 0x7f, 0xdc] {
                    var bytes = plain
                    bytes[position] = odd
                    let expected = bytes.allSatisfy { $0 < 0x80 && $0 != 0x5c }
                    #expect(bytes.withUnsafeBytes(WireText.isPlainASCII) == expected, "\(length) \(position) \(odd)")
                    if expected { #expect(WireText.decode(bytes) == String(decoding: bytes, as: UTF8.self)) }
                }
            }
        }
    }

    @Test func validTextIsUnchanged() {
        for name in ["example.com", "h2", "http/1.1", "bücher.example", "日本.example", ""] {
            #expect(WireText.decode(Array(name.utf8)) == name)
        }
    }

    @Test func invalidBytesAndBackslashesAreEscaped() {
        #expect(WireText.decode([0x61, 0xff, 0x62]) == #"a\xffb"#)
        #expect(WireText.decode(Array(#"a\b"#.utf8)) == #"a\x5cb"#)
        #expect(WireText.decode([0xe2, 0x82]) == #"\xe2\x82"#, "a cut-off sequence")
        #expect(WireText.decode([0xc0, 0x80]) == #"\xc0\x80"#, "an overlong NUL")
        #expect(WireText.decode([0xed, 0xa0, 0x80]) == #"\xed\xa0\x80"#, "a UTF-16 surrogate")
    }

    /// Every byte string comes back from its text, and two strings never share one: a
    /// deterministic pseudo-random sample of 20,000 strings over a small alphabet that
    /// makes escapes, lookalike text ("\x41") and partial sequences likely.
    @Test func roundTripAndOneToOne() {
        let alphabet: [UInt8] = [0x5c, 0x78, 0x34, 0x31, 0x61, 0xc3, 0xa9, 0xe2, 0x80, 0xae, 0xff, 0x00]
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        var seen: [String: [UInt8]] = [:]
        for _ in 0..<20_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let length = Int(state >> 60)
            var bytes: [UInt8] = []
            var bits = state
            for _ in 0..<length {
                bits = bits &* 6_364_136_223_846_793_005 &+ 1
                bytes.append(alphabet[Int(bits >> 59) % alphabet.count])
            }
            let text = WireText.decode(bytes)
            #expect(WireText.bytes(text) == bytes)
            if let earlier = seen[text] { #expect(earlier == bytes, "\(earlier) and \(bytes) share \(text)") }
            seen[text] = bytes
        }
    }
}
