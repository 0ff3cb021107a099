import Capture
import Glibc
import Packets
import TestSupport
import Testing

/// A packet copied out of a capture.
struct Frame {
    var linkType: LinkType
    var bytes: [UInt8]
    var timestamp: Int64
}

func frames(_ capture: String) throws -> [Frame] {
    let reader = try CaptureFileReader(path: Paths.captures.appendingPathComponent(capture).path)
    var frames: [Frame] = []
    while let packet = reader.next() {
        frames.append(Frame(linkType: packet.linkType, bytes: Array(packet.bytes), timestamp: packet.timestampNanos))
    }
    return frames
}

/// What a decoded TCP segment carried, for comparing two decodings.
struct SegmentSummary: Equatable {
    var source: String, destination: String, ports: [UInt16], sequence: UInt32, flags: UInt8, payload: [UInt8],
        ttl: UInt8
}

func decodeTCP(_ decoder: inout PacketDecoder, _ linkType: LinkType, _ bytes: [UInt8]) -> SegmentSummary? {
    bytes.withUnsafeBytes { raw in
        switch decoder.decode(
            CapturedPacket(timestampNanos: 1, linkType: linkType, originalLength: raw.count, bytes: raw)
        ) {
        case let .tcp(s):
            return SegmentSummary(
                source: s.source.description,
                destination: s.destination.description,
                ports: [s.sourcePort, s.destinationPort],
                sequence: s.sequence,
                flags: s.flags.rawValue,
                payload: Array(s.payload),
                ttl: s.timeToLive
            )
        default:
            return nil
        }
    }
}

func decodeTCP(_ linkType: LinkType, _ bytes: [UInt8]) -> SegmentSummary? {
    var decoder = PacketDecoder()
    return decodeTCP(&decoder, linkType, bytes)
}

/// The first frame of a capture that carries TCP payload (the ClientHello).
func firstPayloadFrame(_ capture: String) throws -> (Frame, SegmentSummary) {
    for frame in try frames(capture) {
        if let segment = decodeTCP(frame.linkType, frame.bytes), !segment.payload.isEmpty { return (frame, segment) }
    }
    throw CaptureError.make(.io, "no payload frame in \(capture)")
}

@Suite struct PacketDecoderTests {
    /// Every TCP frame of real captures decodes; tshark counts the same TCP frames.
    @Test(
        .enabled(if: toolAvailable("tshark"), "tshark is not installed"),
        arguments: ["tls12-session-id.pcap", "cooked-any.pcap", "ipv6.pcap", "two-interfaces.pcapng", "vxlan.pcap"]
    )
    func tcpFrameCountMatchesTshark(capture: String) throws {
        var decoder = PacketDecoder()
        var tcp = 0
        for frame in try frames(capture) where decodeTCP(&decoder, frame.linkType, frame.bytes) != nil { tcp += 1 }
        let tshark = try runProcess(
            "tshark",
            [
                "-r", Paths.captures.appendingPathComponent(capture).path, "-Y", "tcp", "-T", "fields", "-e",
                "frame.number",
            ]
        )
        #expect(tcp == tshark.stdout.split(separator: "\n").count)
        #expect(decoder.counters.malformedHeaders == 0 && decoder.counters.truncatedHeaders == 0)
    }

    @Test func linuxCookedV2() throws {
        let (frame, segment) = try firstPayloadFrame("cooked-any.pcap")
        #expect(frame.linkType == .linuxSLL2)
        #expect(segment.source == "127.0.0.1" && segment.ports[1] == 14406)
    }

    // The tests below DERIVE frames from a real captured frame (tags, headers or fragments
    // inserted by the test) and check that the same segment comes out.

    @Test func vlanStacks() throws {
        let (frame, expected) = try firstPayloadFrame("tls12-session-id.pcap")
        #expect(frame.linkType == .ethernet)
        let macs = Array(frame.bytes[0..<12])
        let rest = Array(frame.bytes[12...])
        let dot1q = macs + [0x81, 0x00, 0x00, 0x64] + rest
        let qinq = macs + [0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x64] + rest
        #expect(decodeTCP(.ethernet, dot1q) == expected)
        #expect(decodeTCP(.ethernet, qinq) == expected)
        let tooDeep = macs + Array(repeating: [0x81, 0x00, 0x00, 0x01], count: 9).flatMap { $0 } + rest
        var decoder = PacketDecoder()
        #expect(decodeTCP(&decoder, .ethernet, tooDeep) == nil)
        #expect(decoder.counters.tooDeep == 1)
    }

    @Test func rawNullAndLoopLinkTypes() throws {
        let (frame, expected) = try firstPayloadFrame("tls12-session-id.pcap")
        let ip = Array(frame.bytes[14...])
        #expect(decodeTCP(.raw, ip) == expected)
        #expect(decodeTCP(.ipv4, ip) == expected)
        #expect(decodeTCP(.null, [2, 0, 0, 0] + ip) == expected)  // AF_INET, little-endian host
        #expect(decodeTCP(.null, [0, 0, 0, 2] + ip) == expected)  // AF_INET, big-endian host
        #expect(decodeTCP(.loop, [0, 0, 0, 2] + ip) == expected)
        #expect(decodeTCP(.ppp, [0xff, 0x03, 0x00, 0x21] + ip) == expected)
    }

    @Test func unknownLinkTypeAndNonIPAreCounted() throws {
        var decoder = PacketDecoder()
        #expect(decodeTCP(&decoder, LinkType(rawValue: 147), [1, 2, 3]) == nil)
        let arp: [UInt8] = Array(repeating: 0xff, count: 12) + [0x08, 0x06] + Array(repeating: 0, count: 28)
        #expect(decodeTCP(&decoder, .ethernet, arp) == nil)
        #expect(decoder.counters.unsupportedLinkTypes == [147: 1])
        #expect(decoder.counters.nonIPFrames == 1)
    }

    @Test func ipv4OptionsAreSkipped() throws {
        let (frame, expected) = try firstPayloadFrame("tls12-session-id.pcap")
        var ip = Array(frame.bytes[14...])
        let ihl = Int(ip[0] & 0x0f) * 4
        // Insert 4 bytes of options (NOP NOP NOP EOL), fix IHL and total length.
        ip.insert(contentsOf: [1, 1, 1, 0], at: ihl)
        ip[0] = 0x40 | UInt8((ihl + 4) / 4)
        let total = (Int(ip[2]) << 8 | Int(ip[3])) + 4
        ip[2] = UInt8(total >> 8)
        ip[3] = UInt8(total & 0xff)
        #expect(decodeTCP(.raw, ip) == expected)
    }

    /// The IP payload of a real packet cut into fragments, sent out of order with an
    /// overlapping fragment whose bytes differ: the first copy wins.
    @Test func ipv4FragmentsReassemble() throws {
        let (frame, expected) = try firstPayloadFrame("tls12-session-id.pcap")
        let ip = Array(frame.bytes[14...])
        let ihl = Int(ip[0] & 0x0f) * 4
        let payload = Array(ip[ihl...])
        func fragment(_ range: Range<Int>, more: Bool, poison: Bool = false) -> [UInt8] {
            var header = Array(ip[0..<ihl])
            let total = ihl + range.count
            header[2] = UInt8(total >> 8)
            header[3] = UInt8(total & 0xff)
            header[4] = 0x12
            header[5] = 0x34
            let field = (more ? 0x2000 : 0) | (range.lowerBound / 8)
            header[6] = UInt8(field >> 8)
            header[7] = UInt8(field & 0xff)
            let body = poison ? [UInt8](repeating: 0xee, count: range.count) : Array(payload[range])
            return header + body
        }
        let cut1 = 64
        let cut2 = 128
        var decoder = PacketDecoder()
        #expect(decodeTCP(&decoder, .raw, fragment(cut2..<payload.count, more: false)) == nil)
        #expect(decodeTCP(&decoder, .raw, fragment(cut1..<cut2, more: true)) == nil)
        #expect(decodeTCP(&decoder, .raw, fragment(cut1..<cut2, more: true, poison: true)) == nil)
        #expect(decodeTCP(&decoder, .raw, fragment(0..<cut1, more: true)) == expected)
        #expect(decoder.counters.reassembledDatagrams == 1 && decoder.counters.ipFragments == 4)
    }

    @Test func ipv6ExtensionHeadersAndFragments() throws {
        let (frame, expected) = try firstPayloadFrame("ipv6.pcap")
        let ip = Array(frame.bytes[14...])
        #expect(ip[6] == 6)
        let payload = Array(ip[40...])
        func header(nextHeader: UInt8, payloadLength: Int) -> [UInt8] {
            var h = Array(ip[0..<40])
            h[4] = UInt8(payloadLength >> 8)
            h[5] = UInt8(payloadLength & 0xff)
            h[6] = nextHeader
            return h
        }
        // Hop-by-hop (8 bytes of PadN) then destination options, then TCP.
        let hopByHop: [UInt8] = [60, 0, 1, 4, 0, 0, 0, 0]
        let destination: [UInt8] = [6, 0, 1, 4, 0, 0, 0, 0]
        let withOptions = header(nextHeader: 0, payloadLength: 16 + payload.count) + hopByHop + destination + payload
        #expect(decodeTCP(.ethernet, Array(frame.bytes[0..<14]) + withOptions) == expected)
        // Two fragments (RFC 8200 4.5), second first.
        let cut = 48
        func fragment(_ range: Range<Int>, more: Bool) -> [UInt8] {
            let offsetField = UInt16(range.lowerBound) | (more ? 1 : 0)
            let fragmentHeader: [UInt8] = [
                6, 0, UInt8(offsetField >> 8), UInt8(offsetField & 0xff), 0xca, 0xfe, 0x00, 0x01,
            ]
            return header(nextHeader: 44, payloadLength: 8 + range.count) + fragmentHeader + Array(payload[range])
        }
        var decoder = PacketDecoder()
        #expect(decodeTCP(&decoder, .raw, fragment(cut..<payload.count, more: false)) == nil)
        #expect(decodeTCP(&decoder, .raw, fragment(0..<cut, more: true)) == expected)
    }

    @Test func truncatedHeadersAreCounted() throws {
        let (frame, _) = try firstPayloadFrame("tls12-session-id.pcap")
        var decoder = PacketDecoder()
        #expect(decodeTCP(&decoder, .ethernet, Array(frame.bytes[0..<30])) == nil)
        #expect(decodeTCP(&decoder, .ethernet, Array(frame.bytes[0..<40])) == nil)
        #expect(decoder.counters.truncatedHeaders == 2)
    }
}

@Suite struct IPAddressTests {
    /// RFC 5952 section 4 text forms.
    @Test(arguments: [
        ("2001:db8:0:0:0:0:2:1", "2001:db8::2:1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("::1", "::1"),
        ("::", "::"),
        ("fe80::", "fe80::"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
    ])
    func ipv6Text(input: String, canonical: String) {
        #expect(IPAddress(input)?.description == canonical)
        #expect(IPAddress(canonical) == IPAddress(input))
    }

    @Test func ipv4AndInvalid() {
        #expect(IPAddress("192.0.2.33")?.description == "192.0.2.33")
        #expect(IPAddress("192.0.2.33")?.isIPv6 == false)
        for bad in ["256.1.1.1", "1.2.3", "1::2::3", "12345::", "", "a.b.c.d"] { #expect(IPAddress(bad) == nil) }
    }
}

/// IPv4 text against the C library's inet_ntop, on the edges of each octet's digit count
/// and on random addresses.
@Suite struct IPv4TextTests {
    @Test func dottedQuadAgreesWithInetNtop() {
        var generator = SystemRandomNumberGenerator()
        let edges: [UInt32] = [0, 9, 10, 99, 100, 199, 255]
        var values: [UInt32] = []
        for a in edges { for b in edges { values.append(a << 24 | b << 16 | b << 8 | a) } }
        values += (0..<5000).map { _ in UInt32.random(in: 0...UInt32.max, using: &generator) }
        for value in values {
            let networkOrder = value.bigEndian
            var address = in_addr(s_addr: networkOrder)
            var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count))
            let expected = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(IPAddress(ipv4: networkOrder).description == expected)
            let lent = IPAddress(ipv4: networkOrder).withText { String(decoding: $0, as: UTF8.self) }
            #expect(lent == expected)
        }
        let ipv6 = try! #require(IPAddress("2001:db8::1"))
        #expect(ipv6.withText { String(decoding: $0, as: UTF8.self) } == "2001:db8::1")
    }
}
