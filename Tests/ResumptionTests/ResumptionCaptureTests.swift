import Foundation
import Handshakes
import Packets
import Pipeline
import Reports
import Resumption
import TestSupport
import Testing

/// Records of a capture, linked, with the reuse report.
func analyse(
    _ capture: String,
    filter: RecordFilter = RecordFilter(),
    options: ReuseOptions = ReuseOptions()
) throws -> ([HandshakeRecord], ReuseReport) {
    var pipelineOptions = PipelineOptions()
    pipelineOptions.filter = filter
    pipelineOptions.reuse = options
    let (records, pipeline) = try analysed(Paths.captures.appendingPathComponent(capture), pipelineOptions)
    return (records, pipeline.results().reuse)
}

func clientLog(_ capture: String) throws -> [ClientVerdict] {
    let base = capture.replacingOccurrences(of: ".pcapng", with: "").replacingOccurrences(of: ".pcap", with: "")
    return try clientVerdicts(log: Paths.captures.appendingPathComponent(base + ".client.log"))
}

/// Which earlier connection each connection's offer came from, according to how the client
/// was run: a reconnect resumes the first connection of its run; `-sess_in FILE` offers
/// the session that `-sess_out FILE` saved.
func truthIssuer(_ verdicts: [ClientVerdict], _ index: Int) -> Int? {
    let verdict = verdicts[index]
    if let first = verdict.reconnectOf {
        // s_client -reconnect keeps the session of its latest full handshake: a refused offer
        // brings a new one. It has nothing to offer when that handshake left no session.
        guard let issuer = (first..<index).last(where: { !verdicts[$0].reused }) else { return nil }
        return verdicts[issuer].heldSession ? issuer : nil
    }
    guard let file = verdict.argument("-sess_in"),
        let issuer = verdicts[..<index].lastIndex(where: { $0.argument("-sess_out") == file })
    else {
        return nil
    }
    // A TLS 1.3 client offers no ticket past its lifetime (RFC 8446 4.6.1): OpenSSL's does not.
    if verdicts[issuer].version == "TLSv1.3", let lifetime = verdicts[issuer].ticketLifetimeHint,
        let saved = verdicts[issuer].startedAt, let started = verdict.startedAt, started - saved > lifetime
    {
        return nil
    }
    return issuer
}

@Suite struct ResumptionCaptureTests {
    /// Every recorded capture with a client log.
    static let linkedCaptures: [String] = Paths.recordedCaptures.map(\.lastPathComponent).filter {
        let base = $0.replacingOccurrences(of: ".pcapng", with: "").replacingOccurrences(of: ".pcap", with: "")
        return FileManager.default.fileExists(atPath: Paths.captures.appendingPathComponent(base + ".client.log").path)
    }

    @Test func everyCaptureIsChecked() { #expect(Self.linkedCaptures.count >= 23) }

    /// QUIC (aioquic): the client overwrites its ticket file with each new ticket, so each
    /// offer carries an identity never offered before and links to no earlier offer. PSK
    /// support is "yes" from the accepted offers.
    @Test func quicTicketOffersAreLinked() throws {
        let (records, report) = try analyse("quic.pcap")
        #expect(records.count == 4)
        #expect(records.dropFirst().allSatisfy { $0.offer == .psk && $0.pskFirstOfferedBy == nil })
        #expect(Set(records.dropFirst().compactMap { $0.pskIdentities.first?.digest }).count == 3)
        #expect(report.services.first?.support[.psk]?.value == .yes)
    }

    /// `handshakes` runs the pipeline without the per-service analyses: its records, linked
    /// and paired with their balancer legs, are those the report reads, and no service is judged.
    @Test(arguments: ["tls12-ticket.pcap", "tls13-psk.pcap", "lb-tls13-keylog.pcap", "lb-sticky.pcap", "quic.pcap"])
    func recordsWithoutServiceAnalysesAreTheSame(capture: String) throws {
        let url = Paths.captures.appendingPathComponent(capture)
        var recordsOnly = PipelineOptions()
        recordsOnly.analysesServices = false
        let (withAnalyses, full) = try analysed(url)
        let (withoutAnalyses, bare) = try analysed(url, recordsOnly)
        #expect(withAnalyses.contains { $0.offer != nil || $0.backend != nil })
        #expect(withoutAnalyses == withAnalyses)
        #expect(!full.results().reuse.services.isEmpty)
        #expect(bare.results().reuse.services.isEmpty)
        #expect(bare.connections == full.connections)
    }

    /// `resumes` (TLS 1.2) and `psk_first_offered_by` (TLS 1.3) point at the connection the
    /// client's session came from, as the client's own command lines say.
    @Test(arguments: linkedCaptures)
    func linksMatchHowTheClientWasRun(capture: String) throws {
        let (records, _) = try analyse(capture)
        let verdicts = try clientLog(capture)
        try #require(
            records.count == verdicts.count,
            "\(capture): \(records.count) records, \(verdicts.count) client connections"
        )
        for (index, record) in records.enumerated() {
            guard let issuer = truthIssuer(verdicts, index) else {
                #expect(record.resumes == nil, "\(capture) #\(index): unexpected link")
                continue
            }
            let issuerRecord = records[issuer]
            if record.version?.isTLS13Family == true {
                #expect(record.offer == .psk)
                #expect(record.resumes == nil)
                // The first connection to offer the saved identity.
                let firstOffer = records.indices.first {
                    truthIssuer(verdicts, $0) == issuer && records[$0].version?.isTLS13Family == true
                }!
                if firstOffer == index {
                    #expect(record.pskFirstOfferedBy == nil)
                } else {
                    #expect(record.pskFirstOfferedBy == records[firstOffer].uid, "\(capture) #\(index)")
                }
            } else if issuerRecord.ticketIssued || !(issuerRecord.serverSessionID ?? "").isEmpty {
                #expect(
                    record.resumes == issuerRecord.uid,
                    "\(capture) #\(index): resumes \(String(describing: record.resumes)), client ran from #\(issuer)"
                )
                #expect(record.offer != nil)
            } else {
                // The issuer handed out nothing to resume (no-resumption server).
                #expect(record.resumes == nil)
            }
        }
    }

    /// `session_age` equals the time between the client runs that saved and offered the
    /// session (TLS 1.2), or between the first and this offer (TLS 1.3).
    @Test(arguments: linkedCaptures)
    func sessionAgesMatchWhenTheClientConnected(capture: String) throws {
        let (records, _) = try analyse(capture)
        let verdicts = try clientLog(capture)
        try #require(records.count == verdicts.count)
        var checked = 0
        for (index, record) in records.enumerated() {
            guard let age = record.sessionAge, let started = verdicts[index].startedAt,
                let issuer = truthIssuer(verdicts, index)
            else { continue }
            let from: Int
            if record.version?.isTLS13Family == true, record.sessionAgeFrom == .firstOffer {
                from = records.indices.first {
                    truthIssuer(verdicts, $0) == issuer && records[$0].version?.isTLS13Family == true
                }!
            } else {
                // TLS 1.2: the issuing run; TLS 1.3: the client's full handshake that saved the ticket.
                #expect(
                    record.sessionAgeFrom == (record.version?.isTLS13Family == true ? .fullHandshake : .issue),
                    "\(capture) #\(index)"
                )
                from = issuer
            }
            guard let origin = verdicts[from].startedAt else { continue }
            #expect(
                abs(age - (started - origin)) < 0.25,
                "\(capture) #\(index): session_age \(age), client runs \(started - origin) s apart"
            )
            checked += 1
        }
        if ["nginx-timeout.pcap", "moved-session.pcap", "tls13-psk.pcap"].contains(capture) { #expect(checked >= 2) }
    }

    /// nginx with `ssl_session_timeout 4s`, offers at 1, 2, 3, 5 and 8 s: the lifetime
    /// bracket holds the configured 4 s.
    @Test func nginxTimeoutBracketContainsTheConfiguredTimeout() throws {
        let (records, report) = try analyse("nginx-timeout.pcap")
        let verdicts = try clientLog("nginx-timeout.pcap")
        #expect(records.map(\.resumed) == verdicts.map(\.reused))
        #expect(verdicts.map(\.reused) == [false, true, true, true, false, false])
        let service = try #require(report.services.first)
        let lifetime = try #require(service.lifetime, "\(service.lifetimeReason ?? "")")
        #expect(lifetime.mechanism == .sessionID)
        #expect(lifetime.atLeast < 4 && lifetime.atLeast > 2.5)
        #expect((lifetime.atMost ?? 0) > 4 && (lifetime.atMost ?? 0) < 6)
        #expect(service.support[.sessionID]?.value == .yes)
        #expect(
            service.offers[.sessionID]
                == {
                    var c = OfferCount()
                    c.made = 5
                    c.accepted = 3
                    return c
                }()
        )
        // Default buckets: 3 accepted under 5 s; the 5 s offer lands in <=5 or <=10; 8 s in <=10.
        #expect(service.byAge.reduce(0) { $0 + $1.offers } == 5)
        #expect(service.byAge[0].accepted == 3)
    }

    /// The classic probe (captures/record.sh probe_intervals): one saved session offered at
    /// 5, 10, 15 and 30 s to nginx with `ssl_session_timeout 20s`. Each probe counts in the
    /// bucket of its nominal interval, and the bracket holds 20 s (TLS 1.2 session ID and
    /// ticket). OpenSSL's client does not offer a TLS 1.3 ticket past its 20 s lifetime, so
    /// TLS 1.3 gets a lower bound below 20 s, with ages from the full handshake.
    @Test func probesAtNominalIntervalsFitTheTimeout() throws {
        let (records, report) = try analyse("probe-intervals.pcap")
        let verdicts = try clientLog("probe-intervals.pcap")
        #expect(records.map(\.resumed) == verdicts.map(\.reused))
        let edges = ReuseOptions().ageBucketEdges
        for (port, mechanism) in [(14460, Mechanism.sessionID), (14461, .ticket)] {
            let service = try #require(report.services.first { $0.key.port == port })
            let lifetime = try #require(service.lifetime, "\(port): \(service.lifetimeReason ?? "")")
            #expect(lifetime.mechanism == mechanism)
            #expect(lifetime.atLeast < 20 && (lifetime.atMost ?? 0) > 20, "\(port): \(lifetime)")
            // Ages 5.0x, 10.0x, 15.0x, 30.0x: buckets 0-5, 5-10, 10-30, 10-30.
            let ages = service.offerAges.map(\.age)
            #expect(ages.count == 4)
            #expect(ages.map { AgeBucket.index(of: $0, edges: edges) } == [0, 1, 2, 2], "\(port): \(ages)")
            #expect(service.byAge.map(\.offers).prefix(3) == [1, 1, 2])
            #expect(service.offerAges.map(\.accepted) == [true, true, true, false])
        }
        // TLS 1.3: ages from the full handshake that issued the ticket, so the probes land
        // at their intervals too; no offer past the ticket's lifetime, so a lower bound.
        let tls13 = try #require(report.services.first { $0.key.port == 14462 })
        #expect(
            tls13.lifetime?.mechanism == .psk && tls13.lifetime?.atMost == nil
                && tls13.lifetime?.fromFirstOffer == false
        )
        #expect((tls13.lifetime?.atLeast ?? 99) < 20 && (tls13.lifetime?.atLeast ?? 0) > 14)
        #expect(tls13.offerAges.map { AgeBucket.index(of: $0.age, edges: edges) } == [0, 1, 2])
    }

    /// Ages a probe's client adds to its nominal interval still count at that interval.
    @Test func bucketToleranceRule() {
        let edges: [Double] = [5, 10, 30, 300, 3600]
        #expect(AgeBucket.index(of: 4.9, edges: edges) == 0)
        #expect(AgeBucket.index(of: 5.4, edges: edges) == 0)  // within 10% of 5 s
        #expect(AgeBucket.index(of: 5.6, edges: edges) == 1)
        #expect(AgeBucket.index(of: 30.9, edges: edges) == 2)  // within 1 s of 30 s
        #expect(AgeBucket.index(of: 31.1, edges: edges) == 3)
        #expect(AgeBucket.index(of: 4000, edges: edges) == 5)
        #expect(
            formatAge(14.942) == "15 s" && formatAge(2.96) == "3 s" && formatAge(2.94) == "2.9 s"
                && formatAge(0.05) == "50 ms"
        )
    }

    @Test func movedSessionIsReported() throws {
        let (records, report) = try analyse("moved-session.pcap")
        let verdicts = try clientLog("moved-session.pcap")
        #expect(records.map(\.resumed) == verdicts.map(\.reused))
        let moved = report.anomalies.filter { $0.kind == .movedSession }
        // Ticket: 127.0.0.2 -> 127.0.0.3; session ID: 127.0.0.2 -> 127.0.0.4 (each accepted resumption).
        let expected = records.indices.filter { records[$0].resumed == true }.map {
            [records[truthIssuer(verdicts, $0)!].uid, records[$0].uid]
        }
        #expect(moved.map(\.uids) == expected)
        #expect(moved.count >= 2)
        #expect(
            moved.first?.facts
                == .movedSession(
                    mechanism: .ticket,
                    issuedTo: IPAddress("127.0.0.2")!,
                    resumedFrom: IPAddress("127.0.0.3")!
                )
        )
        // The last run changes the SNI: reported when the server accepted it, as the client printed.
        let sniChanged = report.anomalies.filter { $0.kind == .sniChanged }
        #expect(sniChanged.count == (verdicts.last!.reused ? 1 : 0))
    }

    @Test func ticketReuseIsReported() throws {
        let (records, report) = try analyse("tls13-psk.pcap")
        let reuse = report.anomalies.filter { $0.kind == .ticketReuse }
        #expect(reuse.count == 1)
        #expect(reuse.first?.uids == records.filter { $0.offeredPSK }.map(\.uid))
        #expect(reuse.first?.uids.count == 3)
    }

    @Test(arguments: [
        // -no_ticket: the client accepts tickets and is never given one.
        ("tls12-session-id.pcap", "yes", "no", "unknown"),
        ("tls12-ticket.pcap", "unknown", "yes", "unknown"),
        ("tls13-psk.pcap", "unknown", "unknown", "yes"),
        ("refused.pcap", "no", "no", "unknown"),
        ("nginx-timeout.pcap", "yes", "no", "unknown"),
    ])
    func supportPerMechanism(capture: String, sessionID: String, ticket: String, psk: String) throws {
        let (_, report) = try analyse(capture)
        let service = try #require(report.services.first)
        #expect(
            service.support[.sessionID]?.value.rawValue == sessionID,
            "\(String(describing: service.support[.sessionID]?.evidence))"
        )
        #expect(
            service.support[.ticket]?.value.rawValue == ticket,
            "\(String(describing: service.support[.ticket]?.evidence))"
        )
        #expect(service.support[.psk]?.value.rawValue == psk)
    }

    /// OpenSSL with cache and tickets off sends an empty session ID: its clients have nothing
    /// to offer, so session-ID support is "no" though no offer was refused.
    @Test func serverThatIssuesNothing() throws {
        let (records, report) = try analyse("no-resumption.pcap")
        let service = try #require(report.services.first { $0.key.port == 14416 })
        #expect(service.resumed == 0)
        #expect(service.support[.sessionID]?.value == .no)
        let fullHandshakes = records.filter { $0.serverPort == 14416 && $0.resumed == false }.count
        #expect(fullHandshakes > 0)
        #expect(
            service.support[.sessionID]?.evidence
                == .noSessionIDIssued(
                    fullHandshakes: fullHandshakes,
                    refusedOffers: service.offers[.sessionID]?.made ?? 0
                )
        )
        #expect(service.support[.ticket]?.value == .no)
        #expect(records.filter { $0.serverPort == 14416 }.allSatisfy { $0.serverSessionID == "" && !$0.ticketIssued })
    }

    @Test func tls13RefusalIsNotCalledALifetimeWithoutSaying() throws {
        let (_, report) = try analyse("tls13-psk.pcap")
        let service = try #require(report.services.first)
        // The ticket is encrypted: the basis says where TLS 1.3 ages count from (here every
        // age from the client's last full handshake, none from an identity's first offer).
        #expect(service.lifetime?.mechanism == .psk)
        #expect(service.lifetimeBasis.mechanism == .psk && service.lifetimeBasis.gap == nil)
        #expect(service.lifetimeBasis.agesFromFirstOffer == 0 && service.lifetime?.fromFirstOffer == false)
        #expect(service.lifetimeReason?.contains("TLS 1.3 ages count from the client's last full handshake") == true)
    }

    @Test func filtersSelectConnections() throws {
        var byClient = RecordFilter()
        byClient.client = .init("127.0.0.3")
        #expect(try analyse("moved-session.pcap", filter: byClient).0.count == 1)
        var byServer = RecordFilter()
        byServer.server = .init("127.0.0.1")
        byServer.serverPort = 14415
        #expect(try analyse("moved-session.pcap", filter: byServer).0.count == 3)
        var bySNI = RecordFilter()
        bySNI.sni = "BETA.test"
        #expect(try analyse("moved-session.pcap", filter: bySNI).0.count == 1)
        let all = try analyse("nginx-timeout.pcap").0
        var window = RecordFilter()
        window.sinceNanos = all[2].timestampNanos
        window.untilNanos = all[4].timestampNanos
        let windowed = try analyse("nginx-timeout.pcap", filter: window).0
        #expect(windowed.map(\.uid) == [all[2].uid, all[3].uid])
        // Links still resolve to the issuer outside the window.
        #expect(windowed.first?.resumes == all[0].uid)
    }

    @Test func ageBucketsFollowTheOption() throws {
        var options = ReuseOptions()
        options.ageBucketEdges = [1.5, 4.5]
        let (_, report) = try analyse("nginx-timeout.pcap", options: options)
        let buckets = try #require(report.services.first).byAge
        #expect(buckets.map(\.maxAge) == [1.5, 4.5, nil])
        // Ages 1, 2, 3, 4.9 and 7.9 s: 4.9 s is within 10% of the 4.5 s edge, so below it.
        #expect(buckets.map(\.offers) == [1, 3, 1])
        #expect(buckets.map(\.accepted) == [1, 2, 0])
    }
}

/// The command line's JSON report, parsed back.
@Suite struct ReportCommandTests {
    @Test func jsonReportHasTheDocumentedShape() throws {
        let result = try runProcess(
            Paths.binary.path,
            [
                "report", "--format", "json", "-q",
                Paths.captures.appendingPathComponent("nginx-timeout.pcap").path,
            ]
        )
        #expect(result.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(Set(json.keys).isSuperset(of: ["capture", "services", "pairs", "anomalies"]))
        let service = try #require((json["services"] as? [[String: Any]])?.first)
        for key in [
            "server", "port", "names", "connections", "full", "resumed", "offers", "support", "by_age", "lifetime",
            "stickiness",
        ] {
            #expect(service[key] != nil, "missing \(key)")
        }
        let lifetime = try #require(service["lifetime"] as? [String: Any])
        let atLeast = try #require(lifetime["at_least"] as? Double)
        let atMost = try #require(lifetime["at_most"] as? Double)
        #expect(atLeast < 4 && atMost > 4)
        let offers = try #require(service["offers"] as? [String: [String: Int]])
        #expect(offers["session_id"] == ["made": 5, "accepted": 3])
        let pairs = try #require(json["pairs"] as? [[String: Any]])
        #expect(
            (pairs.first?["connections"] as? [[String: Any]])?.map { $0["verdict"] as? String } == [
                "full", "resumed", "resumed", "resumed", "refused", "refused",
            ]
        )
    }

    @Test func plainInvocationIsTheReport() throws {
        let path = Paths.captures.appendingPathComponent("tls12-ticket.pcap").path
        let plain = try runProcess(Paths.binary.path, ["-q", path])
        let report = try runProcess(Paths.binary.path, ["report", "-q", path])
        #expect(plain.status == 0 && plain.stdout == report.stdout)
        #expect(plain.stdout.contains("TICKET"))
    }

    @Test func handshakesCarryTheLinks() throws {
        let result = try runProcess(
            Paths.binary.path,
            [
                "handshakes", "--format", "jsonl", "-q",
                Paths.captures.appendingPathComponent("tls12-session-id.pcap").path,
            ]
        )
        let lines = result.stdout.split(separator: "\n").map {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(lines.count == 6)
        let first = lines[0]?["uid"] as? String
        #expect(
            lines.dropFirst().allSatisfy {
                $0?["resumes"] as? String == first && $0?["offer"] as? String == "session_id"
            }
        )
        #expect(lines[0]?["resumes"] is NSNull)
    }

    @Test func badOptionsExitWithUsage() throws {
        let path = Paths.captures.appendingPathComponent("tls12-ticket.pcap").path
        for arguments in [
            ["report", "--age-buckets", "5,2", path], ["report", "--client", "not-an-address", path],
            ["report", "--since", "yesterday", path], ["report"],
        ] {
            let result = try runProcess(Paths.binary.path, arguments)
            #expect(result.status == 64, "\(arguments): \(result.status)")
        }
    }
}
