import Foundation
import Handshakes
import TestSupport
import Testing

/// QUIC v1 and v2 Initial packets decrypted, their CRYPTO frames reassembled, and the hellos
/// checked against tshark's own Initial decryption (DifferentialTests compares SNI, version
/// and cipher; FingerprintTests JA3 and JA4).
@Suite struct QUICTests {
    static let captures: [URL] =
        [Paths.captures.appendingPathComponent("quic.pcap")]
        + Paths.peerCaptures.filter { $0.lastPathComponent.hasPrefix("quic__") }

    /// Per client port: whether tshark's decrypted ServerHello carries pre_shared_key (41).
    func tsharkResumed(_ capture: URL, quicPorts: Set<Int>) throws -> [Int: Bool] {
        var arguments = ["-r", capture.path]
        for port in quicPorts.sorted() where port != 443 { arguments += ["-d", "udp.port==\(port),quic"] }
        arguments += [
            "-Y", "quic && tls.handshake.type == 2", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
            "-e", "udp.dstport", "-e", "tls.handshake.extension.type",
        ]
        var resumed: [Int: Bool] = [:]
        for line in try runProcess("tshark", arguments).stdout.split(separator: "\n") {
            let cells = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard cells.count == 2, let port = Int(cells[0]) else { continue }
            resumed[port] = cells[1].split(separator: ",").contains("41")
        }
        return resumed
    }

    @Test(.enabled(if: toolAvailable("tshark"), "tshark is not installed"), arguments: captures)
    func resumptionAgreesWithTshark(capture: URL) throws {
        let records = try extractRecords(capture).filter { $0.transport == .quic }
        let truth = try tsharkResumed(capture, quicPorts: Set(records.map { Int($0.serverPort) }))
        for record in records {
            guard let resumed = truth[Int(record.clientPort)] else { continue }  // tshark saw no ServerHello
            #expect(record.resumed == resumed, "\(capture.lastPathComponent) \(record.client):\(record.clientPort)")
            #expect(record.established)
        }
        #expect(!records.isEmpty || capture.lastPathComponent == "quic__vector-max-size-crash.pcap")
    }

    /// aioquic's HTTP/3 client and server (captures/record.sh record_quic): no ticket, then the
    /// saved ticket twice, then the same ticket to a restarted server, as quic.aioquic.log says.
    @Test func recordedAioquic() throws {
        let records = try extractRecords(Paths.captures.appendingPathComponent("quic.pcap"))
        let log = try String(contentsOf: Paths.captures.appendingPathComponent("quic.aioquic.log"), encoding: .utf8)
        let offered = log.split(separator: "\n").filter { $0.hasPrefix("### connection") }.map {
            $0.hasSuffix("(ticket offered: yes)")
        }
        #expect(records.count == offered.count)
        #expect(records.map(\.offeredPSK) == offered)
        #expect(records.map(\.resumed) == [false, true, true, false])
        #expect(
            records.allSatisfy { $0.transport == .quic && $0.version == .tls1_3 && $0.ja4?.hasPrefix("q13") == true }
        )
    }

    /// The Zeek suite's QUIC traces: a Retry (quic-go), QUIC v2, Chromium resuming by PSK,
    /// and a ClientHello spread over several Initial packets in scrambled CRYPTO frames.
    @Test(.enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present"))
    func peerCorpusTraces() throws {
        let traces = Paths.peerCorpus.appendingPathComponent("zeek/traces")
        func records(_ name: String) throws -> [HandshakeRecord] {
            try extractRecords(traces.appendingPathComponent(name))
        }
        #expect(try records("quic__interop__quic-go_quic-go__retry.pcap").map(\.established) == [true])
        #expect(try records("quic__quicv2-echo-dpd-custom-port-4433.pcap").map(\.sni) == ["localhost"])
        #expect(try records("quic__chromium-115.0.5790.110-api-cirrus-com.pcap").map(\.resumption) == [.psk])
        #expect(
            try records("quic__quic-multiple-initial-fragmented-crypto.pcap").map(\.sni) == [
                "googleads.g.doubleclick.net"
            ]
        )
        #expect(try records("quic__quic-decrypt-fail-google-de-51833.pcap").map(\.sni) == ["www.google.de"])
    }

    /// A server that sends two Retry packets (suricata-verify's quic-retry capture): a client
    /// accepts only the first (RFC 9000 17.2.5.2), so the first one's connection ID keys the
    /// Initial packets that follow. tshark decrypts the ServerHello with the same keys.
    @Test(
        .enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present"),
        .enabled(if: toolAvailable("tshark"), "tshark is not installed")
    )
    func onlyTheFirstRetryChangesTheKeys() throws {
        let capture = Paths.peerCorpus.appendingPathComponent("suricata-verify/pcaps/quic-retry__input.pcap")
        let (records, statistics) = try extractRecords([capture.path])
        #expect(records.count == 1)
        #expect(statistics.connections.quicRetriesIgnored == 1)
        let record = try #require(records.first)
        let truth = try runProcess(
            "tshark",
            [
                "-r", capture.path, "-Y", "tls.handshake.type == 2", "-T", "fields", "-e",
                "tls.handshake.ciphersuite", "-e", "tls.handshake.extensions.supported_version",
            ]
        ).stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\t").map(String.init)
        #expect(truth == ["0x1301", "0x0304"])
        #expect(record.cipher?.rawValue == 0x1301 && record.version == .tls1_3)
        #expect(record.established && record.resumed == false)
    }
}
