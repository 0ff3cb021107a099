import Packets
import Reassembly
import TLSWire

/// The key logs of one worker's extraction: given on the command line, and grown by the
/// secrets its input carries. Read and written only on the worker's thread, as its flow
/// table is.
final class KeyLogStore: @unchecked Sendable {
    var keyLog: KeyLog
    init(_ keyLog: KeyLog) { self.keyLog = keyLog }
}

/// The heavy part of a connection's state, allocated at its first payload byte and
/// dropped when it is finished, so idle and non-TLS flows stay small in the flow table.
final class HandshakeSession {
    var machine = HandshakeMachine()
    var originatorDecoder = TLSStreamDecoder(streamTag: 0)
    var responderDecoder = TLSStreamDecoder(streamTag: 1)
    var sequence: Int?
    /// The plaintext start of a connection that may upgrade to TLS (STARTTLS and kin);
    /// nil once decided, and for connections that begin with TLS.
    private var plaintext: Detecting<StartTLSDetector>?
    private var firstBytesSeen = false
    /// Plaintext that never upgraded, or a proxy conversation that opened no tunnel: nothing
    /// more to follow.
    private var abandoned = false
    private var proxyFailed = false
    private(set) var upgrade: StartTLSProtocol?
    /// The start of a connection to a proxy (HTTP CONNECT, SOCKS); nil once the tunnel
    /// opened or the conversation was not one.
    private var proxy: Detecting<ProxyTunnelDetector>?
    /// The tunnel the connection's TLS went through, and the target the client named.
    private(set) var tunnel: (kind: ProxyTunnelKind, target: ProxyTarget)?

    func feed(_ bytes: UnsafeRawBufferPointer, from direction: FlowDirection) {
        if !firstBytesSeen, let first = bytes.first {
            firstBytesSeen = true
            // A TLS record (content type 22) or an SSL 2.0 header goes straight to the decoders.
            if first != 0x16, first & 0x80 == 0 {
                if tunnel == nil, direction == .fromOriginator, ProxyTunnelDetector.looksLikeProxyStart(bytes) {
                    proxy = Detecting(ProxyTunnelDetector())
                } else if StartTLSDetector.looksLikePlaintextStart(bytes, fromClient: direction == .fromOriginator) {
                    plaintext = Detecting(StartTLSDetector())
                }
            }
        }
        if let opening = proxy {
            switch opening.detector.add(bytes, fromClient: direction == .fromOriginator) {
            case .undecided:
                return
            case .notATunnel:
                proxy = nil
                abandoned = true
                proxyFailed = true
                return
            case let .tunnel(kind, target, clientOffset, serverOffset):
                tunnel = (kind, target)
                let detector = opening.detector
                proxy = nil
                // The tunnelled bytes start over, as a connection of their own: TLS, or a
                // plaintext start that upgrades.
                firstBytesSeen = false
                replay(detector.client, from: clientOffset, detector.server, from: serverOffset)
                return
            }
        }
        if let opening = plaintext {
            switch opening.detector.add(bytes, fromClient: direction == .fromOriginator) {
            case .undecided:
                return
            case .notStartTLS:
                plaintext = nil
                abandoned = true
                return
            case let .upgraded(kind, clientOffset, serverOffset):
                upgrade = kind
                let detector = opening.detector
                plaintext = nil
                replay(detector.client, from: clientOffset, detector.server, from: serverOffset)
                return
            }
        }
        if abandoned { return }
        if direction == .fromOriginator {
            originatorDecoder.feed(bytes, handler: &machine)
        } else {
            responderDecoder.feed(bytes, handler: &machine)
        }
    }

    /// Feeds what a detector held past the handshake it followed (a STARTTLS upgrade, a proxy
    /// tunnel): the client's bytes first (its ClientHello), then the server's.
    private func replay(_ client: [UInt8], from clientOffset: Int, _ server: [UInt8], from serverOffset: Int) {
        client.withUnsafeBytes {
            if clientOffset < $0.count {
                feed(UnsafeRawBufferPointer(rebasing: $0[clientOffset...]), from: .fromOriginator)
            }
        }
        server.withUnsafeBytes {
            if serverOffset < $0.count {
                feed(UnsafeRawBufferPointer(rebasing: $0[serverOffset...]), from: .fromResponder)
            }
        }
    }

    func skip(_ count: Int, from direction: FlowDirection) {
        // A gap in the plaintext part: the upgrade cannot be followed.
        if plaintext != nil || proxy != nil || abandoned {
            plaintext = nil
            proxy = nil
            abandoned = true
            return
        }
        if direction == .fromOriginator {
            originatorDecoder.skip(count, handler: &machine)
        } else {
            responderDecoder.skip(count, handler: &machine)
        }
    }

    /// Why the connection left no record, when it left none.
    var missedReason: MissedReason {
        if proxy != nil || proxyFailed { return .proxyNotCompleted }
        if plaintext != nil || abandoned { return .plaintextNotUpgraded }
        if machine.sawServerMessageFirst { return .noClientHello }
        return .notTLS
    }

    /// What a session costs beyond its buffers: the object, the handshake machine and the
    /// parsed hellos it keeps (measured: 100,000 one-byte flows take 1.26 KB each in all,
    /// entry and rings included).
    static let fixedBytes = 1024

    /// Memory held: the fixed part, the decoders' buffers, the ClientHello kept until the
    /// record is made (a hostile one is as long as a message may be) and any plaintext kept.
    var heldBytes: Int {
        Self.fixedBytes + originatorDecoder.bufferedBytes + responderDecoder.bufferedBytes
            + (machine.clientHello?.retainedBytes ?? 0) + (plaintext?.detector.bufferedBytes ?? 0)
            + (proxy?.detector.bufferedBytes ?? 0)
    }

    var interest: StreamInterest {
        if machine.decided || abandoned { return [] }
        if plaintext != nil || proxy != nil { return .both }
        var interest: StreamInterest = []
        if !originatorDecoder.isStopped { interest.insert(.fromOriginator) }
        if !responderDecoder.isStopped { interest.insert(.fromResponder) }
        return interest
    }
}

/// A detector of a connection's plaintext start, held by reference: most connections have
/// none, and asking whether there is one is then a pointer test, where an optional struct
/// of arrays was copied and destroyed through its value witnesses on every segment.
private final class Detecting<Detector> {
    var detector: Detector
    init(_ detector: Detector) { self.detector = detector }
}

/// One TCP connection as the Handshakes stage sees it: the flow table calls it with
/// in-order bytes, and it hands a `HandshakeRecord` to the sink when it has decided.
public struct ConnectionTracker: StreamConsumer {
    public typealias Sink = RecordSink

    private let start: FlowStart
    private var session: HandshakeSession?
    /// The responder's traits, once `sawResponder` (a plain field, changed in place).
    private var responderTraits = ServerTraits(ttl: 0)
    private var sawResponder = false
    /// Directions that sent segments the flow table could not place (out of window).
    private var outOfWindow: StreamInterest = []

    public init(start: FlowStart) { self.start = start }

    public var heldBytes: Int { session?.heldBytes ?? 0 }

    public mutating func receive(
        _ bytes: UnsafeRawBufferPointer,
        from direction: FlowDirection,
        at timestampNanos: Int64,
        sink: inout RecordSink
    ) -> StreamInterest {
        if self.session == nil {
            let session = HandshakeSession()
            session.machine.keyLogStore = sink.keyLogStore
            self.session = session
        }
        // Used through an unretained reference: `self.session` holds it through the call, and
        // a local strong copy and the store back cost a retain and two releases per segment.
        return Unmanaged.passUnretained(self.session.unsafelyUnwrapped)._withUnsafeGuaranteedRef { session in
            session.machine.now = timestampNanos
            let hadClientHello = session.machine.hasClientHello
            session.feed(bytes, from: direction)
            if !hadClientHello, session.machine.hasClientHello { session.sequence = sink.assignSequence() }
            return session.interest
        }
    }

    public mutating func skip(_ count: Int, from direction: FlowDirection, sink: inout RecordSink) -> StreamInterest {
        guard let session else { return .both }
        session.skip(count, from: direction)
        return session.interest
    }

    /// Keeps the responder's TTL, SYN-ACK window and options, and TCP timestamp clock.
    public mutating func observe(_ segment: TCPSegment, from direction: FlowDirection) {
        guard direction == .fromResponder else { return }
        let tsval = TCPOptions.timestampValue(in: segment.optionBytes)
        if !sawResponder {
            sawResponder = true
            responderTraits = ServerTraits(ttl: segment.timeToLive)
        }
        if segment.flags.contains(.syn) {
            let options = segment.options
            responderTraits.synAckWindow = segment.window
            responderTraits.synAckOptions = ServerTraits.hostOptionLayout(options.layout)
        }
        if let tsval {
            if responderTraits.firstTimestampValue == nil {
                responderTraits.firstTimestampValue = tsval
                responderTraits.firstTimestampNanos = segment.timestampNanos
            }
            responderTraits.lastTimestampValue = tsval
            responderTraits.lastTimestampNanos = segment.timestampNanos
        }
    }

    public mutating func ignoredOutOfWindow(from direction: FlowDirection) {
        outOfWindow.insert(direction == .fromOriginator ? .fromOriginator : .fromResponder)
    }

    public mutating func finish(_ reason: FlowEndReason, at timestampNanos: Int64, sink: inout RecordSink) {
        guard let session else {
            sink.flowWithoutTLS(outOfWindow.isEmpty ? .noPayload : .outOfWindow, start)
            return
        }
        self.session = nil
        guard let sequence = session.sequence,
            var record = session.machine.makeRecord(
                start: start,
                responderTraits: sawResponder ? responderTraits : nil,
                fingerprints: sink.fingerprints
            )
        else {
            if session.machine.lostClientHelloToGap {
                sink.clientHelloLostToGap(start)
            } else {
                let missed = session.missedReason
                // Server TLS without its ClientHello, whose client bytes could not be placed.
                let clientBytesUnplaced = missed == .noClientHello && outOfWindow.contains(.fromOriginator)
                sink.flowWithoutTLS(clientBytesUnplaced ? .outOfWindow : missed, start)
            }
            return
        }
        record.starttls = session.upgrade
        if let tunnel = session.tunnel {
            record.tunnel = tunnel.kind
            record.tunnelTargetHost = tunnel.target.host
            record.tunnelTargetPort = tunnel.target.port
        }
        sink.complete(record, sequence: sequence)
    }
}

/// Collects finished records and releases them in the order of each connection's first
/// ClientHello (file analysis), or as soon as each is decided (live streaming).
///
/// A connection that never decides (a ClientHello kept alive without an answer) would hold
/// every later record back: past `maximumRecordsWaiting` the release goes on without it,
/// and its record, when it comes, is released at once, out of order, and counted.
public struct RecordSink {
    public enum Order: Sendable {
        case firstClientHello
        case decision
    }

    /// Records held back behind undecided connections at most; their bytes
    /// (`HandshakeRecord.approximateBytes`) are bounded by `maximumBytesWaiting`, the
    /// budget's part (`ReassemblyLimits.maximumRecordBytesWaiting`): a crafted 64 KiB name
    /// makes a record large.
    public static let maximumRecordsWaiting = 8192
    public let maximumBytesWaiting: Int

    public let order: Order
    private var nextSequence = 0
    private var nextToRelease = 0
    private var waiting: [Int: HandshakeRecord] = [:]
    private var bytesWaiting = 0
    /// Sequences the release went past before their records came.
    private var overtaken: Set<Int> = []
    /// Records ready for output, in order; the extractor drains this after each packet.
    public internal(set) var ready: [HandshakeRecord] = []
    public private(set) var counters = ConnectionCounters()
    let fingerprints: FingerprintCache
    /// Secrets from key logs (`--keylog`, and those the input carries), shared with each
    /// connection's handshake machine.
    let keyLogStore: KeyLogStore

    public init(
        order: Order,
        maximumBytesWaiting: Int = ReassemblyLimits().maximumRecordBytesWaiting,
        maximumKeyLogBytes: Int = ReassemblyLimits().maximumKeyLogBytes,
        options: RecordOptions = RecordOptions()
    ) {
        self.order = order
        self.maximumBytesWaiting = maximumBytesWaiting
        fingerprints = FingerprintCache(content: options.content)
        keyLogStore = KeyLogStore(options.keyLog ?? KeyLog(memoryBytes: maximumKeyLogBytes))
    }

    mutating func assignSequence() -> Int {
        defer { nextSequence += 1 }
        return nextSequence
    }

    mutating func complete(_ record: consuming HandshakeRecord, sequence: Int) {
        counters.count(record)
        if order == .decision {
            ready.append(record)
            return
        }
        // Both tables are nearly always empty: asked only when not (a lookup hashes the key).
        if !overtaken.isEmpty, overtaken.remove(sequence) != nil {
            counters.releasedOutOfOrder += 1
            ready.append(record)
            return
        }
        if sequence == nextToRelease {
            ready.append(record)
            nextToRelease += 1
        } else {
            bytesWaiting += record.approximateBytes
            waiting[sequence] = record
        }
        releaseWaiting()
        while waiting.count > RecordSink.maximumRecordsWaiting || bytesWaiting > maximumBytesWaiting {
            // Go past the connection that holds the rest back.
            if waiting[nextToRelease] == nil { overtaken.insert(nextToRelease) }
            nextToRelease += 1
            releaseWaiting()
        }
    }

    private mutating func releaseWaiting() {
        guard !waiting.isEmpty else { return }
        while let next = waiting.removeValue(forKey: nextToRelease) {
            bytesWaiting -= next.approximateBytes
            ready.append(next)
            nextToRelease += 1
        }
    }

    mutating func flowWithoutTLS(_ reason: MissedReason, _ start: FlowStart) {
        counters.flowsWithoutTLS += 1
        counters.coverage.note(reason, start)
    }
    mutating func udpFlowOpened() { counters.udpFlows += 1 }
    mutating func udpFlowEvicted() { counters.udpFlowsEvicted += 1 }
    mutating func udpFlowWithoutClientHello(_ start: FlowStart) {
        counters.udpFlowsWithoutClientHello += 1
        counters.coverage.note(.udpClientHelloIncomplete, start)
    }
    /// A QUIC Initial-like datagram of a version not read, from `example`.
    mutating func quicVersionNotRead(at time: Int64, _ example: () -> String) {
        counters.coverage.note(.quicVersionNotRead, at: time, example)
    }
    mutating func quicRetryIgnored() { counters.quicRetriesIgnored += 1 }
    mutating func clientHelloLostToGap(_ start: FlowStart) {
        counters.clientHellosLostToGaps += 1
        counters.coverage.note(.clientHelloLostToGap, start)
    }

    /// Records held back behind an undecided earlier connection.
    public var heldBack: Int { waiting.count }

    /// Connections that sent a ClientHello and are not decided yet.
    public var undecidedConnections: Int { nextSequence - Int(counters.tlsConnections) }
}

/// Connection-level counts for the end-of-run report.
public struct ConnectionCounters: Sendable, Equatable {
    public var tlsConnections = 0
    public var malformed = 0
    public var withGaps = 0
    public var undecided = 0
    /// TCP flows with payload but no ClientHello (other protocols, or joined mid-connection).
    public var flowsWithoutTLS = 0
    /// TLS flows whose ClientHello was lost to a capture gap or a snaplen cut: no record.
    public var clientHellosLostToGaps = 0
    /// UDP datagrams that belonged to DTLS flows.
    public var dtlsDatagrams = 0
    /// Records released after later ones, because their connection held too many back.
    public var releasedOutOfOrder = 0
    /// DTLS and QUIC conversations followed: each ends as a record or as
    /// `udpFlowsWithoutClientHello`.
    public var udpFlows = 0
    /// DTLS and QUIC flows finished early: past the flow count or the memory budget.
    public var udpFlowsEvicted = 0
    /// DTLS and QUIC flows whose ClientHello never completed (its fragments or CRYPTO data
    /// were missing): no record.
    public var udpFlowsWithoutClientHello = 0
    /// QUIC Retry packets after a connection's first, which a client discards (RFC 9000
    /// 17.2.5.2): they leave the Initial keys as they were.
    public var quicRetriesIgnored = 0
    /// Conversations that left no record, by reason.
    public var coverage = Coverage()
    /// TLS 1.3 connections read through their protected records with key log secrets.
    public var decrypted = 0

    public init() {}

    mutating func count(_ record: HandshakeRecord) {
        tlsConnections += 1
        if record.decrypted { decrypted += 1 }
        if record.malformed != nil { malformed += 1 }
        if record.gaps > 0 { withGaps += 1 }
        if record.resumed == nil { undecided += 1 }
    }

    public mutating func add(_ o: ConnectionCounters) {
        tlsConnections += o.tlsConnections
        malformed += o.malformed
        withGaps += o.withGaps
        undecided += o.undecided
        flowsWithoutTLS += o.flowsWithoutTLS
        clientHellosLostToGaps += o.clientHellosLostToGaps
        dtlsDatagrams += o.dtlsDatagrams
        releasedOutOfOrder += o.releasedOutOfOrder
        udpFlows += o.udpFlows
        udpFlowsEvicted += o.udpFlowsEvicted
        udpFlowsWithoutClientHello += o.udpFlowsWithoutClientHello
        quicRetriesIgnored += o.quicRetriesIgnored
        decrypted += o.decrypted
        coverage.add(o.coverage)
    }
}
