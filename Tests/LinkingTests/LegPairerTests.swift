import Handshakes
import Linking
import Packets
import Testing

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
        r.clientRandom = ShortBytes(hex: random)!
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

    /// Records leave in bursts: none before its window has passed, and none later than an
    /// eighth of the window after; a leg held in that eighth is not paired; records passed
    /// over for the bounds are counted only while their window was still open.
    @Test func releasesInBurstsWithinAnEighthOfTheWindow() {
        let window: Int64 = 8_000_000_000
        var pairer = LegPairer(windowNanos: window)
        func random(_ n: Int) -> String { String(repeating: String(format: "%08x", n), count: 8) }
        var released: [(uid: String, at: Int64)] = []
        var bursts = 0
        var now: Int64 = 0
        for n in 0..<400 {
            // 10 records a second for 40 s.
            now = Int64(n) * 100_000_000
            let before = released.count
            pairer.add(record("F\(n)", at: Double(now) / 1e9, random: random(n), server: "192.0.2.1", port: 443)) {
                released.append(($0.uid, $0.timestampNanos))
            }
            if released.count > before { bursts += 1 }
            for r in released[before...] {
                #expect(now - r.at > window, "\(r.uid) left before its window passed")
                #expect(now - r.at <= window + window / 8 + 100_000_000, "\(r.uid) held past the burst")
            }
        }
        // 320 records released in bursts of about ten (an eighth of 8 s, at 10 a second).
        #expect(released.count > 300)
        #expect(bursts < released.count / 5)
        // The oldest held record is past its window: a leg for it is not paired.
        let oldestHeld = released.count
        #expect(now + 50_000_000 - Int64(oldestHeld) * 100_000_000 > window)
        pairer.add(
            record("B", at: Double(now) / 1e9 + 0.05, random: random(oldestHeld), server: "10.1.1.7", port: 8443)
        ) {
            released.append(($0.uid, $0.timestampNanos))
        }
        #expect(pairer.pairedLegs == 0)
        #expect(pairer.releasedEarly == 0)

        // Bounds: at most a few records' bytes. Past them the oldest eighth leaves; only
        // records still inside their window count as released early.
        var small = LegPairer(windowNanos: window, maximumHeldBytes: 8 * 1024)
        var count = 0
        for n in 0..<200 {
            small.add(record("S\(n)", at: Double(n) * 0.001, random: random(n), server: "192.0.2.1", port: 443)) { _ in
                count += 1
            }
        }
        #expect(count > 0)
        #expect(small.releasedEarly == count)
        small.finish { _ in count += 1 }
        #expect(count == 200)
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
