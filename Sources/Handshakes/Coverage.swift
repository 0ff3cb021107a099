import Reassembly

/// Why a conversation left no handshake record: what tells "no TLS here" from "TLS that
/// could not be read".
public enum MissedReason: String, CaseIterable, Sendable, Hashable {
    /// TCP with no payload either way: a scan, a refused or an idle connection.
    case noPayload = "no_payload"
    /// Bytes that are neither TLS nor a plaintext start or proxy conversation followed here.
    case notTLS = "not_tls"
    /// A plaintext protocol that can upgrade (SMTP, IMAP, ...) and did not, or not within
    /// what the detector reads.
    case plaintextNotUpgraded = "plaintext_not_upgraded"
    /// A proxy conversation (HTTP CONNECT, SOCKS) whose tunnel did not open.
    case proxyNotCompleted = "proxy_not_completed"
    /// TLS, but a capture gap took bytes before a whole ClientHello.
    case clientHelloLostToGap = "client_hello_lost_to_gap"
    /// TLS from the server with no ClientHello before it: the capture began mid-handshake.
    case noClientHello = "no_client_hello"
    /// Bytes the flow table could not place: segments outside the sequence window of the
    /// connection it follows (a sequence space it was not shown the start of), with nothing
    /// readable besides.
    case outOfWindow = "out_of_window"
    /// DTLS or QUIC whose ClientHello never completed (fragments or CRYPTO data missing).
    case udpClientHelloIncomplete = "udp_client_hello_incomplete"
    /// QUIC Initial packets of a version not read here (v1 and v2 are; RFC 9000 15).
    case quicVersionNotRead = "quic_version_not_read"
}

/// Conversations without a record, by reason, with a few of each as examples. Bounded:
/// `maximumExamples` per reason, whatever the input.
public struct Coverage: Sendable, Equatable {
    public static let maximumExamples = 3

    public private(set) var counts: [MissedReason: Int] = [:]
    /// "client:port > server:port" of the earliest conversations of each reason (by start
    /// time, then text): the same whichever worker saw them first.
    public var examples: [MissedReason: [String]] { earliest.mapValues { $0.map(\.text) } }
    private var earliest: [MissedReason: [Example]] = [:]

    private struct Example: Sendable, Equatable {
        var time: Int64
        var text: String
        static func < (a: Example, b: Example) -> Bool { (a.time, a.text) < (b.time, b.text) }
    }

    public init() {}

    public var total: Int { counts.values.reduce(0, +) }

    /// Counts one conversation that started at `time`; the example text is built only when it
    /// may be among the earliest.
    mutating func note(_ reason: MissedReason, at time: Int64, _ example: () -> String) {
        counts[reason, default: 0] += 1
        if let kept = earliest[reason], kept.count == Self.maximumExamples, time > kept[kept.count - 1].time { return }
        keep(Example(time: time, text: example()), for: reason)
    }

    mutating func note(_ reason: MissedReason, _ start: FlowStart) {
        note(reason, at: start.timestampNanos) {
            start.originator.address.endpoint(port: start.originator.port) + " > "
                + start.responder.address.endpoint(port: start.responder.port)
        }
    }

    /// Adds `example` in order and keeps the earliest `maximumExamples`.
    private mutating func keep(_ example: Example, for reason: MissedReason) {
        var kept = earliest[reason, default: []]
        guard !kept.contains(example) else { return }
        kept.insert(example, at: kept.firstIndex { example < $0 } ?? kept.count)
        if kept.count > Self.maximumExamples { kept.removeLast() }
        earliest[reason] = kept
    }

    public mutating func add(_ other: Coverage) {
        for (reason, count) in other.counts { counts[reason, default: 0] += count }
        for (reason, more) in other.earliest {
            for example in more { keep(example, for: reason) }
        }
    }
}
