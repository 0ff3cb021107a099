import Foundation
import TLSWire
import TestSupport
import Testing

@testable import Handshakes

/// QUIC's CRYPTO stream put back together however its frames arrive: in place when a frame
/// continues whole messages, through the buffer when it ends inside one or comes out of
/// order, overlapping or again. The messages are real: the ClientHello curl sent to nginx
/// (captures/nginx-curl.pcap, its first record as tshark follows the stream), twice in a row;
/// only the cuts into frames are made here.
@Suite struct CryptoStreamTests {
    struct Collector: TLSEventHandler {
        var hellos: [ClientHello] = []
        var others = 0
        mutating func handle(_ event: consuming TLSEvent, stream: Int) -> TLSDirective {
            switch consume event {
            case let .clientHello(hello): hellos.append(hello)
            default: others += 1
            }
            return .proceed
        }
    }

    /// The ClientHello message (type, length, body) of the capture's first connection.
    static func clientHelloMessage() throws -> [UInt8] {
        let client = try tsharkStreamBytes(Paths.captures.appendingPathComponent("nginx-curl.pcap").path, stream: 0)
            .client
        try #require(client.count > 9 && client[0] == 22 && client[5] == 1)
        let recordLength = Int(client[3]) << 8 | Int(client[4])
        let messageLength = Int(client[6]) << 16 | Int(client[7]) << 8 | Int(client[8])
        try #require(messageLength + 4 <= recordLength)
        return Array(client[5..<(9 + messageLength)])
    }

    /// Frames as (offset, length) over the stream of `total` bytes.
    static func cuts(_ total: Int) -> [(String, [(Int, Int)])] {
        let third = total / 3
        let half = total / 2
        return [
            ("whole", [(0, total)]),
            ("in order, each ending inside a message", [(0, third), (third, third), (2 * third, total - 2 * third)]),
            ("at the message boundary", [(0, half), (half, total - half)]),
            ("last first", [(2 * third, total - 2 * third), (third, third), (0, third)]),
            ("overlapping", [(0, third + 9), (third, third + 9), (2 * third - 5, total - 2 * third + 5)]),
            ("again after the end", [(0, half), (half, total - half), (0, half), (3, 40)]),
            ("a gap filled late", [(0, 100), (half, total - half), (100, half - 100)]),
        ]
    }

    @Test(.enabled(if: toolAvailable("tshark"), "tshark is not installed"))
    func everyArrivalGivesTheSameTwoHellos() throws {
        let message = try Self.clientHelloMessage()
        let stream = message + message
        let expected = try message.withUnsafeBytes { bytes in
            var body = ByteCursor(UnsafeRawBufferPointer(rebasing: bytes[4...]))
            return try ClientHello(parsing: &body)
        }
        for (name, frames) in Self.cuts(stream.count) {
            var crypto = CryptoStream()
            var collector = Collector()
            for (offset, length) in frames {
                stream.withUnsafeBytes { all in
                    crypto.add(
                        offset: offset,
                        data: UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)]),
                        stream: 0,
                        handler: &collector
                    )
                }
            }
            #expect(collector.hellos.count == 2, "\(name)")
            #expect(collector.others == 0, "\(name)")
            for hello in collector.hellos {
                #expect(hello.fingerprintKey(tag: 0) == expected.fingerprintKey(tag: 0), "\(name)")
                #expect(Array(hello.random) == Array(expected.random), "\(name)")
                #expect(hello.serverName == expected.serverName, "\(name)")
            }
        }
    }
}
