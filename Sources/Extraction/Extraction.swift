import Capture
import Handshakes
import Packets
import Reassembly
import TLSWire

/// Reads capture files (in timestamp order across files) or a live interface, applies an
/// optional BPF filter, and extracts handshake records: on the calling thread (`run`,
/// `runLive`) or spread over worker threads (`runParallel`, `runFileGroups`).
package enum Extraction {
    /// Throws only for a bad filter; unreadable inputs are recorded in the statistics.
    /// `order` is `.decision` for a live pipe on standard input.
    package static func run(
        paths: [String],
        filter expression: String? = nil,
        limits: ReassemblyLimits = ReassemblyLimits(),
        order: RecordSink.Order = .firstClientHello,
        options: RecordOptions = RecordOptions(),
        whileWaiting: (() -> Void)? = nil,
        emit: (consuming HandshakeRecord) -> Void
    ) throws(CaptureError) -> ExtractionStatistics {
        let captures = CaptureSet(paths: paths)
        if whileWaiting != nil { captures.returnWhenWaiting() }
        var reading = try FilteredExtraction(
            HandshakeExtractor(limits: limits, order: order, options: options),
            filter: expression
        )
        reading.read(captures, whileWaiting: whileWaiting, emit: emit)
        reading.extractor.finish(emit: emit)
        return reading.statistics(inputs: captures)
    }
}

/// The capture loop, written once: each packet that passes the filter goes to the
/// extractor, the others are counted.
struct FilteredExtraction: ~Copyable {
    var extractor: HandshakeExtractor
    let filter: PacketFilter?
    /// Set for the reader of a parallel run: it hands other workers their flows' packets.
    var forwarder: PacketForwarder?
    /// Packets the filter rejected.
    private(set) var filteredOut = 0

    init(_ extractor: consuming HandshakeExtractor, filter expression: String?) throws(CaptureError) {
        self.extractor = extractor
        filter = try expression.map { (e: String) throws(CaptureError) in try PacketFilter(expression: e) }
    }

    /// Reads `captures` to their end. As a handoff (`handoffEndNanos` set: the files after a
    /// worker's own, which the next worker counts) it reads only while handshakes are
    /// undecided and until that time, and counts nothing filtered out.
    ///
    /// With `whileWaiting` (a live pipe), a pause of the input ends the flows that waited
    /// out their time, as if the capture's clock ran on with the wall clock since the last
    /// packet, then runs `whileWaiting`, and reading goes on.
    mutating func read(
        _ captures: CaptureSet,
        handoffEndNanos: Int64? = nil,
        whileWaiting: (() -> Void)? = nil,
        emit: (consuming HandshakeRecord) -> Void
    ) {
        var lastPacketWallNanos = wallClockNanos()
        // Unretained (`self` holds them): bound for every packet, each cost a retain and a
        // release per packet.
        let forwarder = self.forwarder.map { Unmanaged.passUnretained($0) }
        let filter = self.filter.map { Unmanaged.passUnretained($0) }
        while handoffEndNanos == nil || extractor.undecidedConnections > 0 {
            guard let packet = captures.next() else {
                guard let whileWaiting, captures.isWaiting else { break }
                let elapsed = max(0, wallClockNanos() - lastPacketWallNanos)
                extractor.expire(at: extractor.lastTimestampNanos &+ elapsed, emit: emit)
                whileWaiting()
                continue
            }
            if whileWaiting != nil { lastPacketWallNanos = wallClockNanos() }
            // Secrets a pcapng file carries apply to the connections after them.
            if captures.hasPendingSecrets {
                for (input, text) in captures.takeSecrets() {
                    let source = "\(input): decryption secrets block"
                    extractor.addKeyLog([text], source: source)
                    self.forwarder?.forward(keyLog: text, source: source)
                }
            }
            if let handoffEndNanos, packet.timestampNanos > handoffEndNanos { break }
            if let filter, !filter._withUnsafeGuaranteedRef({ $0.matches(packet) }) {
                if handoffEndNanos == nil { filteredOut += 1 }
                continue
            }
            if let forwarder {
                forwarder._withUnsafeGuaranteedRef { $0.process(packet, extractor: &extractor, emit: emit) }
            } else {
                extractor.process(packet, emit: emit)
            }
        }
    }

    /// The extractor's counts with the inputs' and the filter's.
    func statistics(inputs captures: CaptureSet) -> ExtractionStatistics {
        var statistics = extractor.statistics
        statistics.inputs = captures.inputStats
        statistics.filteredOut = filteredOut
        statistics.filterInapplicable = filter?.inapplicable ?? [:]
        return statistics
    }
}

extension Extraction {
    /// How a live run stops.
    package enum LiveStop: Sendable {
        /// At once (--count reached: more connections are not wanted).
        case now
        /// After reading what the kernel buffered before the stop (Ctrl-C, SIGTERM,
        /// --duration): packets that had arrived are not lost to the moment of the signal.
        case afterBuffered
    }

    /// How often a live run expires idle flows and runs `tick`: a tenth of a second, so a
    /// record is out within that of its pairing hold ending.
    package static let liveTickNanos: Int64 = 100_000_000

    /// Reads a live capture until `shouldStop` answers a stop or the capture ends. Records are
    /// emitted as soon as each handshake is decided. `tick` runs about once a second of wall
    /// time with the current time, for summaries and expiry of idle flows. The kernel applies
    /// the filter (`LiveCapture` sets it), so every packet read is followed.
    /// Key logs followed in a live run (`live --keylog`), and how long packets wait for them.
    package struct LiveKeyLogs {
        package var files: [FollowedFile]
        package var waitNanos: Int64
        package var memoryBytes: Int
        package var heldPacketBytes: Int
        /// Told each problem found in the key logs ("keys.log:12: unknown label ...").
        package var problem: (String) -> Void

        package init(
            files: [FollowedFile],
            waitNanos: Int64,
            memoryBytes: Int,
            heldPacketBytes: Int,
            problem: @escaping (String) -> Void
        ) {
            self.files = files
            self.waitNanos = waitNanos
            self.memoryBytes = memoryBytes
            self.heldPacketBytes = heldPacketBytes
            self.problem = problem
        }
    }

    package static func runLive(
        _ capture: LiveCapture,
        limits: ReassemblyLimits = ReassemblyLimits(),
        keyLogs: LiveKeyLogs? = nil,
        shouldStop: () -> LiveStop?,
        tick: (Int64) -> Void,
        emit: (consuming HandshakeRecord) -> Void
    ) -> (ExtractionStatistics, endReason: String?) {
        var options = RecordOptions()
        if let keyLogs { options.keyLog = KeyLog(memoryBytes: keyLogs.memoryBytes) }
        var extractor = HandshakeExtractor(limits: limits, order: .decision, options: options)
        // With key logs, packets wait in `waiting` until the key logs had time to name them.
        let delaying = keyLogs != nil
        var waiting = PacketDelayLine(capacityBytes: keyLogs?.heldPacketBytes ?? 0)
        var parsedEarly = 0
        func readKeyLogs() {
            guard let keyLogs else { return }
            for file in keyLogs.files {
                while let (text, firstLine) = file.readNewLines() {
                    for problem in extractor.addKeyLog([text], source: file.path, firstLine: firstLine) {
                        keyLogs.problem(problem)
                    }
                }
            }
        }
        func release(upTo nanos: Int64) {
            while let oldest = waiting.oldestTimestampNanos, oldest <= nanos {
                waiting.takeOldest(linkType: capture.linkType) { extractor.process($0, emit: emit) }
            }
        }
        func take(_ packet: CapturedPacket) {
            guard delaying else { return extractor.process(packet, emit: emit) }
            // No room: the oldest packets are parsed before their wait is over.
            while !waiting.append(packet) {
                guard !waiting.isEmpty else { return extractor.process(packet, emit: emit) }
                parsedEarly += 1
                waiting.takeOldest(linkType: capture.linkType) { extractor.process($0, emit: emit) }
            }
        }
        readKeyLogs()
        var lastTick = wallClockNanos()
        var endReason: String?
        var stop: LiveStop?
        reading: while true {
            stop = shouldStop()
            if stop != nil { break }
            switch capture.next() {
            case let .packet(packet): take(packet)
            case .timeout: break
            case let .ended(reason):
                endReason = reason
                break reading
            }
            let now = wallClockNanos()
            if now - lastTick >= Extraction.liveTickNanos {
                lastTick = now
                if let keyLogs {
                    readKeyLogs()
                    release(upTo: now - keyLogs.waitNanos)
                }
                extractor.expire(at: now - (keyLogs?.waitNanos ?? 0), emit: emit)
                capture.flushOutput()
                tick(now)
            }
        }
        if case .afterBuffered = stop {
            let stoppedAt = wallClockNanos()
            buffered: for _ in 0..<LiveCapture.maximumPacketsReadAtStop {
                switch capture.next(waiting: false) {
                case let .packet(packet):
                    // Only what arrived before the stop.
                    guard packet.timestampNanos <= stoppedAt else { break buffered }
                    take(packet)
                case .timeout, .ended: break buffered
                }
            }
        }
        // What waits is parsed with every secret written by now.
        readKeyLogs()
        release(upTo: .max)
        extractor.finish(emit: emit)
        capture.flushOutput()
        var statistics = extractor.statistics
        var input = InputStats(name: capture.interface)
        input.format = "live \(capture.linkType)"
        input.packets = statistics.decode.packets
        if parsedEarly > 0 {
            input.problems.append(
                "\(parsedEarly) packets parsed before their wait for the key log was over (no room to hold them)"
            )
        }
        statistics.inputs = [input]
        // Problems were told as they were found.
        statistics.keyLogProblems = []
        statistics.keyLogMalformedLines = 0
        return (statistics, endReason)
    }
}
