import TLSWire
import Testing

/// WireText keeps every byte of a wire string. The byte strings here are HAND-MADE.
@Suite struct WireTextTests {
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
