import Foundation
import Handshakes
import Packets
import Pipeline
import Reports
import Resumption
import Stickiness
import TestSupport
import Testing

/// The pipeline as the command line runs it: pair legs, link, analyse.
func judge(
    _ capture: String
) throws -> (records: [HandshakeRecord], reuse: ReuseReport, stickiness: [ServiceKey: StickinessVerdict]) {
    let (records, pipeline) = try analysed(Paths.captures.appendingPathComponent(capture))
    let (reuse, stickiness) = pipeline.results()
    return (records, reuse, stickiness)
}

/// haproxy's server names and where record.sh put them.
let haproxyBackends = ["s1": "127.0.0.1:14501", "s2": "127.0.0.1:14502"]
let front = ServiceKey(server: IPAddress("127.0.0.1")!, port: 14500)

@Suite struct StickinessCaptureTests {
    static let balanced = ["lb-roundrobin", "lb-sticky", "lb-shared-tickets", "lb-tls13", "lb-tls13-keylog"]

    /// Both legs captured: each client-side connection's backend is the server haproxy's
    /// own log says it sent that client port to.
    @Test(arguments: balanced)
    func backendsMatchHaproxysLog(name: String) throws {
        let (records, reuse, _) = try judge(name + ".pcap")
        let truth = try haproxyServers(log: Paths.captures.appendingPathComponent(name + ".haproxy.log"))
        #expect(records.count == truth.count && truth.count >= 12)
        for record in records {
            let server = try #require(
                truth.first { $0.clientPort == Int(record.clientPort) }?.server,
                "\(name): client port \(record.clientPort) not in haproxy's log"
            )
            #expect(record.backend == haproxyBackends[server], "\(name) \(record.uid)")
            #expect(record.backendLeg != nil)
        }
        // Back-side connections are backends, not services of their own.
        #expect(reuse.services.map(\.key) == [front])
    }

    /// The share of offers that landed on another backend equals what haproxy's log and the
    /// client's command lines give: the server that took each -sess_in connection against
    /// the one that took the -sess_out connection that saved the session.
    @Test(arguments: balanced)
    func offersElsewhereMatchHaproxysLog(name: String) throws {
        let (_, _, stickiness) = try judge(name + ".pcap")
        let verdicts = try clientVerdicts(log: Paths.captures.appendingPathComponent(name + ".client.log"))
        let servers = try haproxyServers(log: Paths.captures.appendingPathComponent(name + ".haproxy.log")).map(
            \.server
        )
        try #require(servers.count == verdicts.count)
        let (offers, elsewhere) = offersElsewhere(verdicts: verdicts, servers: servers)
        let verdict = try #require(stickiness[front])
        #expect(
            verdict.offersElsewhere == Double(elsewhere) / Double(offers),
            "\(name): \(elsewhere) of \(offers) by haproxy's log"
        )
        #expect(!verdict.offersElsewhereIsLowerBound)
    }

    @Test(arguments: [
        ("lb-roundrobin.pcap", "not-sticky"),
        ("lb-roundrobin-client-side.pcap", "not-sticky"),
        ("lb-sticky.pcap", "sticky"),
        // Client side: two certificates show two backends; abbreviated handshakes do not show which served.
        ("lb-sticky-client-side.pcap", "sticky-or-shared"),
        ("lb-shared-tickets.pcap", "shared"),
        // Client side: same certificate, same ticket key, same software: nothing tells one
        // backend from two that share tickets, and resumptions succeed.
        ("lb-shared-tickets-client-side.pcap", "sticky-or-shared"),
        ("lb-tls13.pcap", "not-sticky"),
        // Client side: certificates encrypted; offers refused younger than accepted ones.
        ("lb-tls13-client-side.pcap", "not-sticky"),
        // nginx backends behind round robin; the client side is judged with its key log in
        // KeyLogCommandTests, without it by the age pattern.
        ("lb-tls13-keylog.pcap", "not-sticky"),
        ("lb-tls13-keylog-client-side.pcap", "not-sticky"),
        ("nginx-keylog.pcap", "sticky-or-shared"),
        // A single server looks like several sticky or sharing ones: no single-backend claim.
        ("tls12-session-id.pcap", "sticky-or-shared"),
        ("nginx-timeout.pcap", "sticky-or-shared"),
        // s_client -reconnect through round robin: every reconnect lands on the other server.
        ("lb-reconnect.pcap", "not-sticky"),
        // ... and from the client side alone, a server without a cache looks the same.
        ("lb-reconnect-client-side.pcap", "unknown"),
        // Two clients taking turns through round robin: each lands back on its own server,
        // and the backends rotate, so stickiness and rotation look alike.
        ("lb-alternating.pcap", "unknown"),
        ("lb-alternating-client-side.pcap", "sticky-or-shared"),
    ])
    func verdicts(capture: String, expected: String) throws {
        let (_, reuse, stickiness) = try judge(capture)
        for service in reuse.services {
            let verdict = try #require(stickiness[service.key])
            #expect(
                verdict.verdict.rawValue == expected,
                "\(capture): \(verdict.verdict.rawValue)\n\(verdict.evidence)"
            )
        }
    }

    @Test func evidenceNamesWhatItRestsOn() throws {
        let both = try #require(try judge("lb-shared-tickets.pcap").stickiness[front])
        #expect(
            both.evidence.contains(.legsPaired(paired: 12, of: 12, backends: ["127.0.0.1:14501", "127.0.0.1:14502"]))
        )
        #expect(
            both.evidence.contains {
                if case let .sharedTicketKey(keyName, backends) = $0 {
                    keyName.count == 12 && backends.count == 2
                } else {
                    false
                }
            }
        )
        #expect(both.backends.map(\.id) == ["127.0.0.1:14501", "127.0.0.1:14502"])
        let certificates = try #require(try judge("lb-roundrobin-client-side.pcap").stickiness[front])
        #expect(
            certificates.backends.count == 2 && certificates.backends.allSatisfy { $0.identifiedBy == .certificates }
        )
        #expect(
            certificates.evidence.contains {
                if case let .offersElsewhere(_, accepted, refused) = $0 { accepted == 0 && refused > 0 } else { false }
            }
        )
        let pattern = try #require(try judge("lb-tls13-client-side.pcap").stickiness[front])
        #expect(
            pattern.evidence.contains {
                if case let .youngRefusals(count, upTo, acceptedUpTo) = $0 {
                    count > 0 && upTo < acceptedUpTo
                } else {
                    false
                }
            }
        )
        #expect(pattern.offersElsewhereIsLowerBound)
    }

    /// Support per mechanism is judged on the offers that reached the backend that issued
    /// their session; refusals elsewhere, or refusals where nothing tells backends apart,
    /// are not a "no". The client logs are the truth: s_client printed New for every
    /// lb-reconnect connection.
    @Test(arguments: [
        ("lb-reconnect.pcap", "unknown", "lost to the balancer"),
        ("lb-reconnect-client-side.pcap", "unknown", "backends not told apart"),
        ("lb-roundrobin.pcap", "yes", "at the issuer, some lost elsewhere"),
        ("lb-alternating.pcap", "yes", "at the issuer"),
    ])
    func supportJudgedWhereOffersWent(capture: String, expected: String, evidence: String) throws {
        let (records, reuse, _) = try judge(capture)
        let service = try #require(reuse.services.first)
        let support = try #require(service.support[.sessionID])
        let offers = try #require(service.offers[.sessionID])
        #expect(support.value.rawValue == expected, "\(capture): \(support.evidence)")
        switch support.evidence {
        case let .lostToBalancer(known, made):
            #expect(evidence == "lost to the balancer" && known > 0 && known <= made && made == offers.made)
        case let .noneAcceptedBackendsUnknown(made, _):
            #expect(evidence == "backends not told apart" && made == offers.made && offers.accepted == 0)
        case let .atIssuingBackend(atIssuer, byBackend):
            let lostElsewhere = support.landedElsewhere.map { $0.made > $0.accepted } ?? false
            #expect(evidence == (lostElsewhere ? "at the issuer, some lost elsewhere" : "at the issuer"), "\(capture)")
            #expect(atIssuer.accepted > 0 && atIssuer.made <= offers.made)
            #expect(byBackend.values.reduce(0) { $0 + $1.made } == atIssuer.made)
        default: Issue.record("\(capture): \(support.evidence)")
        }
        let truth = try clientVerdicts(
            log: Paths.captures.appendingPathComponent(capture.replacingOccurrences(of: ".pcap", with: ".client.log"))
        )
        #expect(records.map(\.resumed) == truth.map(\.reused))
        if capture.hasPrefix("lb-reconnect") {
            #expect(truth.allSatisfy { !$0.reused } && records.filter { $0.offer == .sessionID }.count == 5)
        }
    }

    /// A balancer that rotates with clients taking turns: haproxy's log shows the rotation.
    @Test func alternatingClientsRotate() throws {
        let servers = try haproxyServers(log: Paths.captures.appendingPathComponent("lb-alternating.haproxy.log")).map(
            \.server
        )
        #expect(servers == ["s1", "s2", "s1", "s2", "s1", "s2", "s1", "s2"])
        let verdict = try #require(try judge("lb-alternating.pcap").stickiness[front])
        #expect(verdict.evidence.contains(.rotation))
    }

    /// The same verdicts through the command line, in JSON.
    @Test func jsonCarriesTheVerdict() throws {
        let result = try runProcess(
            Paths.binary.path,
            ["report", "--format", "json", "-q", Paths.captures.appendingPathComponent("lb-sticky.pcap").path]
        )
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let services = try #require(json["services"] as? [[String: Any]])
        #expect(services.count == 1)
        let stickiness = try #require(services[0]["stickiness"] as? [String: Any])
        #expect(stickiness["verdict"] as? String == "sticky")
        #expect((stickiness["backends"] as? [[String: Any]])?.count == 2)
        #expect(stickiness["offers_elsewhere"] as? Double == 0)
        #expect(((stickiness["evidence"] as? [String]) ?? []).count >= 2)
        // handshakes output keeps back legs, marked.
        let records = try runProcess(
            Paths.binary.path,
            ["handshakes", "--format", "jsonl", "-q", Paths.captures.appendingPathComponent("lb-sticky.pcap").path]
        )
        let lines = records.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(lines.count == 24)
        #expect(lines.filter { $0["backside_of"] is String }.count == 12)
        #expect(lines.filter { $0["backend"] is String }.count == 12)
    }
}

/// SYNTHETIC COUNTS for the support rules (not from a capture): each backend's own answer.
@Suite struct PlacedSupportTests {
    func count(_ made: Int, _ accepted: Int) -> OfferCount {
        var count = OfferCount()
        count.made = made
        count.accepted = accepted
        return count
    }

    /// TCP Fast Open: the SYN-ACK that grants a cookie carries option 34, the others do not.
    /// One nginx answers every connection, so the traits must not split it into two hosts.
    @Test func fastOpenCookieDoesNotMakeAnotherBackend() throws {
        let (records, _, stickiness) = try judge("tcp-fastopen.pcap")
        let port14490 = records.filter { $0.serverPort == 14490 }
        #expect(port14490.count == 4)
        let layouts = Set(port14490.compactMap { $0.serverTraits?.synAckOptions })
        #expect(layouts == ["2,4,8,1,3"], "\(layouts)")
        let verdict = try #require(stickiness[ServiceKey(server: IPAddress("127.0.0.1")!, port: 14490)])
        #expect(verdict.verdict == .stickyOrShared && verdict.backends.count <= 1, "\(verdict.verdict)")
    }

    /// A hand-made record of client 192.0.2.9 (or `client`) to `server`:443.
    func handMade(
        _ n: Int,
        at seconds: Double,
        client: String = "192.0.2.9",
        port: Int = 40000,
        server: String
    )
        -> HandshakeRecord
    {
        HandshakeRecord(
            uid: "C\(n)",
            timestampNanos: Int64(seconds * 1e9),
            client: IPAddress(client)!,
            clientPort: UInt16(port),
            server: IPAddress(server)!,
            serverPort: 443
        )
    }

    /// HAND-MADE RECORDS: one name served from several addresses is one service. Names
    /// compare as DNS names do, ASCII letters in either case (RFC 4343 2); a name longer
    /// than a DNS name joins by what is kept of it (its prefix, "…" and its digest).
    @Test func addressesServingOneNameAreJudgedTogether() {
        let long = String(repeating: "x", count: 16_000) + ".example"
        let cases: [(String, String, Bool)] = [
            ("www.example.com", "WWW.Example.COM", true),
            (long, long, true),
            (long, long + "x", false),
            ("www.example.com", "www.example.org", false),
            ("\u{C4}.example", "\u{E4}.example", false),  // not ASCII: no case folding
        ]
        for (first, second, joined) in cases {
            var analysis = StickinessAnalysis()
            for (n, name) in [first, second].enumerated() {
                var record = handMade(n, at: Double(n), server: "198.51.100.\(n + 1)")
                record.sni = name
                analysis.add(record)
            }
            let verdicts = analysis.verdicts()
            #expect(verdicts.count == 2)
            #expect(
                verdicts.values.allSatisfy { $0.services.count == (joined ? 2 : 1) },
                "\(first.prefix(20)) \(joined)"
            )
        }
    }

    /// HAND-MADE RECORDS: connections without the server's TCP traits (through a proxy
    /// tunnel, or no SYN-ACK captured) are no host of their own: one host answering with
    /// traits is still one backend.
    @Test func connectionsWithoutTCPTraitsAreNoOtherHost() {
        var analysis = StickinessAnalysis()
        for n in 0..<6 {
            var record = handMade(n, at: Double(n), port: 40000 + n, server: "198.51.100.1")
            record.version = .tls1_2
            record.resumed = false
            if n % 2 == 0 {
                var traits = ServerTraits(ttl: 64)
                traits.synAckWindow = 65483
                traits.synAckOptions = "2,4,8,1,3"
                record.serverTraits = traits
            }
            analysis.add(record)
        }
        let verdict = analysis.verdicts().values.first
        #expect(verdict?.backends.isEmpty == true, "\(String(describing: verdict?.backends))")
        #expect(verdict?.evidence.contains { if case .tcpTraits = $0 { true } else { false } } == false)
    }

    /// HAND-MADE RECORDS: a flood of hellos no server answered is kept by no service (it
    /// tells no backend apart): within a budget of a few hundred connections, none of them
    /// has to give way, and an answered connection after 10,000 of them is still judged.
    @Test func unansweredHellosAreNotKept() {
        var analysis = StickinessAnalysis(maximumBytes: 64 * 1024)
        for n in 0..<10_001 {
            var record = handMade(
                n,
                at: Double(n) / 1000,
                client: "10.0.\(n >> 8 & 0xFF).\(n & 0xFF)",
                server: "198.51.100.\(n == 10_000 ? 2 : 1)"
            )
            record.sni = "flood.example"
            if n == 10_000 {
                record.version = .tls1_2
                record.resumed = false
            }
            analysis.add(record)
        }
        let verdicts = analysis.verdicts()
        #expect(analysis.connectionsNotJudged == 0)
        // None was kept, so none had to give way for memory.
        #expect(
            !verdicts.values.contains { $0.evidence.contains { if case .judgedOnLatest = $0 { true } else { false } } }
        )
        // Both addresses serve the name: judged together.
        #expect(verdicts.count == 2 && verdicts.values.allSatisfy { $0.services.count == 2 })
    }

    @Test func oneBackendWithoutACacheIsNamed() {
        var places = OfferPlaces()
        places.atIssuer = count(6, 3)
        places.atIssuerByBackend = ["10.0.0.1:443": count(3, 3), "10.0.0.2:443": count(3, 0)]
        let support = PlacedSupport.support(
            Support(value: .yes, evidence: .offersAccepted(count(6, 3))),
            offers: count(6, 3),
            places: places,
            backendsKnown: true
        )
        #expect(support.value == .yes)
        #expect(
            support.evidence
                == .atIssuingBackend(
                    count(6, 3),
                    byBackend: ["10.0.0.1:443": count(3, 3), "10.0.0.2:443": count(3, 0)]
                )
        )
        // Reports names the backend that refuses its own sessions.
        let reason = support.reason(.sessionID)
        #expect(reason.hasPrefix("yes on 1 of 2 backends") && reason.contains("10.0.0.2:443: 0 of 3"), "\(reason)")
    }

    @Test func refusalsWithoutBackendsAreUnknownButIssuanceIsNo() {
        let refused = Support(value: .no, evidence: .noneAccepted(made: 5))
        let unknown = PlacedSupport.support(refused, offers: count(5, 0), places: OfferPlaces(), backendsKnown: false)
        #expect(unknown.value == .unknown)
        #expect(unknown.evidence == .noneAcceptedBackendsUnknown(made: 5, youngestRefusedAge: nil))
        let neverIssued = Support(
            value: .no,
            evidence: .noSessionIDIssued(fullHandshakes: 6, refusedOffers: 5),
            basis: .issuance
        )
        #expect(
            PlacedSupport.support(neverIssued, offers: count(5, 0), places: OfferPlaces(), backendsKnown: false)
                == neverIssued
        )
    }
}
