import Foundation
import TestSupport
import Testing

/// The attacks of issue 14, as HAND-MADE captures written by bench/attack-captures.py (the
/// adversarial benchmark's own generator; the DTLS and QUIC ones replay datagrams recorded
/// in captures/). Each must finish without a trap, stay under the memory bound, and count
/// what it cost: outcomes, never timings (bench/attack.sh measures those).
@Suite(.enabled(if: toolAvailable("python3"), "python3 writes the attack captures"))
struct AttackTests {
    static let generator = Paths.repository.appendingPathComponent("bench/attack-captures.py").path

    /// The bound the README promises; under a sanitizer RSS is inflated by design.
    static let memoryBoundKiB = ProcessInfo.processInfo.environment["TLSREUSE_SANITIZED"] == nil ? 256 * 1024 : Int.max

    struct Outcome {
        var status: Int32
        var peakKiB: Int
        var report: [String: Any]
        var skipped: [String: Int]
        var connections: Int
        var stdout: String
    }

    /// Writes the `kind` capture of `count`, runs `arguments` on it, checks no trap and the bound.
    func attack(
        _ kind: String,
        _ count: Int,
        _ arguments: [String] = ["report", "--format", "json", "-q"]
    ) throws -> Outcome {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tlsreuse-attack-\(getpid())-\(kind)-\(count)-\(UUID().uuidString).pcap"
        )
        defer { try? FileManager.default.removeItem(at: file) }
        let made = try runProcess("python3", [Self.generator, kind, String(count), file.path])
        #expect(made.status == 0, "\(made.stderr)")
        let (result, peak) = try runMeasured(arguments + [file.path])
        #expect(!result.crashed, "\(kind): \(result.stderr)")
        #expect(peak > 0 && peak < Self.memoryBoundKiB, "\(kind): peak RSS \(peak) KiB")
        let report = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
        let capture = report["capture"] as? [String: Any] ?? [:]
        return Outcome(
            status: result.status,
            peakKiB: peak,
            report: report,
            skipped: capture["skipped"] as? [String: Int] ?? [:],
            connections: capture["tls_connections"] as? Int ?? -1,
            stdout: result.stdout
        )
    }

    /// 100,000 flows of one byte each way (once 923 MiB: a 4 KiB ring per direction): the
    /// rings hold what arrived, and past the budget the oldest flows give way, counted.
    @Test func oneByteFlows() throws {
        let outcome = try attack("tcp-onebyte", 100_000)
        #expect(outcome.status == 0)
        #expect(outcome.skipped["tcp_flows_without_tls"] == 100_000, "every flow accounted for")
        // A smaller budget sheds more, and says so.
        let tight = try attack("tcp-onebyte", 100_000, ["report", "--format", "json", "-q", "--memory-limit", "64M"])
        #expect((tight.skipped["flows_evicted_for_memory"] ?? 0) > (outcome.skipped["flows_evicted_for_memory"] ?? 0))
        #expect(tight.skipped["tcp_flows_without_tls"] == 100_000)
    }

    /// 1,000 DTLS flows with eight one-byte fragments of 128 KiB messages each (once 2 GiB,
    /// each fragment allocating its message's declared length), and one message in 65,536
    /// one-byte fragments (once 17 s, quadratic): bounded, and finished.
    @Test func dtlsFragments() throws {
        let big = try attack("dtls-big", 1000)
        #expect(big.status == 0)
        // No ClientHello ever completes: no record, and every flow is counted.
        #expect(big.connections == 0)
        #expect(big.skipped["udp_flows_without_client_hello"] == 1000, "\(big.skipped)")
        #expect(try attack("dtls-fragments", 65_536).status == 0)
    }

    /// 20,000 first fragments of datagrams that never complete: all but the 1,024 still
    /// pending at the end are dropped, and every one of those is counted.
    @Test func firstFragmentFlood() throws {
        let outcome = try attack("frag-first", 20_000)
        #expect(outcome.status == 0)
        #expect(outcome.skipped["dropped_ip_fragments"] == 20_000 - 1024)
    }

    /// 5,000 copies of a real client Initial from fresh ports (once two key derivations and
    /// two decryptions each): every one still decrypts and opens its connection.
    @Test func quicInitialFlood() throws {
        let outcome = try attack("quic-initials", 5000)
        #expect(outcome.status == 0)
        #expect(outcome.connections == 5000)
    }

    /// Whether the generator can re-encrypt a QUIC Initial (python3's `cryptography`).
    static let pythonCryptography = (try? runProcess("python3", ["-c", "import cryptography"]).status) == 0

    /// 3,000 real client Initials, each re-encrypted under its own connection ID, as 3,000
    /// clients send them: no key cache helps, each needs its own keys (once 190,000
    /// instructions each through swift-crypto). Every one decrypts and opens its connection,
    /// and the bounded key cache keeps memory flat.
    @Test(.enabled(if: pythonCryptography, "python3's cryptography module re-encrypts the Initials"))
    func quicFreshConnectionIDFlood() throws {
        let outcome = try attack("quic-fresh-dcids", 3000)
        #expect(outcome.status == 0)
        #expect(outcome.connections == 3000)
    }

    /// 30,000 real DTLS ClientHellos from fresh ports (once a scan of every flow per new one
    /// past 16,384): every hello is a record; the flows finished early are counted.
    @Test func dtlsHelloFlood() throws {
        let outcome = try attack("dtls-hellos", 30_000)
        #expect(outcome.status == 0)
        #expect(outcome.connections == 30_000)
        #expect((outcome.skipped["udp_flows_evicted"] ?? 0) >= 30_000 - 16_384)
    }

    /// One ClientHello never answered but kept alive, then 20,000 complete handshakes (once
    /// every record waited behind it): the rest go out, the stalled one comes last, counted.
    @Test func stalledHelloDoesNotHoldTheRest() throws {
        let outcome = try attack("stalled-hello", 20_000, ["handshakes", "--format", "jsonl", "-q", "--jobs", "1"])
        #expect(outcome.status == 0)
        let names = outcome.stdout.split(separator: "\n").map { line -> String in
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["sni"] as? String ?? ""
        }
        #expect(names.count == 20_001)
        #expect(names.first == "fine.example")
        #expect(names.last == "stalled.example")
        let report = try attack("stalled-hello", 20_000, ["report", "--format", "json", "-q", "--jobs", "1"])
        #expect(report.skipped["records_released_out_of_order"] == 1)
        // With workers fed by one reader, the worker holding the stalled hello holds up the
        // merge; the others set their records aside rather than wait (and stall the reader).
        for jobs in ["2", "3"] {
            let shared = try attack("stalled-hello", 20_000, ["handshakes", "--format", "jsonl", "-q", "--jobs", jobs])
            #expect(shared.status == 0)
            #expect(shared.stdout.split(separator: "\n").sorted() == outcome.stdout.split(separator: "\n").sorted())
        }
    }

    /// 20,000 handshakes, each with its own 16 KB server name (once 353 MiB: every name
    /// kept): the analysis keeps names no longer than a DNS name can be.
    @Test func distinctLongNames() throws {
        let outcome = try attack("distinct-sni", 20_000)
        #expect(outcome.status == 0)
        #expect(outcome.connections == 20_000)
    }

    /// 100,000 full handshakes, each issuing its own session under its own 253-byte name,
    /// under the smallest budget (once 130 MiB: the analysis kept sessions, names and
    /// connections by count, outside the budget): every stage stays in its part, and what
    /// the analysis could not keep is counted in the report.
    @Test func manySessionsUnderTheSmallestBudget() throws {
        let outcome = try attack(
            "many-sessions",
            100_000,
            ["report", "--format", "json", "-q", "--memory-limit", "64M"]
        )
        #expect(outcome.status == 0)
        #expect(outcome.connections == 100_000)
        #expect(outcome.peakKiB < 64 * 1024 || Self.memoryBoundKiB == .max, "peak RSS \(outcome.peakKiB) KiB")
        let notKept = outcome.report["not_kept_for_memory"] as? [String: Int] ?? [:]
        #expect((notKept["sessions_forgotten_early"] ?? 0) > 0, "\(notKept)")
        #expect((notKept["stickiness_connections"] ?? 0) > 0, "\(notKept)")
        // The default budget keeps more.
        let roomy = try attack("many-sessions", 100_000)
        let roomyNotKept = roomy.report["not_kept_for_memory"] as? [String: Int] ?? [:]
        #expect((roomyNotKept["sessions_forgotten_early"] ?? 0) < (notKept["sessions_forgotten_early"] ?? 0))
    }

    @Test func memoryLimitOption() throws {
        let capture = Paths.captures.appendingPathComponent("tls12-ticket.pcap").path
        for value in ["10M", "abc", "-1", "99999999999G"] {
            #expect(
                try runProcess(Paths.binary.path, ["report", "-q", "--memory-limit", value, capture]).status == 64,
                "\(value)"
            )
        }
        #expect(try runProcess(Paths.binary.path, ["report", "-q", "--memory-limit", "1G", capture]).status == 0)
    }
}
