import Handshakes
import Testing

@testable import Linking

/// Session keys of bytes (session IDs, digests kept as bytes) come from a keyed hash written
/// out for ShortBytes' five words; the same value arriving as hex text must meet them.
@Suite struct SessionKeyTests {
    @Test func bytesAndTheirHexMeetAndDifferentBytesDoNot() throws {
        let values: [[UInt8]] = [
            [0x00], [0x00, 0x00], [0x01], Array(0..<16), Array(0..<32), Array(repeating: 0xff, count: 32),
            Array(1..<17),
        ]
        var keys: [SessionKey] = []
        for bytes in values {
            let short = ShortBytes(bytes)
            let fromBytes = SessionKey(short)
            #expect(SessionKey(short.hex) == fromBytes, "\(short.hex)")
            keys.append(fromBytes)
        }
        // Same leading bytes, other lengths, other values: all apart.
        #expect(Set(keys).count == values.count)
        // Not hex: keyed as text, apart from any bytes.
        #expect(SessionKey("not hex") != SessionKey(ShortBytes(Array("not hex".utf8))))
    }

    @Test func shortBytesInTablesAreEqualByContent() {
        var table: [ShortBytes: Int] = [:]
        for round in 0..<3 {
            for length in 0...32 { table[ShortBytes(Array(repeating: UInt8(7), count: length))] = round }
        }
        #expect(table.count == 33)
        #expect(table.values.allSatisfy { $0 == 2 })
        let mechanisms = Dictionary(uniqueKeysWithValues: Mechanism.allCases.map { ($0, $0.rawValue) })
        #expect(Mechanism.allCases.allSatisfy { mechanisms[$0] == $0.rawValue })
    }
}
