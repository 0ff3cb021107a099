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
    static let balanced = ["lb-roundrobin", "lb-sticky", "lb-shared-tickets", "lb-tls13"]

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
        var offers = 0
        var elsewhere = 0
        for (index, verdict) in verdicts.enumerated() {
            guard let file = verdict.argument("-sess_in"),
                let saver = verdicts[..<index].lastIndex(where: { $0.argument("-sess_out") == file })
            else { continue }
            offers += 1
            if servers[index] != servers[saver] { elsewhere += 1 }
        }
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
            certificates.backends.count == 2 && certificates.backends.allSatisfy { $0.identifiedBy == "certificate" }
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
        ("lb-reconnect.pcap", "unknown", "landed on another backend"),
        ("lb-reconnect-client-side.pcap", "unknown", "several backends without stickiness"),
        ("lb-roundrobin.pcap", "yes", "lost to the balancer"),
        ("lb-alternating.pcap", "yes", "returned to the issuing backend"),
    ])
    func supportJudgedWhereOffersWent(capture: String, expected: String, reason: String) throws {
        let (records, reuse, _) = try judge(capture)
        let service = try #require(reuse.services.first)
        let support = try #require(service.support[.sessionID])
        #expect(support.value.rawValue == expected, "\(capture): \(support.reason)")
        #expect(support.reason.contains(reason), "\(capture): \(support.reason)")
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

/// SYNTHETIC RECORDS for the pairing rules (not from a capture).
@Suite struct LegPairerTests {
    func record(_ uid: String, at seconds: Double, random: String, server: String, port: UInt16) -> HandshakeRecord {
        var r = HandshakeRecord(
            uid: uid,
            timestampNanos: Int64(seconds * 1e9),
            client: IPAddress("10.0.0.1")!,
            clientPort: 1,
            server: IPAddress(server)!,
            serverPort: port
        )
        r.clientRandom = random
        return r
    }

    @Test func pairsWithinTheWindowAndKeepsOrder() {
        var pairer = LegPairer(windowNanos: 2_000_000_000)
        let random = String(repeating: "a1b2", count: 16)
        var out: [HandshakeRecord] = []
        pairer.add(record("F", at: 0, random: random, server: "192.0.2.1", port: 443)) { out.append($0) }
        pairer.add(record("X", at: 0.5, random: String(repeating: "c3d4", count: 16), server: "192.0.2.1", port: 443)) {
            out.append($0)
        }
        pairer.add(record("B", at: 0.6, random: random, server: "10.1.1.7", port: 8443)) { out.append($0) }
        #expect(out.isEmpty)
        pairer.add(record("late", at: 10, random: random, server: "10.1.1.8", port: 8443)) { out.append($0) }
        pairer.finish { out.append($0) }
        #expect(out.map(\.uid) == ["F", "X", "B", "late"])
        #expect(out[0].backend == "10.1.1.7:8443" && out[0].backendLeg == "B")
        #expect(out[2].backsideOf == "F")
        // Outside the window: not a back leg.
        #expect(out[3].backsideOf == nil)
        #expect(pairer.pairedLegs == 1)
    }

    /// Many records through the ring (it grows, wraps, and its index is rebuilt): order kept,
    /// and a back leg is still found after the rebuilds.
    @Test func keepsOrderAndPairsAcrossRingGrowthAndIndexRebuilds() {
        var pairer = LegPairer(windowNanos: 1_000_000_000)
        var out: [HandshakeRecord] = []
        func random(_ n: Int) -> String { String(repeating: String(format: "%08x", n), count: 8) }
        var uids: [String] = []
        for n in 0..<10_000 {
            // 100 records a second: about 100 held at a time, 10,000 released.
            let seconds = Double(n) / 100
            pairer.add(record("F\(n)", at: seconds, random: random(n), server: "192.0.2.1", port: 443)) {
                out.append($0)
            }
            uids.append("F\(n)")
            if n % 1000 == 999 {
                // A back leg for the record just added, to another server.
                pairer.add(record("B\(n)", at: seconds + 0.001, random: random(n), server: "10.1.1.7", port: 8443)) {
                    out.append($0)
                }
                uids.append("B\(n)")
            }
        }
        pairer.finish { out.append($0) }
        #expect(out.map(\.uid) == uids)
        #expect(pairer.pairedLegs == 10)
        #expect(out.filter { $0.backend == "10.1.1.7:8443" }.count == 10)
        #expect(out.filter { $0.backsideOf != nil }.map(\.backsideOf) == (0..<10).map { "F\($0 * 1000 + 999)" })
    }

    @Test func constantRandomsAreNotPaired() {
        var pairer = LegPairer()
        let zeros = String(repeating: "0", count: 64)
        var out: [HandshakeRecord] = []
        pairer.add(record("A", at: 0, random: zeros, server: "192.0.2.1", port: 443)) { out.append($0) }
        pairer.add(record("B", at: 0.1, random: zeros, server: "192.0.2.2", port: 443)) { out.append($0) }
        pairer.finish { out.append($0) }
        #expect(out.allSatisfy { $0.backsideOf == nil && $0.backend == nil })
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

    @Test func oneBackendWithoutACacheIsNamed() {
        var places = OfferPlaces()
        places.atIssuer = count(6, 3)
        places.atIssuerByBackend = ["10.0.0.1:443": count(3, 3), "10.0.0.2:443": count(3, 0)]
        let support = PlacedSupport.support(
            Support(value: .yes, reason: "3 of 6 session ID offers accepted"),
            offers: count(6, 3),
            places: places,
            backendsKnown: true,
            name: "session ID"
        )
        #expect(support.value == .yes)
        #expect(support.reason.hasPrefix("yes on 1 of 2 backends"), "\(support.reason)")
        #expect(support.reason.contains("10.0.0.2:443: 0 of 3"))
    }

    @Test func refusalsWithoutBackendsAreUnknownButIssuanceIsNo() {
        let refused = Support(value: .no, reason: "none of 5 session ID offers accepted")
        let unknown = PlacedSupport.support(
            refused,
            offers: count(5, 0),
            places: OfferPlaces(),
            backendsKnown: false,
            name: "session ID"
        )
        #expect(unknown.value == .unknown && unknown.reason.contains("several backends without stickiness"))
        let neverIssued = Support(value: .no, reason: "no session ID issued in 6 full handshakes", basis: .issuance)
        #expect(
            PlacedSupport.support(
                neverIssued,
                offers: count(5, 0),
                places: OfferPlaces(),
                backendsKnown: false,
                name: "session ID"
            ) == neverIssued
        )
    }
}
