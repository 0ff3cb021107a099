import Capture
import Foundation
import Packets
import TestSupport
import Testing

/// Tunnels decapsulated to the inner packet: VXLAN recorded here (captures/vxlan.pcap),
/// GRE and Geneve from the peer corpus, and the other kinds DERIVED from the real VXLAN
/// frame by re-wrapping its inner packet in headers the test writes (the kernel here has
/// no GRE, MPLS or PPP devices to record them from).
@Suite struct TunnelTests {
    /// The first VXLAN frame carrying the ClientHello, split into its layers.
    struct Layers {
        var outerEthernet: [UInt8]  // 14 bytes
        var outerIPv4: [UInt8]  // 20 bytes, protocol 17
        var innerEthernet: [UInt8]  // the whole inner frame
        var innerIP: [UInt8] { Array(innerEthernet[14...]) }
        var expected: SegmentSummary
    }

    func vxlanLayers() throws -> Layers {
        let (frame, segment) = try firstPayloadFrame("vxlan.pcap")
        let bytes = frame.bytes
        #expect(bytes[12] == 0x08 && bytes[13] == 0x00 && bytes[23] == 17)
        #expect(Int(bytes[36]) << 8 | Int(bytes[37]) == 4789)
        return Layers(
            outerEthernet: Array(bytes[0..<14]),
            outerIPv4: Array(bytes[14..<34]),
            innerEthernet: Array(bytes[50...]),
            expected: segment
        )
    }

    /// An outer IPv4 header from the real frame with another protocol and length.
    func outerIPv4(_ layers: Layers, proto: UInt8, payload: Int) -> [UInt8] {
        var header = layers.outerIPv4
        header[9] = proto
        let total = 20 + payload
        header[2] = UInt8(total >> 8)
        header[3] = UInt8(total & 0xff)
        return header
    }

    func ethernet(_ layers: Layers, type: UInt16) -> [UInt8] {
        Array(layers.outerEthernet[0..<12]) + [UInt8(type >> 8), UInt8(type & 0xff)]
    }

    /// The recorded VXLAN capture: the segment inside has the overlay addresses.
    @Test func vxlanRecorded() throws {
        let layers = try vxlanLayers()
        #expect(layers.expected.source == "192.168.42.1" && layers.expected.destination == "192.168.42.2")
        #expect(layers.expected.ports[1] == 14420)
        var decoder = PacketDecoder()
        let all = try frames("vxlan.pcap")
        for frame in all { _ = decodeTCP(&decoder, frame.linkType, frame.bytes) }
        #expect(decoder.counters.tunnels.vxlan == all.count)
        #expect(decoder.counters.udpDatagrams == 0)
    }

    /// GRE and Geneve captures from the JA4 suite: the same TCP, UDP and ICMP packets as tshark finds inside.
    @Test(
        .enabled(if: Paths.peerCorpusPresent && toolAvailable("tshark"), "needs ../shared/peer-corpus and tshark"),
        arguments: ["gre-sample.pcap", "tcpdump-geneve.pcap"]
    )
    func peerCorpusTunnelsMatchTshark(capture: String) throws {
        let path = Paths.peerCorpus.appendingPathComponent("ja4/pcap/\(capture)").path
        let reader = try CaptureFileReader(path: path)
        var decoder = PacketDecoder()
        var tcp = 0
        var udp = 0
        while let packet = reader.next() {
            switch decoder.decode(packet) {
            case .tcp: tcp += 1
            case .udp: udp += 1
            case .skipped: break
            }
        }
        func tsharkCount(_ filter: String) throws -> Int {
            try runProcess("tshark", ["-r", path, "-Y", filter, "-T", "fields", "-e", "frame.number"]).stdout.split(
                separator: "\n"
            ).count
        }
        #expect(tcp == (try tsharkCount("tcp")))
        #expect(udp == (try tsharkCount("udp and not geneve and not icmp")))
        #expect(decoder.counters.otherTransport == (try tsharkCount("icmp")))
        let tunnelled = capture.hasPrefix("gre") ? decoder.counters.tunnels.gre : decoder.counters.tunnels.geneve
        #expect(tunnelled == decoder.counters.packets)
        #expect(decoder.counters.truncatedHeaders == 0 && decoder.counters.malformedHeaders == 0)
    }

    /// GRE with key and sequence number carrying IPv4, transparent Ethernet, ERSPAN II and III.
    @Test func greAndERSPAN() throws {
        let layers = try vxlanLayers()
        func gre(flags: UInt8, proto: UInt16, extra: [UInt8], inner: [UInt8]) -> [UInt8] {
            let body = [flags, 0, UInt8(proto >> 8), UInt8(proto & 0xff)] + extra + inner
            return ethernet(layers, type: 0x0800) + outerIPv4(layers, proto: 47, payload: body.count) + body
        }
        let keyAndSequence: [UInt8] = [0, 0, 0, 7, 0, 0, 0, 1]
        var decoder = PacketDecoder()
        #expect(
            decodeTCP(&decoder, .ethernet, gre(flags: 0, proto: 0x0800, extra: [], inner: layers.innerIP))
                == layers.expected
        )
        #expect(
            decodeTCP(
                &decoder,
                .ethernet,
                gre(flags: 0x30, proto: 0x0800, extra: keyAndSequence, inner: layers.innerIP)
            ) == layers.expected
        )
        #expect(
            decodeTCP(
                &decoder,
                .ethernet,
                gre(flags: 0x20, proto: 0x6558, extra: [0, 0, 0, 9], inner: layers.innerEthernet)
            ) == layers.expected
        )
        // ERSPAN type II: sequence number set, 8-byte header (version 1, session 5).
        let erspan2: [UInt8] = [0x10, 0x00, 0x00, 0x05, 0, 0, 0, 0]
        #expect(
            decodeTCP(
                &decoder,
                .ethernet,
                gre(flags: 0x10, proto: 0x88be, extra: [0, 0, 0, 1], inner: erspan2 + layers.innerEthernet)
            ) == layers.expected
        )
        // ERSPAN type I: no sequence number, no header.
        #expect(
            decodeTCP(&decoder, .ethernet, gre(flags: 0, proto: 0x88be, extra: [], inner: layers.innerEthernet))
                == layers.expected
        )
        // ERSPAN type III: 12-byte header, then the 8-byte platform subheader announced by the O flag.
        let erspan3: [UInt8] = [0x20, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]
        var erspan3WithSubheader = erspan3
        erspan3WithSubheader[11] = 1
        #expect(
            decodeTCP(
                &decoder,
                .ethernet,
                gre(flags: 0x10, proto: 0x22eb, extra: [0, 0, 0, 2], inner: erspan3 + layers.innerEthernet)
            ) == layers.expected
        )
        #expect(
            decodeTCP(
                &decoder,
                .ethernet,
                gre(
                    flags: 0x10,
                    proto: 0x22eb,
                    extra: [0, 0, 0, 3],
                    inner: erspan3WithSubheader + Array(repeating: 0, count: 8) + layers.innerEthernet
                )
            ) == layers.expected
        )
        #expect(decoder.counters.tunnels.gre == 7 && decoder.counters.tunnels.erspan == 4)
    }

    /// MPLS label stacks carrying IPv4, and an Ethernet pseudowire with a control word; PPPoE
    /// sessions carrying IPv4 and MPLS; IPv4 in IPv4.
    @Test func mplsPPPoEAndIPInIP() throws {
        let layers = try vxlanLayers()
        let label: [UInt8] = [0x00, 0x01, 0x40, 0x40]
        let bottom: [UInt8] = [0x00, 0x02, 0x41, 0x40]
        var decoder = PacketDecoder()
        #expect(
            decodeTCP(&decoder, .ethernet, ethernet(layers, type: 0x8847) + bottom + layers.innerIP) == layers.expected
        )
        #expect(
            decodeTCP(&decoder, .ethernet, ethernet(layers, type: 0x8847) + label + label + bottom + layers.innerIP)
                == layers.expected
        )
        #expect(
            decodeTCP(
                &decoder,
                .ethernet,
                ethernet(layers, type: 0x8847) + bottom + [0, 0, 0, 0] + layers.innerEthernet
            ) == layers.expected
        )
        #expect(decoder.counters.tunnels.mpls == 3)

        func pppoe(_ proto: UInt16, _ payload: [UInt8]) -> [UInt8] {
            let length = payload.count + 2
            return ethernet(layers, type: 0x8864) + [
                0x11, 0x00, 0x12, 0x34, UInt8(length >> 8), UInt8(length & 0xff),
                UInt8(proto >> 8), UInt8(proto & 0xff),
            ] + payload
        }
        #expect(decodeTCP(&decoder, .ethernet, pppoe(0x0021, layers.innerIP)) == layers.expected)
        #expect(decodeTCP(&decoder, .ethernet, pppoe(0x0281, bottom + layers.innerIP)) == layers.expected)
        #expect(decoder.counters.tunnels.pppoe == 2 && decoder.counters.tunnels.mpls == 4)

        let ipInIP =
            ethernet(layers, type: 0x0800) + outerIPv4(layers, proto: 4, payload: layers.innerIP.count) + layers.innerIP
        #expect(decodeTCP(&decoder, .ethernet, ipInIP) == layers.expected)
        #expect(decoder.counters.tunnels.ipInIP == 1)
    }

    /// DELIBERATELY MALFORMED: tunnels nested past the bound, label stacks without a bottom,
    /// headers cut short. Each is counted, nothing is decoded from it.
    @Test func malformedTunnelsAreCounted() throws {
        let layers = try vxlanLayers()
        var decoder = PacketDecoder()
        // Twenty IPv4-in-IPv4 headers around the packet: deeper than maximumTunnelDepth.
        var nested = layers.innerIP
        for _ in 0..<20 { nested = outerIPv4(layers, proto: 4, payload: nested.count) + nested }
        #expect(decodeTCP(&decoder, .raw, nested) == nil)
        #expect(decoder.counters.tooDeep == 1)
        // Twelve MPLS labels, none marked bottom of stack.
        let endless =
            ethernet(layers, type: 0x8847) + Array(repeating: [0x00, 0x01, 0x40, 0x40], count: 12).flatMap { $0 }
        #expect(decodeTCP(&decoder, .ethernet, endless) == nil)
        #expect(decoder.counters.tooDeep == 2)
        // A GRE header announcing a key and sequence number the packet does not hold.
        let cutGRE: [UInt8] = [0x30, 0, 0x08, 0x00, 0, 0]
        #expect(
            decodeTCP(
                &decoder,
                .ethernet,
                ethernet(layers, type: 0x0800) + outerIPv4(layers, proto: 47, payload: cutGRE.count) + cutGRE
            ) == nil
        )
        // A Geneve header announcing 63 words of options in a short datagram.
        let geneve: [UInt8] = [0x3f, 0, 0x65, 0x58, 0, 0, 1, 0] + Array(repeating: 0, count: 16)
        var udp: [UInt8] = [0x30, 0x39, 0x17, 0xc1, 0, UInt8(8 + geneve.count), 0, 0] + geneve
        #expect(
            decodeTCP(
                &decoder,
                .ethernet,
                ethernet(layers, type: 0x0800) + outerIPv4(layers, proto: 17, payload: udp.count) + udp
            ) == nil
        )
        #expect(decoder.counters.truncatedHeaders == 2)
        // A datagram to the VXLAN port without the I flag is ordinary UDP.
        udp = [0x30, 0x39, 0x12, 0xb5, 0, 16, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0]
        #expect(
            decodeTCP(
                &decoder,
                .ethernet,
                ethernet(layers, type: 0x0800) + outerIPv4(layers, proto: 17, payload: udp.count) + udp
            ) == nil
        )
        #expect(decoder.counters.udpDatagrams == 1 && decoder.counters.tunnels.vxlan == 0)
    }
}
