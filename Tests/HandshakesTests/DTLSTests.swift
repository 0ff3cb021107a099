import Capture
import Handshakes
import Packets
import TLSWire
import TestSupport
import Testing

/// Records each event of a DTLS decoder by kind.
struct DTLSEvents: TLSEventHandler {
    var clientHellos: [ClientHello] = []
    var other: [String] = []

    mutating func handle(_ event: consuming TLSEvent, stream: Int) -> TLSDirective {
        switch event {
        case let .clientHello(hello): clientHellos.append(hello)
        case let .handshake(type, _): other.append("handshake \(type.rawValue)")
        case let .malformed(error): other.append("malformed: \(error.reason)")
        case .changeCipherSpec: other.append("ChangeCipherSpec")
        default: other.append("\(event)")
        }
        return .proceed
    }
}

@Suite struct DTLSTests {
    /// UDP payloads of a capture, in order.
    func datagrams(_ capture: String) throws -> [[UInt8]] {
        let reader = try CaptureFileReader(path: Paths.captures.appendingPathComponent(capture).path)
        var decoder = PacketDecoder()
        var payloads: [[UInt8]] = []
        while let packet = reader.next() {
            if case let .udp(datagram) = decoder.decode(packet) { payloads.append(Array(datagram.payload)) }
        }
        return payloads
    }

    func feed(_ datagrams: [[UInt8]]) -> DTLSEvents {
        var decoder = DTLSDecoder(streamTag: 0)
        var events = DTLSEvents()
        for datagram in datagrams { datagram.withUnsafeBytes { decoder.feed($0, handler: &events) } }
        return events
    }

    /// The recorded capture: HelloVerifyRequest, then session-ID and ticket resumption, as
    /// s_client printed (RecordedCaptureTests checks every verdict).
    @Test func recordedDTLS() throws {
        let records = try extractRecords(Paths.captures.appendingPathComponent("dtls.pcap"))
        #expect(records.count == 12)
        #expect(records.allSatisfy { $0.transport == .udp && $0.version == .dtls1_2 && $0.established })
        #expect(
            records.map(\.resumption) == [nil] + Array(repeating: .sessionID, count: 5) + [nil]
                + Array(repeating: .ticket, count: 5)
        )
        #expect(records.allSatisfy { $0.ja4?.hasPrefix("dd2") == true })
    }

    /// DERIVED from the real first ClientHello: its message cut into three fragments sent in
    /// reverse order, each in its own record and datagram, then the whole datagram again (a
    /// retransmission): one ClientHello, the same as from the whole datagram.
    @Test func fragmentsReassembleAndRetransmissionsArePassedOver() throws {
        let first = try #require(try datagrams("dtls.pcap").first)
        #expect(DTLSDecoder.startsWithClientHello(first.withUnsafeBytes { $0 }))
        let whole = feed([first])
        #expect(whole.clientHellos.count == 1 && whole.clientHellos[0].cookie == [])
        // Record header 13 bytes, handshake header 12, then the body.
        let body = Array(first[25..<(13 + (Int(first[11]) << 8 | Int(first[12])))])
        func fragment(_ range: Range<Int>) -> [UInt8] {
            let length = body.count
            let handshake: [UInt8] =
                [
                    1, UInt8(length >> 16), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), 0, 0,
                    UInt8(range.lowerBound >> 16), UInt8(range.lowerBound >> 8 & 0xff), UInt8(range.lowerBound & 0xff),
                    UInt8(range.count >> 16), UInt8(range.count >> 8 & 0xff), UInt8(range.count & 0xff),
                ] + body[range]
            return Array(first[0..<11]) + [UInt8(handshake.count >> 8), UInt8(handshake.count & 0xff)] + handshake
        }
        let a = body.count / 3
        let b = 2 * body.count / 3
        let pieces = feed([fragment(b..<body.count), fragment(a..<(b + 5)), fragment(0..<a), first])
        #expect(pieces.clientHellos.count == 1)
        #expect(pieces.clientHellos.first?.random == whole.clientHellos[0].random)
        #expect(pieces.clientHellos.first?.cipherSuites == whole.clientHellos[0].cipherSuites)
        #expect(pieces.clientHellos.first?.extensionTypes == whole.clientHellos[0].extensionTypes)
        #expect(pieces.other.isEmpty)
    }

    /// DELIBERATELY MALFORMED: a record longer than its datagram, a fragment past its
    /// message, and fragments of a hundred messages that never complete (memory stays bounded).
    @Test func malformedDatagramsAreReportedNotFatal() throws {
        let first = try #require(try datagrams("dtls.pcap").first)
        var long = first
        long[12] = 0xff
        long[11] = 0x3f
        #expect(feed([long]).other == ["malformed: DTLS record length 16383 past the end of the datagram"])
        var past = first
        past[13 + 9] = 0x7f  // fragment_length's high byte
        #expect(feed([past]).other.first?.hasPrefix("malformed: DTLS handshake fragment") == true)
        var decoder = DTLSDecoder(streamTag: 0)
        var events = DTLSEvents()
        for sequence in 0..<100 {
            // One byte of a 1000-byte message each time: never complete.
            let handshake: [UInt8] = [
                1, 0, 0x03, 0xe8, UInt8(sequence >> 8), UInt8(sequence & 0xff), 0, 0, 0, 0, 0, 1, 0x42,
            ]
            let datagram = Array(first[0..<11]) + [0, UInt8(handshake.count)] + handshake
            datagram.withUnsafeBytes { decoder.feed($0, handler: &events) }
        }
        #expect(events.clientHellos.isEmpty && events.other.isEmpty)
        // Everything after is still decoded.
        first.withUnsafeBytes { decoder.feed($0, handler: &events) }
        #expect(events.clientHellos.count == 1)
    }
}
