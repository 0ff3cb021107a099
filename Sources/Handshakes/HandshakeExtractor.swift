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
    /// When set, only flows whose 4-tuple hashes to `index` of `count` are followed.
    private let shard: (index: Int, count: Int)?

    public init(
        limits: ReassemblyLimits = ReassemblyLimits(),
        order: RecordSink.Order = .firstClientHello,
        shard: (index: Int, count: Int)? = nil,
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
        self.shard = shard
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

    /// A hash of the 4-tuple that is the same in both directions.
    @inline(__always)
    static func shardHash(_ segment: TCPSegment) -> UInt64 {
        shardHash(segment.source, segment.destination, segment.sourcePort, segment.destinationPort)
    }

    /// Swift's `Hasher` (SipHash, seeded per process, the same in every worker) of the two
    /// endpoints in a fixed order: the same in both directions, and a peer cannot choose
    /// addresses and ports that all land on one worker.
    @inline(__always)
    static func shardHash(
        _ source: IPAddress,
        _ destination: IPAddress,
        _ sourcePort: UInt16,
        _ destinationPort: UInt16
    ) -> UInt64 {
        var hasher = Hasher()
        if (source.high, source.low, sourcePort) < (destination.high, destination.low, destinationPort) {
            hasher.combine(source.high)
            hasher.combine(source.low)
            hasher.combine(sourcePort)
            hasher.combine(destination.high)
            hasher.combine(destination.low)
            hasher.combine(destinationPort)
        } else {
            hasher.combine(destination.high)
            hasher.combine(destination.low)
            hasher.combine(destinationPort)
            hasher.combine(source.high)
            hasher.combine(source.low)
            hasher.combine(sourcePort)
        }
        return UInt64(UInt(bitPattern: hasher.finalize()))
    }

    /// Handles one packet; `emit` receives any records that became ready, in order.
    @inline(__always)
    public mutating func process(_ packet: CapturedPacket, emit: (consuming HandshakeRecord) -> Void) {
        if first == nil { first = packet.timestampNanos }
        last = packet.timestampNanos
        switch decoder.decode(packet) {
        case let .tcp(segment):
            if let shard, Int(HandshakeExtractor.shardHash(segment) >> 33) % shard.count != shard.index { return }
            flows.handle(segment, sink: &sink)
            if !sink.ready.isEmpty { drain(emit) }
        case let .udp(datagram):
            if let shard,
                Int(
                    HandshakeExtractor.shardHash(
                        datagram.source,
                        datagram.destination,
                        datagram.sourcePort,
                        datagram.destinationPort
                    ) >> 33
                ) % shard.count != shard.index
            {
                return
            }
            if !quic.handle(datagram, sink: &sink) { datagrams.handle(datagram, sink: &sink) }
            if !sink.ready.isEmpty { drain(emit) }
        case .skipped:
            break
        }
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
