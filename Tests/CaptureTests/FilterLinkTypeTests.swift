import Capture
import Foundation
import TestSupport
import Testing

/// Captures DERIVED from recorded ones: the IP packets of `tls12-ticket.pcap` (IPv4) and
/// `ipv6.pcap` (IPv6), both recorded on Ethernet, written again behind each link layer
/// tlsreuse reads. Nothing else changes, so a filter must keep the same packets on every
/// link type, and `--bpf tcp` must keep every connection.
@Suite struct FilterLinkTypeTests {
    /// Each link type tlsreuse decodes, with the link header it puts before an IP packet.
    static let linkTypes: [(LinkType, @Sendable (_ ip: [UInt8], _ v6: Bool) -> [UInt8])] = [
        (.ethernet, { ip, v6 in [UInt8](repeating: 0, count: 12) + (v6 ? [0x86, 0xdd] : [0x08, 0x00]) + ip }),
        (.null, { ip, v6 in (v6 ? [24, 0, 0, 0] : [2, 0, 0, 0]) + ip }),  // a BSD's AF values, little-endian
        (.loop, { ip, v6 in (v6 ? [0, 0, 0, 24] : [0, 0, 0, 2]) + ip }),  // network order
        (.raw, { ip, _ in ip }),
        (.rawOpenBSD, { ip, _ in ip }),
        (.rawBSD, { ip, _ in ip }),
        // RFC 1662 framing: libpcap filters LINKTYPE_PPP only with the FF 03 bytes before the protocol.
        (.ppp, { ip, v6 in [0xff, 0x03] + (v6 ? [0x00, 0x57] : [0x00, 0x21]) + ip }),
        (.pppHDLC, { ip, v6 in [0xff, 0x03] + (v6 ? [0x00, 0x57] : [0x00, 0x21]) + ip }),
        (.ciscoHDLC, { ip, v6 in [0x0f, 0x00] + (v6 ? [0x86, 0xdd] : [0x08, 0x00]) + ip }),
        (
            .linuxSLL,
            { ip, v6 in
                [0, 0, 0, 1, 0, 6] + [UInt8](repeating: 0, count: 8) + (v6 ? [0x86, 0xdd] : [0x08, 0x00]) + ip
            }
        ),
        (
            .linuxSLL2,
            { ip, v6 in
                (v6 ? [0x86, 0xdd] : [0x08, 0x00]) + [0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6] + [0, 0, 0, 0, 0, 0]
                    + ip
            }
        ),
        (.ipv4, { ip, _ in ip }),
        (.ipv6, { ip, _ in ip }),
    ]

    /// `source`'s packets re-framed as `linkType`; nil when the link type cannot carry them
    /// (IPV4 carries no IPv6 and IPV6 no IPv4).
    /// `user` names the test: the parameterised tests run in parallel, each with its own file.
    static func derive(_ source: String, as linkType: LinkType, for user: String) throws -> URL? {
        let frame = try #require(linkTypes.first { $0.0 == linkType }).1
        let reader = try CaptureFileReader(path: Paths.captures.appendingPathComponent(source).path)
        var writer = PcapWriter(linkType: linkType.rawValue)
        var written = 0
        while let packet = reader.next() {
            let bytes = Array(packet.bytes)
            // Recorded on Ethernet: the IP packet follows the 14-byte header.
            guard packet.linkType == .ethernet, bytes.count > 14 else { continue }
            let ip = Array(bytes[14...])
            let v6 = ip[0] >> 4 == 6
            if (linkType == .ipv4 && v6) || (linkType == .ipv6 && !v6) { return nil }
            writer.add(frame(ip, v6), at: Double(packet.timestampNanos) / 1e9)
            written += 1
        }
        #expect(written > 10)
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("tlsreuse-\(getpid())-\(user)-\(linkType.rawValue)-\(source)")
        try writer.write(to: url)
        return url
    }

    static let cases: [(String, UInt32)] = ["tls12-ticket.pcap", "ipv6.pcap"].flatMap { source in
        linkTypes.map { (source, $0.0.rawValue) }
    }

    /// The filter keeps what tcpdump keeps from the same file (tcpdump maps the file's link
    /// type to libpcap's itself), and on these all-TCP captures, every packet.
    @Test(.enabled(if: toolAvailable("tcpdump"), "tcpdump is not installed"), arguments: cases)
    func filterKeepsWhatTcpdumpKeeps(source: String, linkType: UInt32) throws {
        guard let file = try Self.derive(source, as: LinkType(rawValue: linkType), for: "tcpdump") else { return }
        defer { try? FileManager.default.removeItem(at: file) }
        let filter = try PacketFilter(expression: "tcp")
        let reader = try CaptureFileReader(path: file.path)
        var (packets, kept) = (0, 0)
        while let packet = reader.next() {
            packets += 1
            if filter.matches(packet) { kept += 1 }
        }
        #expect(filter.inapplicable.isEmpty, "\(filter.inapplicable)")
        #expect(kept == packets, "LINKTYPE \(linkType): \(kept) of \(packets) kept")
        // tcpdump on Linux does not know 14 as raw IP (it is on BSD/OS); tlsreuse reads it so.
        if linkType != LinkType.rawBSD.rawValue {
            let reference = try runProcess("tcpdump", ["-nr", file.path, "tcp"]).stdout.split(separator: "\n").count
            #expect(kept == reference)
        }
    }

    /// End to end: `--bpf tcp` gives the records the capture gives without a filter.
    @Test(arguments: cases)
    func bpfTcpKeepsEveryConnection(source: String, linkType: UInt32) throws {
        guard let file = try Self.derive(source, as: LinkType(rawValue: linkType), for: "bpf") else { return }
        defer { try? FileManager.default.removeItem(at: file) }
        func uids(_ filter: [String]) throws -> [String] {
            let result = try runProcess(
                Paths.binary.path,
                ["handshakes", "--format", "jsonl", "-q"] + filter + [file.path]
            )
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout.split(separator: "\n").compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            }.compactMap { $0["uid"] as? String }
        }
        let unfiltered = try uids([])
        #expect(!unfiltered.isEmpty)
        #expect(try uids(["--bpf", "tcp"]) == unfiltered, "LINKTYPE \(linkType)")
    }
}
