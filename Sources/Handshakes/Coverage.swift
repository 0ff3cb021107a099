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
    /// "client:port > server:port" of the first conversations of each reason.
    public private(set) var examples: [MissedReason: [String]] = [:]

    public init() {}

    public var total: Int { counts.values.reduce(0, +) }

    /// Counts one conversation; the example text is built only while room is left.
    mutating func note(_ reason: MissedReason, _ example: () -> String) {
        counts[reason, default: 0] += 1
        if examples[reason, default: []].count < Self.maximumExamples {
            examples[reason, default: []].append(example())
        }
    }

    mutating func note(_ reason: MissedReason, _ start: FlowStart) {
        note(reason) {
            start.originator.address.endpoint(port: start.originator.port) + " > "
                + start.responder.address.endpoint(port: start.responder.port)
        }
    }

    public mutating func add(_ other: Coverage) {
        for (reason, count) in other.counts { counts[reason, default: 0] += count }
        for (reason, more) in other.examples {
            let room = Self.maximumExamples - examples[reason, default: []].count
            if room > 0 { examples[reason, default: []] += more.prefix(room) }
        }
    }
}
