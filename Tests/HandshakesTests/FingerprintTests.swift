import Foundation
import Handshakes
import TestSupport
import Testing

/// JA3 and JA3S against tshark's own computation (`tls.handshake.ja3`, `tls.handshake.ja3s`),
/// and JA4 against the JA4 project's expected outputs in the peer corpus.
@Suite struct FingerprintTests {
    /// tshark's JA3 of the first ClientHello and JA3S of the last ServerHello per client endpoint.
    func tsharkFingerprints(_ path: String, tlsPorts: Set<Int>) throws -> [String: (ja3: String?, ja3s: String?)] {
        var arguments = [
            "-r", path, "-o", "tcp.desegment_tcp_streams:TRUE", "-o", "tls.desegment_ssl_records:TRUE", "-o",
            "tcp.reassemble_out_of_order:TRUE",
        ]
        for port in tlsPorts.sorted() { arguments += ["-d", "tcp.port==\(port),tls"] }
        arguments += [
            "-Y",
            "tls.handshake.type == 1 || tls.handshake.type == 2 || dtls.handshake.type == 1 || dtls.handshake.type "
                + "== 2",
            "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|",
        ]
        // TLS and DTLS fields side by side; a row fills one of each pair.
        for field in [
            "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst", "tcp.dstport", "tls.handshake.type",
            "tls.handshake.ja3", "tls.handshake.ja3s", "udp.srcport", "udp.dstport", "dtls.handshake.type",
            "dtls.handshake.ja3", "dtls.handshake.ja3s",
        ] { arguments += ["-e", field] }
        var result: [String: (ja3: String?, ja3s: String?)] = [:]
        for line in try runProcess("tshark", arguments).stdout.split(separator: "\n") {
            var cells = line.split(separator: "\t", omittingEmptySubsequences: false).map {
                $0.split(separator: "|").last.map(String.init) ?? ""
            }
            guard cells.count >= 14 else { continue }
            var types = line.split(separator: "\t", omittingEmptySubsequences: false)[6].split(separator: "|")
            if types.isEmpty {
                // DTLS: move its fields into the TLS columns.
                types = line.split(separator: "\t", omittingEmptySubsequences: false)[11].split(separator: "|")
                cells[2] = cells[9]
                cells[5] = cells[10]
                cells[7] = cells[12]
                cells[8] = cells[13]
            } else if cells[2].isEmpty {
                // QUIC: TLS fields, UDP ports.
                cells[2] = cells[9]
                cells[5] = cells[10]
            }
            if types.contains("1") {
                let key = "\(cells[0].isEmpty ? cells[1] : cells[0]):\(cells[2])"
                // A ClientHello in fragments gets its JA3 on the frame that completes it.
                if result[key]?.ja3 == nil { result[key] = (cells[7].isEmpty ? nil : cells[7], result[key]?.ja3s) }
            }
            if types.contains("2") {
                let key = "\(cells[3].isEmpty ? cells[4] : cells[3]):\(cells[5])"
                if result[key] != nil, !cells[8].isEmpty { result[key]!.ja3s = cells[8] }
            }
        }
        return result
    }

    static let captures: [URL] =
        Paths.recordedCaptures + Paths.peerCaptures.filter { !$0.lastPathComponent.hasPrefix("quic__") }

    @Test(.enabled(if: toolAvailable("tshark"), "tshark is not installed"), arguments: captures)
    func ja3AndJA3SAgreeWithTshark(capture: URL) throws {
        let records = try extractRecords(capture)
        let truth = try tsharkFingerprints(
            capture.path,
            tlsPorts: Set(records.filter { $0.starttls == nil }.map { Int($0.serverPort) })
        )
        var compared = 0
        for record in records where !record.sslv2Hello {
            let endpoint = "\(record.client):\(record.clientPort)"
            // tshark keys IPv6 by its own text form; compare where both name the endpoint alike.
            guard let expected = truth[endpoint] else { continue }
            #expect(record.ja3 == expected.ja3, "\(capture.lastPathComponent) \(endpoint) JA3")
            if let ja3s = expected.ja3s {
                #expect(record.ja3s == ja3s, "\(capture.lastPathComponent) \(endpoint) JA3S")
            }
            compared += 1
        }
        #expect(
            compared == records.filter { !$0.sslv2Hello }.count || truth.isEmpty,
            "\(capture.lastPathComponent): compared \(compared) of \(records.count)"
        )
    }

    /// The `JA4.1` value of every TLS-over-TCP stream in the JA4 project's expected outputs.
    /// TLS over TCP ("t"), DTLS ("d") and QUIC ("q").
    @Test(.enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present"))
    func ja4MatchesTheJA4ProjectsExpectedOutputs() throws {
        let folder = Paths.peerCorpus.appendingPathComponent("ja4")
        var compared = 0
        for capture in try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("pcap").path)
            .sorted()
        {
            let expectedFile = folder.appendingPathComponent("expected/\(capture).json")
            guard let data = try? Data(contentsOf: expectedFile),
                let streams = try JSONSerialization.jsonObject(with: data) as? [[String: Any]]
            else { continue }
            let records = try extractRecords(folder.appendingPathComponent("pcap/\(capture)"))
            for stream in streams {
                guard let ja4 = stream["JA4.1"] as? String,
                    let source = stream["src"] as? String, let port = stream["srcport"] as? String
                else { continue }
                let record = records.first { "\($0.client)" == source && "\($0.clientPort)" == port }
                #expect(record != nil, "\(capture): no record for \(source):\(port)")
                #expect(record?.ja4 == ja4, "\(capture) \(source):\(port)")
                compared += 1
            }
        }
        #expect(compared >= 50, "only \(compared) JA4 values compared")
    }

    /// JA4's ALPN part where the first ALPN name is not alphanumeric at both ends (alpn-bytes.pcap:
    /// s_client sends each name below, then h2). A first byte above 0x7f gives `99`, as the JA4
    /// project's vector for 0xba 0xad does; the other names follow the spec's hex rule. tshark
    /// (which has no JA4 before 4.2) confirms each first name's length.
    @Test(.enabled(if: toolAvailable("tshark"), "tshark is not installed"))
    func ja4ALPNForNamesThatAreNotAlphanumeric() throws {
        let capture = Paths.captures.appendingPathComponent("alpn-bytes.pcap")
        let sent: [(name: [UInt8], part: String)] = [
            ([0xba, 0xad], "99"),  // the JA4 project's vector (tls-non-ascii-alpn.pcapng)
            ([0x30, 0xab], "3b"),  // the spec's own example
            ([0x78, 0xba], "7a"),  // hex 78ba
            (Array("h2-".utf8), "6d"),  // hex 68322d: first and last characters
            (Array("a".utf8), "aa"),  // one byte is both ends
            ([0x01, 0x68, 0x32], "02"),  // hex 016832
        ]
        let records = try extractRecords(capture).sorted { $0.timestampNanos < $1.timestampNanos }
        #expect(records.count == sent.count)
        let lengths = try runProcess(
            "tshark",
            [
                "-r", capture.path, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e",
                "tls.handshake.extensions_alpn_str_len",
            ]
        ).stdout.split(separator: "\n").map { $0.split(separator: ",").first.map(String.init) ?? "" }
        #expect(lengths == sent.map { String($0.name.count) })
        for (record, expected) in zip(records, sent) {
            let ja4 = try #require(record.ja4)
            #expect(String(ja4.dropFirst(8).prefix(2)) == expected.part, "\(expected.name): \(ja4)")
            if expected.name.allSatisfy({ $0 < 0x80 }) {
                #expect(record.alpnOffered.first.map { Array($0.utf8) } == expected.name)
            }
        }
    }
}
