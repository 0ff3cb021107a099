import Capture
import Packets
import Reassembly

#if canImport(Glibc)
import Glibc
#endif

/// Everything counted during extraction, for the report's "what was skipped" section.
public struct ExtractionStatistics: Sendable {
    public var inputs: [InputStats] = []
    public var decode = DecodeCounters()
    public var reassembly = ReassemblyCounters()
    public var connections = ConnectionCounters()
    /// Packets the --bpf filter rejected.
    public var filteredOut = 0
    /// Link types the --bpf expression could not be compiled for, with libpcap's reason.
    public var filterInapplicable: [UInt32: String] = [:]
    /// Capture time span.
    public var firstPacketNanos: Int64?
    public var lastPacketNanos: Int64?
    /// Records a worker set aside in a temporary file that could not be read back.
    public var recordsLostInSpill = 0
    /// Of the TLS connections, those that are a balancer's connection to a backend paired
    /// with its client's (filled in by the analysis, which pairs them).
    public var backLegs = 0
    /// Key log secrets: connections they name (those given with --keylog and those the
    /// input carries), and the problems with the input's (pcapng Decryption Secrets Blocks).
    public var keyLogConnections = 0
    public var keyLogProblems: [String] = []
    public var keyLogMalformedLines = 0
    public var keyLogSecretsNotKept = 0

    public init() {}

    /// Inputs that could not be read at all, or only in part.
    public var damagedInputs: [InputStats] {
        inputs.filter { $0.error != nil || $0.truncated || $0.unusableRecords > 0 }
    }
}

/// Packets in, handshake records out: decodes each packet, reassembles TCP and runs each
/// connection's handshake machine. One extractor owns its flow table; run one per worker.
public struct HandshakeExtractor: ~Copyable {
    private var decoder = PacketDecoder()
    private var flows: FlowTable<ConnectionTracker>
    private var datagrams: DatagramFlows
    private var quic: QUICFlows
    private var sink: RecordSink
    private var first: Int64?
    private var last: Int64 = 0

    public init(
        limits: ReassemblyLimits = ReassemblyLimits(),
        order: RecordSink.Order = .firstClientHello,
        options: RecordOptions = RecordOptions()
    ) {
        flows = FlowTable(limits: limits)
        datagrams = DatagramFlows(maximumHeldBytes: limits.maximumUDPHeldBytes / 2)
        quic = QUICFlows(maximumHeldBytes: limits.maximumUDPHeldBytes / 2)
        sink = RecordSink(
            order: order,
            maximumBytesWaiting: limits.maximumRecordBytesWaiting,
            maximumKeyLogBytes: limits.maximumKeyLogBytes,
            options: options
        )
    }

    /// Key log text found in the input (pcapng Decryption Secrets Blocks) or read from a key
    /// log as it grows (`live`): its secrets open the TLS 1.3 connections that follow.
    /// Returns the problems found in it (at most `KeyLog.maximumDescribedProblems` in a run).
    @discardableResult
    public mutating func addKeyLog(
        _ texts: [[UInt8]],
        source: String = "decryption secrets block",
        firstLine: Int = 1
    ) -> [String] {
        let before = sink.keyLogStore.keyLog.problems.count
        for text in texts { sink.keyLogStore.keyLog.add(text: text, source: source, firstLine: firstLine) }
        return Array(sink.keyLogStore.keyLog.problems[before...])
    }

    /// What the key logs held so far: connections named, lines that did not parse, secrets
    /// not kept for memory.
    public var keyLogCounts: (connections: Int, malformedLines: Int, notKept: Int) {
        let keyLog = sink.keyLogStore.keyLog
        return (keyLog.connections.count, keyLog.malformedLines, keyLog.linesNotKept)
    }

    /// Handles one packet; `emit` receives any records that became ready, in order.
    @inline(__always)
    public mutating func process(_ packet: CapturedPacket, emit: (consuming HandshakeRecord) -> Void) {
        switch decode(packet) {
        case let .tcp(segment): follow(segment, emit: emit)
        case let .udp(datagram): follow(datagram, emit: emit)
        case .skipped: break
        }
    }

    /// Decodes and counts one packet. What it returns points into the packet or into the
    /// decoder's fragment buffers: valid until the next call.
    @inline(__always)
    public mutating func decode(_ packet: CapturedPacket) -> DecodedPacket {
        if first == nil { first = packet.timestampNanos }
        last = packet.timestampNanos
        return decoder.decode(packet)
    }

    /// Follows one decoded TCP segment (decoded here, or by a reader that hands this worker
    /// its flows' segments).
    @inline(__always)
    public mutating func follow(_ segment: TCPSegment, emit: (consuming HandshakeRecord) -> Void) {
        flows.handle(segment, sink: &sink)
        if !sink.ready.isEmpty { drain(emit) }
    }

    @inline(__always)
    public mutating func follow(_ datagram: UDPDatagram, emit: (consuming HandshakeRecord) -> Void) {
        if !quic.handle(datagram, sink: &sink) { datagrams.handle(datagram, sink: &sink) }
        if !sink.ready.isEmpty { drain(emit) }
    }

    /// Stops following new flows: only flows already in the table are followed from here on.
    public mutating func followOpenFlowsOnly() { flows.createsFlows = false }

    /// Connections with a ClientHello whose handshake is not decided yet.
    public var undecidedConnections: Int { sink.undecidedConnections }

    /// The last packet's capture time.
    public var lastTimestampNanos: Int64 { last }

    /// Finishes flows idle at `timestampNanos` (live capture, where time passes without packets).
    public mutating func expire(at timestampNanos: Int64, emit: (consuming HandshakeRecord) -> Void) {
        flows.expire(at: timestampNanos, sink: &sink)
        datagrams.expire(at: timestampNanos, sink: &sink)
        quic.expire(at: timestampNanos, sink: &sink)
        drain(emit)
    }

    /// Finishes every flow (end of input) and emits the remaining records.
    public mutating func finish(emit: (consuming HandshakeRecord) -> Void) {
        flows.finishAll(sink: &sink)
        datagrams.finishAll(sink: &sink)
        quic.finishAll(sink: &sink)
        drain(emit)
    }

    private mutating func drain(_ emit: (consuming HandshakeRecord) -> Void) {
        // Moved out, not copied: popping from the end, so the first ready goes first.
        if sink.ready.count > 1 { sink.ready.reverse() }
        while let record = sink.ready.popLast() { emit(record) }
    }

    public var statistics: ExtractionStatistics {
        var statistics = ExtractionStatistics()
        statistics.decode = decoder.counters
        statistics.reassembly = flows.counters
        statistics.connections = sink.counters
        statistics.connections.dtlsDatagrams = datagrams.datagramsUsed + quic.datagramsUsed
        statistics.firstPacketNanos = first
        statistics.lastPacketNanos = first == nil ? nil : last
        let keyLog = sink.keyLogStore.keyLog
        statistics.keyLogConnections = keyLog.connections.count
        statistics.keyLogProblems = keyLog.problems
        statistics.keyLogMalformedLines = keyLog.malformedLines
        statistics.keyLogSecretsNotKept = keyLog.linesNotKept
        return statistics
    }
}

/// Which of `count` workers follows a flow: a keyed multiply mix of the two endpoints, added
/// so that both directions agree. It is computed for every packet, so it is not SipHash
/// (which measured 7% of a run there): the worst a peer that guessed the key could do is put
/// every flow on one worker, which makes the run as slow as with one worker, no slower. The
/// tables keyed by wire values inside each worker use SipHash.
public struct WorkerChoice: Sendable {
    public let count: Int
    @usableFromInline let key: (UInt64, UInt64, UInt64, UInt64)
    /// Mixes below this (of 2^32) go to worker 0; the rest are spread evenly over the others
    /// by `scale` (2^32 times the others' count per mix value above the threshold).
    @usableFromInline let firstWorkerBelow: UInt64
    @usableFromInline let scale: UInt64

    /// A random key per process, so a peer cannot choose which worker follows its flows.
    private static let processKey = (
        UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max),
        UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max) | 1
    )

    /// - Parameter firstShare: the share of flows worker 0 takes (a reader that also decodes
    ///   every packet takes less than the others).
    public init(among count: Int, firstShare: Double? = nil) {
        self.count = max(count, 1)
        key = Self.processKey
        let share = min(max(firstShare ?? 1 / Double(self.count), 0), 0.9)
        firstWorkerBelow = self.count == 1 ? 1 << 32 : UInt64(share * Double(UInt64(1) << 32))
        let rest = (UInt64(1) << 32) - firstWorkerBelow
        scale = rest == 0 ? 0 : (UInt64(self.count - 1) << 32) / rest
    }

    /// The high and low halves of the 128-bit product, folded.
    @inlinable @inline(__always)
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    /// The mix's top 32 bits scaled to `count` by a multiply (no division per packet).
    @inlinable @inline(__always)
    func worker(
        _ source: IPAddress,
        _ destination: IPAddress,
        _ sourcePort: UInt16,
        _ destinationPort: UInt16
    )
        -> Int
    {
        let from = Self.fold(source.high ^ key.0, source.low ^ key.1 ^ (UInt64(sourcePort) << 48))
        let to = Self.fold(destination.high ^ key.0, destination.low ^ key.1 ^ (UInt64(destinationPort) << 48))
        let mixed = Self.fold((from &+ to) ^ key.2, key.3) >> 32
        guard mixed >= firstWorkerBelow else { return 0 }
        return 1 + min(Int(truncatingIfNeeded: ((mixed - firstWorkerBelow) &* scale) >> 32), count - 2)
    }

    @inlinable @inline(__always)
    public func worker(for segment: TCPSegment) -> Int {
        worker(segment.source, segment.destination, segment.sourcePort, segment.destinationPort)
    }

    @inlinable @inline(__always)
    public func worker(for datagram: UDPDatagram) -> Int {
        worker(datagram.source, datagram.destination, datagram.sourcePort, datagram.destinationPort)
    }
}
