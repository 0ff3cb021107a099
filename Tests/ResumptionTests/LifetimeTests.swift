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
}
