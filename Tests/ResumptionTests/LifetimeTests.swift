import Handshakes
import Linking
import Resumption
import TestSupport
import Testing

/// SYNTHETIC RECORDS (TestSupport's `syntheticRecord`): one lifetime rule each.
@Suite struct LifetimeTests {
    /// Refusals younger than an accepted offer contradict an age limit: no bracket, a reason.
    @Test func contradictoryPatternHasNoLifetime() {
        var linker = SessionLinker()
        var analysis = ReuseAnalysis()
        var records = [syntheticRecord("A", at: 0) { $0.serverSessionID = "aa" }]
        for (i, (offset, accepted)) in [(1.0, false), (2.0, true), (3.0, false), (20.0, true)].enumerated() {
            records.append(
                syntheticRecord("B\(i)", at: offset) {
                    $0.clientSessionID = "aa"
                    $0.resumed = accepted
                }
            )
        }
        for var record in records {
            let link = linker.link(&record)
            analysis.add(record, link: link)
        }
        let service = analysis.report().services[0]
        #expect(service.lifetime == nil)
        // B1 and B2 refused at 1 s and 3 s, younger than B3 accepted at 20 s.
        #expect(service.lifetimeBasis.gap == .acceptanceDoesNotFollowAge(refusedYounger: 2, oldestAccepted: 20))
        #expect(service.support[.sessionID]?.value == .yes)
    }

    /// A refused ticket answered with a ticket under a new key name is a key change, not expiry.
    @Test func ticketKeyChangeIsNotALifetime() {
        var linker = SessionLinker()
        var analysis = ReuseAnalysis()
        let records = [
            syntheticRecord("A", at: 0) {
                $0.ticketIssued = true
                $0.issuedTicketDigest = "t1"
                $0.issuedTicketKeyName = "k1"
            },
            syntheticRecord("B", at: 5) {
                $0.offeredTicket = true
                $0.offeredTicketDigest = "t1"
                $0.offeredTicketKeyName = "k1"
                $0.resumed = true
            },
            syntheticRecord("C", at: 9) {
                $0.offeredTicket = true
                $0.offeredTicketDigest = "t1"
                $0.offeredTicketKeyName = "k1"
                $0.resumed = false
                $0.ticketIssued = true
                $0.issuedTicketDigest = "t2"
                $0.issuedTicketKeyName = "k2"
            },
        ]
        for var record in records {
            let link = linker.link(&record)
            analysis.add(record, link: link)
        }
        let service = analysis.report().services[0]
        #expect(service.lifetime?.atLeast == 5 && service.lifetime?.atMost == nil)
        #expect(service.lifetimeBasis.gap == nil && service.lifetimeBasis.refusalsUnderNewKeyName == 1)
    }
}

@Suite struct TimeSeriesTests {
    static let second: Int64 = 1_000_000_000

    @Test func binsPerSecondWhileTheyFit() {
        var series = TimeSeries()
        series.add(at: 100 * Self.second + 300, offer: false, accepted: false)
        series.add(at: 100 * Self.second + 900, offer: true, accepted: true)
        series.add(at: 102 * Self.second, offer: true, accepted: false)
        #expect(series.startNanos == 100 * Self.second && series.binNanos == Self.second)
        #expect(
            series.bins == [
                .init(connections: 2, offers: 1, accepted: 1), .init(), .init(connections: 1, offers: 1, accepted: 0),
            ]
        )
    }

    /// A long capture widens the bins (merging pairs) instead of growing past the maximum,
    /// and no connection is lost on the way.
    @Test func longCapturesWidenTheBinsAndKeepEveryCount() {
        var series = TimeSeries()
        let day = 86_400
        for second in stride(from: 0, to: day, by: 7) {
            series.add(
                at: Int64(second) * Self.second + 5 * Self.second,
                offer: second % 2 == 0,
                accepted: second % 4 == 0
            )
        }
        #expect(series.bins.count <= TimeSeries.maximumBins)
        #expect(series.binNanos >= Int64(day / TimeSeries.maximumBins) * Self.second)
        let total = series.bins.reduce(0) { $0 + $1.connections }
        #expect(total == (day + 6) / 7)
        let offers: Int = series.bins.reduce(0) { $0 + $1.offers }
        let expectedOffers: Int = stride(from: 0, to: day, by: 7).filter { $0 % 2 == 0 }.count
        #expect(offers == expectedOffers)
        #expect(series.startNanos! % series.binNanos == 0 && series.startNanos! <= 5 * Self.second)
    }
    /// TLS 1.3 tickets read with a key log: an offer past the ticket's announced lifetime,
    /// and one whose client-given age (obfuscated age less age_add, RFC 8446 4.2.11.1) is far
    /// from the capture's, are anomalies; an offer within both is none.
    @Test func keyLogTicketAnomalies() {
        var linker = SessionLinker()
        var analysis = ReuseAnalysis()
        func offer(_ uid: String, at seconds: Double, claiming age: Double, accepted: Bool) -> HandshakeRecord {
            syntheticRecord(uid, at: seconds, version: .tls1_3) {
                $0.offeredPSK = true
                $0.pskKind = .ticket
                $0.pskIdentities = [
                    PSKOffer(
                        digest: "t1",
                        keyName: nil,
                        obfuscatedTicketAge: UInt32(age * 1000) &+ 4_000_000_000,
                        length: 100,
                        text: nil
                    )
                ]
                $0.pskSelected = accepted ? 0 : nil
                $0.resumed = accepted
            }
        }
        let records = [
            syntheticRecord("A", at: 0, version: .tls1_3) {
                $0.issuedTickets = [
                    IssuedTicket(digest: "t1", keyName: nil, lifetime: 60, ageAdd: 4_000_000_000, maxEarlyData: nil)
                ]
            },
            offer("B", at: 30, claiming: 30, accepted: true),  // within both
            offer("C", at: 40, claiming: 5, accepted: true),  // the client's clock says 5 s
            offer("D", at: 100, claiming: 100, accepted: true),  // past the 60 s lifetime
        ]
        var linked: [HandshakeRecord] = []
        for var record in records {
            let link = linker.link(&record)
            analysis.add(record, link: link)
            linked.append(record)
        }
        #expect(linked[1].resumes == "A" && linked[1].sessionAgeFrom == .issue)
        #expect(linked[1].clientTicketAge == 30 && linked[2].clientTicketAge == 5)
        let anomalies = analysis.report().anomalies
        let past = anomalies.filter { $0.kind == .ticketPastLifetime }
        let mismatch = anomalies.filter { $0.kind == .ageMismatch }
        #expect(past.map(\.uids) == [["A", "D"]])
        #expect(past.first?.facts == .ticketPastLifetime(lifetime: 60, age: 100, accepted: true))
        #expect(mismatch.map(\.uids) == [["A", "C"]])
        #expect(mismatch.first?.facts == .ageMismatch(clientAge: 5, captureAge: 40))
        // A second offer of one ticket is also a ticket-reuse, counted from its first offer.
        #expect(anomalies.filter { $0.kind == .ticketReuse }.first?.uids.first == "B")
    }
}
