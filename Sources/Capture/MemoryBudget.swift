/// The one memory budget (`--memory-limit`) and each stage's share of it. Every holder that
/// grows with the input counts its bytes against its share; past it, the oldest or largest
/// holder gives way and what was dropped is counted in the report.
///
/// What does not grow with the input (code, runtime, I/O buffers, IP fragments up to
/// 8 MiB) is taken off first; the rest is shared in 32nds.
public struct MemoryBudget: Sendable, Equatable {
    /// The budget when none is given: the README's promise.
    public static let defaultLimit = 256 << 20
    /// The smallest budget accepted: below it the fixed costs leave the stages nothing.
    public static let minimumLimit = 64 << 20
    /// The largest budget accepted (1 TiB).
    public static let maximumLimit = 1 << 40
    /// Spent whatever the input: the program and runtime (about 20 MiB resident), I/O
    /// buffers, the IP defragmenter's 8 MiB, allocator slack.
    public static let fixedBytes = 40 << 20

    public let limit: Int

    public init(limit: Int = MemoryBudget.defaultLimit) {
        self.limit = min(max(limit, Self.minimumLimit), Self.maximumLimit)
    }

    private var shared: Int { limit - Self.fixedBytes }
    private func parts(_ n: Int) -> Int { shared / 32 * n }

    // Extraction: for all workers together; each worker takes its part.
    /// TCP flows, their consumers and delivered-byte rings (`FlowTable`).
    public var tcpFlows: Int { parts(10) }
    /// Out-of-order TCP bytes held across all flows.
    public var outOfOrderBytes: Int { parts(2) }
    /// DTLS and QUIC flows in reassembly (`UDPHandshakeTable`).
    public var udpFlows: Int { parts(2) }
    /// Records held back for output order behind undecided connections (`RecordSink`).
    public var recordsAwaitingOrder: Int { parts(2) }

    // Analysis: one of each per process.
    /// Records held for balancer-leg pairing (`LegPairer`).
    public var legPairing: Int { parts(2) }
    /// Sessions, tickets and identities remembered for linking, with their names (`SessionLinker`).
    public var sessionLinking: Int { parts(6) }
    /// Secrets from key logs (`--keylog`, pcapng Decryption Secrets Blocks): one table that
    /// every worker reads, and the secrets each worker finds in its pcapng files.
    public var keyLog: Int { parts(2) }
    /// Per-service and per-pair reuse statistics (`ReuseAnalysis`).
    public var reuseAnalysis: Int { parts(3) }
    /// Connections kept for the stickiness verdicts (`StickinessAnalysis`).
    public var stickiness: Int { parts(3) }
}
