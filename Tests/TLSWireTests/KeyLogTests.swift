import Foundation
import TLSWire
import TestSupport
import Testing

/// Key logs (issue 18): the one `openssl s_client -keylogfile` wrote while tls13-keylog.pcap
/// was recorded, and, for malformed lines, HAND-MADE lines (labelled below).
@Suite struct KeyLogTests {
    static let recorded = Paths.captures.appendingPathComponent("tls13-keylog.keys")

    @Test func recordedKeyLogGivesEveryConnectionItsSecrets() throws {
        let text = try Data(contentsOf: Self.recorded)
        var keyLog = KeyLog()
        keyLog.add(text: text, source: "tls13-keylog.keys")
        // Independent count: the distinct client randoms of the lines, read with split.
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
        let randoms = Set(lines.map { $0.split(separator: " ")[1].lowercased() })
        #expect(keyLog.connections.count == randoms.count && randoms.count == 7)
        #expect(keyLog.malformedLines == 0 && keyLog.problems.isEmpty)
        for line in lines where line.hasPrefix("SERVER_HANDSHAKE_TRAFFIC_SECRET ") {
            let fields = line.split(separator: " ")
            let random = try #require(ClientRandom(hex(fields[1])))
            let secrets = try #require(keyLog.secrets(for: random))
            #expect(secrets.serverHandshakeTraffic?.bytes == hex(fields[2]))
            #expect(secrets.serverApplicationTraffic != nil && secrets.clientHandshakeTraffic != nil)
            #expect(secrets.masterSecret == nil)
        }
        // EXPORTER_SECRET once per connection, and the key update's _N lines: read, not used.
        #expect(keyLog.unusedLines == lines.filter { $0.hasPrefix("EXPORTER") || $0.contains("_SECRET_N ") }.count)
    }

    /// HAND-MADE lines: each kind of damage is counted and named with its line number, and
    /// none stops the reading of the lines after it.
    @Test func malformedLinesAreCountedAndNamed() {
        let random = String(repeating: "ab", count: 32)
        let secret = String(repeating: "cd", count: 32)
        let text = """
            # a comment
            SERVER_HANDSHAKE_TRAFFIC_SECRET \(random) \(secret)
            SERVER_HANDSHAKE_TRAFFIC_SECRET \(random)
            NO_SUCH_LABEL \(random) \(secret)
            SERVER_TRAFFIC_SECRET_0 \(random.dropLast(2)) \(secret)
            SERVER_TRAFFIC_SECRET_0 \(random) \(secret.dropLast(2))
            CLIENT_RANDOM \(random) \(secret)
            SERVER_TRAFFIC_SECRET_0 \(random) zz\(secret.dropFirst(2))

            SERVER_TRAFFIC_SECRET_0\t\(random.uppercased())  \(secret)\r
            """
        var keyLog = KeyLog()
        keyLog.add(text: Array(text.utf8), source: "made.keys")
        #expect(keyLog.malformedLines == 6)
        #expect(keyLog.problems.count == 6)
        #expect(keyLog.problems[0] == "made.keys:3: expected LABEL CLIENT_RANDOM SECRET, found 2 fields")
        #expect(keyLog.problems[1].hasPrefix("made.keys:4: unknown label NO_SUCH_LABEL"))
        #expect(keyLog.problems[2] == "made.keys:5: SERVER_TRAFFIC_SECRET_0: the client random is not 32 bytes in hex")
        #expect(keyLog.problems[3] == "made.keys:6: SERVER_TRAFFIC_SECRET_0: the secret is not 32 or 48 bytes in hex")
        #expect(keyLog.problems[4] == "made.keys:7: CLIENT_RANDOM: the secret is not 48 bytes in hex")
        #expect(keyLog.problems[5].hasPrefix("made.keys:8:"))
        // Tabs, runs of blanks, upper-case hex and a CR ending are read.
        let secrets = keyLog.secrets(for: ClientRandom(hex(Substring(random)))!)
        #expect(secrets?.serverHandshakeTraffic?.bytes == hex(Substring(secret)))
        #expect(secrets?.serverApplicationTraffic?.bytes == hex(Substring(secret)))
    }

    /// HAND-MADE: an endless line without a newline, and a file of nothing but newlines,
    /// cost one buffer of the line limit at most and are reported, not fatal.
    @Test func endlessLineIsBounded() {
        var keyLog = KeyLog()
        keyLog.add(text: [UInt8](repeating: UInt8(ascii: "A"), count: 10 * KeyLog.maximumLineLength), source: "x")
        #expect(keyLog.malformedLines == 1)
        #expect(keyLog.problems.first == "x:1: line longer than \(KeyLog.maximumLineLength) bytes")
        keyLog.add(text: [UInt8](repeating: UInt8(ascii: "\n"), count: 100_000), source: "y")
        #expect(keyLog.malformedLines == 1 && keyLog.isEmpty)
    }
}

/// Bytes from hex, for the tests' own reading of key log lines.
func hex(_ digits: Substring) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}
