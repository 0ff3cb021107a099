import Foundation
import TestSupport
import Testing

@testable import Handshakes

/// HAND-MADE NAMES: what the analysis keeps of a server name longer than a DNS name. The
/// digest is checked against Python's hashlib, an independent SHA-256.
@Suite(.enabled(if: toolAvailable("python3"), "python3 gives the independent digest"))
struct KeptNameTests {
    @Test(arguments: [254, 1000, 16_000])
    func longNameIsItsPrefixAnEllipsisAndTheDigestOfTheWhole(_ length: Int) throws {
        let name = String(repeating: "x", count: length - 8) + ".example"
        let digest = try runProcess(
            "python3",
            ["-c", "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest()[:32])", name]
        )
        #expect(digest.status == 0)
        let expected = String(name.prefix(200)) + "…" + digest.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(HandshakeRecord.keptName(of: name) == expected)
    }

    @Test func namesUpToADNSNameAreKeptWhole() {
        let name = String(repeating: "a", count: 245) + ".example"
        #expect(name.utf8.count == 253)
        #expect(HandshakeRecord.keptName(of: name) == name)
        #expect(HandshakeRecord.keptName(of: nil) == nil)
    }
}
