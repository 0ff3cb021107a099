import Handshakes
import Linking
import TestSupport
import Testing

@Suite struct SessionLinkerTests {
    @Test func ticketWinsOverTheSessionIDSentWithIt() {
        var linker = SessionLinker()
        var issuer = syntheticRecord("A", at: 0) {
            $0.serverSessionID = "aa"
            $0.ticketIssued = true
            $0.issuedTicketDigest = "t1"
        }
        var resumer = syntheticRecord("B", at: 2) {
            $0.clientSessionID = "bb"
            $0.offeredTicket = true
            $0.offeredTicketDigest = "t1"
            $0.resumed = true
        }
        linker.link(&issuer)
        let link = linker.link(&resumer)
        #expect(resumer.offer == .ticket && resumer.resumes == "A" && resumer.sessionAge == 2)
        #expect(link?.mechanism == .ticket)
    }

    @Test func compatibilityModeSessionIDIsNoOffer() {
        var linker = SessionLinker()
        var record = syntheticRecord("A", at: 0, version: .tls1_3) {
            $0.versionsOffered = [.tls1_3, .tls1_2]
            $0.clientSessionID = ShortBytes(Array(repeating: 0xab, count: 32))
            $0.serverSessionID = $0.clientSessionID
        }
        linker.link(&record)
        #expect(record.offer == nil)
        // A TLS 1.2-only client's unknown session ID is an offer (refused here).
        var legacy = syntheticRecord("B", at: 1) { $0.clientSessionID = "cd" }
        linker.link(&legacy)
        #expect(legacy.offer == .sessionID && legacy.resumes == nil)
    }

    @Test func externalPSKIsNoOffer() {
        var linker = SessionLinker()
        var record = syntheticRecord("A", at: 0, version: .tls1_3) {
            $0.offeredPSK = true
            $0.pskKind = .external
            $0.pskIdentities = [
                PSKOffer(digest: "d", keyName: nil, obfuscatedTicketAge: 0, length: 15, text: "Client_identity")
            ]
        }
        let link = linker.link(&record)
        #expect(record.offer == nil && record.sessionAge == nil)
        #expect(link == nil)
    }

    @Test func resumedConnectionsKeepTheSessionOrigin() {
        var linker = SessionLinker()
        var full = syntheticRecord("A", at: 0) {
            $0.issuedTicketDigest = "t1"
            $0.ticketIssued = true
        }
        // B resumes t1 and is issued a fresh ticket t2 for the same session.
        var renewed = syntheticRecord("B", at: 10) {
            $0.offeredTicket = true
            $0.offeredTicketDigest = "t1"
            $0.resumed = true
            $0.ticketIssued = true
            $0.issuedTicketDigest = "t2"
        }
        var later = syntheticRecord("C", at: 25) {
            $0.offeredTicket = true
            $0.offeredTicketDigest = "t2"
            $0.resumed = true
        }
        linker.link(&full)
        linker.link(&renewed)
        linker.link(&later)
        #expect(later.resumes == "B")
        #expect(later.sessionAge == 25)  // counted from the session's start in A
    }

    /// A linker with these limits, after linking `records` in order; the records as linked.
    func linked(
        _ records: [HandshakeRecord],
        horizon: Double? = nil,
        maximumSessions: Int? = nil
    ) -> (SessionLinker, [HandshakeRecord]) {
        var limits = LinkerLimits()
        if let horizon { limits.sessionHorizonSeconds = horizon }
        if let maximumSessions { limits.maximumSessions = maximumSessions }
        var linker = SessionLinker(limits: limits)
        let out = records.map { record in
            var record = record
            linker.link(&record)
            return record
        }
        return (linker, out)
    }

    @Test func sessionsExpireAfterTheHorizon() {
        let (linker, records) = linked(
            [
                syntheticRecord("A", at: 0) { $0.serverSessionID = "aa" },
                syntheticRecord("X", at: 100) { $0.serverSessionID = "xx" },
                syntheticRecord("B", at: 120) { $0.clientSessionID = "aa" },
            ],
            horizon: 60
        )
        #expect(records[2].resumes == nil)
        #expect(linker.rememberedSessions == 1)
    }

    @Test func sessionTableIsCapped() {
        let issued = (0..<1000).map { i in
            syntheticRecord("U\(i)", at: Double(i)) { $0.serverSessionID = ShortBytes(label: "s\(i)") }
        }
        let recent = syntheticRecord("R", at: 2000) {
            $0.clientSessionID = "s999"
            $0.resumed = true
        }
        let (linker, records) = linked(issued + [recent], maximumSessions: 100)
        #expect(linker.rememberedSessions <= 100)
        #expect(linker.forgottenEarly == 900)
        #expect(records.last?.resumes == "U999")
    }

    /// The bound is for all kinds together: the oldest session of any kind goes first.
    @Test func capForgetsTheOldestOfAnyKind() {
        let (linker, records) = linked(
            [
                syntheticRecord("T", at: 0) {
                    $0.ticketIssued = true
                    $0.issuedTicketDigest = "t0"
                },
                syntheticRecord("A", at: 1) { $0.serverSessionID = "a1" },
                syntheticRecord("B", at: 2) { $0.serverSessionID = "b2" },
                syntheticRecord("C", at: 3) {
                    $0.offeredTicket = true
                    $0.offeredTicketDigest = "t0"
                    $0.resumed = true
                },
                syntheticRecord("D", at: 4) {
                    $0.clientSessionID = "a1"
                    $0.resumed = true
                },
            ],
            maximumSessions: 2
        )
        #expect(linker.rememberedSessions == 2)
        #expect(linker.forgottenEarly == 1)
        #expect(records[3].resumes == nil, "the oldest, a ticket, was forgotten")
        #expect(records[4].resumes == "A")
    }

    /// A session remembered again later (a ticket re-issued with the same bytes) expires
    /// from its latest time: once its first place in the order was skipped as stale and the
    /// entry never expired.
    @Test func sessionRememberedAgainStillExpires() {
        let (linker, _) = linked(
            [
                syntheticRecord("A", at: 0) {
                    $0.ticketIssued = true
                    $0.issuedTicketDigest = "same"
                },
                syntheticRecord("B", at: 10) {
                    $0.ticketIssued = true
                    $0.issuedTicketDigest = "same"
                },
                syntheticRecord("X", at: 200) { $0.serverSessionID = "xx" },
            ],
            horizon: 60
        )
        #expect(linker.rememberedSessions == 1)
    }
}
