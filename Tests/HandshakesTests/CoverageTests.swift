import Foundation
import Handshakes
import TestSupport
import Testing

/// Every TCP conversation, and every UDP conversation that began like DTLS or QUIC, ends as a
/// record or as a reason in the coverage, on every recorded and peer-corpus capture; and the
/// reasons name what real captures hold.
@Suite struct CoverageTests {
    static let tcpReasons: [MissedReason] = [
        .noPayload, .notTLS, .plaintextNotUpgraded, .proxyNotCompleted, .clientHelloLostToGap, .noClientHello,
        .outOfWindow,
    ]

    static func tcpCoverage(_ statistics: ExtractionStatistics) -> Int {
        tcpReasons.reduce(0) { $0 + (statistics.connections.coverage.counts[$1] ?? 0) }
    }

    @Test func everyConversationIsAccountedFor() throws {
        var checked = 0
        var udpFlows = 0
        for capture in Paths.recordedCaptures + Paths.peerCaptures + Paths.suricataCaptures {
            guard let (records, statistics) = try? extractRecords([capture.path]) else { continue }
            let tcpRecords = records.filter { $0.transport == .tcp }.count
            let counts = statistics.connections.coverage.counts
            #expect(
                statistics.reassembly.flows == tcpRecords + Self.tcpCoverage(statistics),
                "\(capture.lastPathComponent): \(statistics.reassembly.flows) flows, \(tcpRecords) records, \(counts)"
            )
            // Every conversation that began like DTLS or QUIC is a record or an incomplete hello.
            let udpRecords = records.count - tcpRecords
            #expect(
                statistics.connections.udpFlows == udpRecords + (counts[.udpClientHelloIncomplete] ?? 0),
                "\(capture.lastPathComponent): \(statistics.connections.udpFlows) UDP flows, \(udpRecords) records"
            )
            udpFlows += statistics.connections.udpFlows
            checked += 1
        }
        #expect(checked >= Paths.recordedCaptures.count)
        #expect(udpFlows > 0, "no DTLS or QUIC conversation in the captures")
    }

    /// The SOCKS 4a request dante refused (proxy-tunnels.pcap) is a proxy handshake not
    /// completed, named by its endpoints; curl's log says which connection it was.
    @Test func refusedProxyRequestIsNamed() throws {
        let (_, statistics) = try extractRecords([Paths.captures.appendingPathComponent("proxy-tunnels.pcap").path])
        let coverage = statistics.connections.coverage
        #expect(coverage.counts[.proxyNotCompleted] == 1)
        let example = try #require(coverage.examples[.proxyNotCompleted]?.first)
        #expect(example.hasSuffix(" > 127.0.0.1:14483"), "\(example)")
        let log = String(
            decoding: try Data(contentsOf: Paths.captures.appendingPathComponent("proxy-tunnels.client.log")),
            as: UTF8.self
        )
        let socks4a = try #require(log.components(separatedBy: "### connection ").first { $0.contains("--socks4a") })
        #expect(socks4a.contains("request rejected or failed"))
    }

    /// Peer-corpus captures that hold each remaining kind of miss: HTTP (not TLS), Google's
    /// QUIC (a version not read), a capture that starts after the ClientHello.
    @Test(.enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present: skipped"))
    func peerCorpusMissesAreNamed() throws {
        var seen = Set<MissedReason>()
        for capture in Paths.peerCaptures + Paths.suricataCaptures {
            guard let (_, statistics) = try? extractRecords([capture.path]) else { continue }
            for (reason, count) in statistics.connections.coverage.counts where count > 0 { seen.insert(reason) }
        }
        for reason in [MissedReason.notTLS, .noPayload, .quicVersionNotRead, .noClientHello, .clientHelloLostToGap] {
            #expect(seen.contains(reason), "no peer-corpus capture shows \(reason.rawValue)")
        }
    }
}
