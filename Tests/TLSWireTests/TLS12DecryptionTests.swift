import Foundation
import TLSWire
import TestSupport
import Testing

/// TLS 1.2 records opened with a key log's master secret (CLIENT_RANDOM): the three AEAD
/// suites of tls12-renegotiation.pcap, whose renegotiations travel encrypted. Truth: each
/// direction's first protected record is its Finished (RFC 5246 7.4.9), and the client's
/// next protected handshake message is the renegotiation's ClientHello, whose random is the
/// key log's next CLIENT_RANDOM line (s_client wrote one per handshake).
@Suite(.enabled(if: toolAvailable("tshark"), "tshark reassembles the streams"))
struct TLS12DecryptionTests {
    static let capture = Paths.captures.appendingPathComponent("tls12-renegotiation.pcap").path

    /// The records of one direction: content type and the whole record.
    static func records(_ stream: [UInt8]) -> [(type: UInt8, record: [UInt8])] {
        var records: [(UInt8, [UInt8])] = []
        var at = 0
        while at + 5 <= stream.count {
            let length = Int(stream[at + 3]) << 8 | Int(stream[at + 4])
            guard at + 5 + length <= stream.count else { break }
            records.append((stream[at], Array(stream[at..<(at + 5 + length)])))
            at += 5 + length
        }
        return records
    }

    static func parse<T>(_ bytes: ArraySlice<UInt8>, _ body: (inout ByteCursor) throws -> T) throws -> T {
        try Array(bytes).withUnsafeBytes { raw in
            var cursor = ByteCursor(raw)
            return try body(&cursor)
        }
    }

    /// The key log's master secrets, in the order s_client wrote them.
    static func masterSecrets() throws -> [(random: [UInt8], secret: [UInt8])] {
        let text = try String(
            contentsOfFile: Paths.captures.appendingPathComponent("tls12-renegotiation.keys").path,
            encoding: .utf8
        )
        return text.split(separator: "\n").filter { $0.hasPrefix("CLIENT_RANDOM ") }.map {
            let fields = $0.split(separator: " ")
            return (hex(fields[1]), hex(fields[2]))
        }
    }

    @Test(arguments: [0, 1, 2])
    func protectedRecordsOpenWithTheMasterSecret(stream: Int) throws {
        let (clientBytes, serverBytes) = try tsharkStreamBytes(Self.capture, stream: stream)
        let client = Self.records(clientBytes)
        let server = Self.records(serverBytes)
        // The first hellos are in the clear: their randoms, and the suite.
        let clientHello = try Self.parse(client[0].record[9...]) { try ClientHello(parsing: &$0) }
        let serverHello = try Self.parse(server[0].record[9...]) { try ServerHello(parsing: &$0) }
        let secrets = try Self.masterSecrets()
        let index = try #require(secrets.firstIndex { $0.random == Array(clientHello.random) })
        for fromClient in [true, false] {
            var reader = try #require(
                TLS12RecordReader(
                    suite: serverHello.cipherSuite,
                    masterSecret: secrets[index].secret,
                    clientRandom: Array(clientHello.random),
                    serverRandom: serverHello.random,
                    fromClient: fromClient
                )
            )
            let records = fromClient ? client : server
            let protected = records.drop { $0.type != 20 }.dropFirst()  // after ChangeCipherSpec
            let finished = try #require(protected.first)
            let plaintext = try #require(finished.record.withUnsafeBytes { reader.open($0) })
            #expect(plaintext.count == 16 && plaintext.prefix(4) == [20, 0, 0, 12], "stream \(stream)")
            if fromClient {
                // The renegotiation's ClientHello, under the same keys.
                let next = try #require(protected.dropFirst().first { $0.type == 22 })
                let hello = try #require(next.record.withUnsafeBytes { reader.open($0) })
                #expect(hello.first == 1)
                let renegotiation = try Self.parse(hello[4...]) { try ClientHello(parsing: &$0) }
                #expect(Array(renegotiation.random) == secrets[index + 1].random, "stream \(stream)")
                // A record opened twice has the wrong sequence number: it does not open again.
                #expect(next.record.withUnsafeBytes { reader.open($0) } == nil)
            }
        }
    }
}
