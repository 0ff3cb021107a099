import Capture
import Extraction
import Handshakes
import Linking
import Reassembly
import Resumption
import Stickiness

/// What the analysis is asked to do.
package struct PipelineOptions: Sendable {
    /// Which records count (`--since`, `--until`, `--client`, `--server`, `--sni`).
    package var filter = RecordFilter()
    /// Sessions issued longer ago than this are forgotten (`--session-horizon`).
    package var sessionHorizonSeconds: Double = 86_400
    package var reuse = ReuseOptions()
    /// How long a record waits for its balancer leg (live capture: short).
    package var legWindowNanos = LegPairer.defaultWindowNanos
    /// Memory for the analysis stages' parts (`--memory-limit`).
    package var budget = MemoryBudget()
    /// Whether the per-service reuse and stickiness analyses run. The report needs them;
    /// record output (`handshakes`) needs only pairing and linking, which always run.
    package var analysesServices = true

    package init() {}
}

/// The one way from captures (or saved records) to analysed records: extraction, pairing of
/// balancer legs, session linking, filtering, then the reuse and stickiness analyses. Every
/// record that passes the filter goes to `each` (back-side connections included, marked
/// `backside_of`). Used by the command line and by the tests alike.
package final class Pipeline {
    private let filter: RecordFilter
    private var linker: SessionLinker
    private var analysis: ReuseAnalysis
    private var stickiness: StickinessAnalysis
    private var legs: LegPairer
    private let analysesServices: Bool
    private let each: (HandshakeRecord) -> Void
    /// Records that passed the filter (back legs not counted).
    package private(set) var connections = 0
    /// Back-side connections (balancer to backend) paired with a client's, that passed the filter.
    package private(set) var backLegs = 0
    /// Connections analysed at most (`live --count`): records after that are dropped.
    package var connectionLimit: Int?

    package init(_ options: PipelineOptions = PipelineOptions(), each: @escaping (HandshakeRecord) -> Void = { _ in }) {
        filter = options.filter
        var limits = LinkerLimits(budget: options.budget)
        limits.sessionHorizonSeconds = options.sessionHorizonSeconds
        linker = SessionLinker(limits: limits)
        var reuse = options.reuse
        reuse.maximumBytes = options.budget.reuseAnalysis
        analysis = ReuseAnalysis(options: reuse)
        stickiness = StickinessAnalysis(maximumBytes: options.budget.stickiness)
        legs = LegPairer(windowNanos: options.legWindowNanos, maximumHeldBytes: options.budget.legPairing)
        analysesServices = options.analysesServices
        self.each = each
    }

    /// One record, in order of first ClientHello (as extraction and record files give them).
    package func take(_ record: consuming HandshakeRecord) {
        if tracksWallTime { latestRecord = (record.timestampNanos, wallClockNanos()) }
        legs.add(record, release: analyse)
    }
    /// Set for a live pipe, whose held records are released by wall time too.
    private var tracksWallTime = false
    /// The latest record's capture time, and the wall time it came.
    private var latestRecord: (captureNanos: Int64, wallNanos: Int64)?
    /// Releases held records as if the capture's clock had run on with the wall clock since
    /// the latest record (a live pipe that has gone quiet).
    package func tickSinceLastRecord() {
        guard let latestRecord else { return }
        tick(at: latestRecord.captureNanos &+ max(0, wallClockNanos() - latestRecord.wallNanos))
    }
    /// Releases records held for pairing whose window has passed (live capture).
    package func tick(at nanos: Int64) { legs.release(at: nanos, to: analyse) }
    /// Releases what is still held; call once, after the last record.
    package func finish() { legs.finish(release: analyse) }

    private func analyse(_ released: consuming HandshakeRecord) {
        if let connectionLimit, connections >= connectionLimit { return }
        var record = released
        // A back-side connection repeats its front's ClientHello: not linked or counted again.
        let link = record.backsideOf == nil ? linker.link(&record) : nil
        guard filter.matches(record) else { return }
        if record.backsideOf == nil {
            if analysesServices {
                analysis.add(record, link: link)
                stickiness.add(record)
            }
            connections += 1
        } else {
            backLegs += 1
        }
        each(record)
    }

    /// The reuse report with support judged on where offers went, and the stickiness
    /// verdicts it was judged with.
    package func results() -> (reuse: ReuseReport, stickiness: [ServiceKey: StickinessVerdict]) {
        var report = analysis.report()
        let counts = [
            ("sessions_forgotten_early", linker.forgottenEarly), ("session_names", linker.namesNotKept),
            ("records_released_before_pairing_window", legs.releasedEarly),
            ("stickiness_connections", stickiness.connectionsNotJudged),
        ]
        report.notKeptForMemory = counts.filter { $0.1 > 0 }.map { (key: $0.0, count: $0.1) } + report.notKeptForMemory
        let verdicts = stickiness.verdicts()
        PlacedSupport.refine(&report, stickiness: verdicts)
        return (report, verdicts)
    }

    /// Extracts the handshakes of capture files into the pipeline and finishes it. With
    /// several workers: a worker per group of rotated files (each starts after the previous
    /// one ends), else workers sharing the flows of files read together.
    package func extract(
        files: [String],
        bpf: String? = nil,
        workers: Int = 1,
        limits: ReassemblyLimits = ReassemblyLimits(),
        order: RecordSink.Order = .firstClientHello,
        options: RecordOptions = RecordOptions()
    ) throws(CaptureError) -> ExtractionStatistics {
        let statistics: ExtractionStatistics
        if workers > 1, files.count > 1, Self.filesFollowEachOther(files) {
            statistics = try Extraction.runFileGroups(
                paths: files,
                filter: bpf,
                workers: workers,
                limits: limits,
                options: options
            ) {
                take($0)
            }
        } else if workers > 1 {
            statistics = try Extraction.runParallel(
                paths: files,
                filter: bpf,
                workers: workers,
                limits: limits,
                options: options
            ) {
                take($0)
            }
        } else {
            // A live pipe: records held for leg pairing go out once the hold has passed in
            // wall time, although no packet comes (the capture's clock stands still then).
            tracksWallTime = order == .decision
            let whileWaiting: (() -> Void)? = tracksWallTime ? { [self] in tickSinceLastRecord() } : nil
            statistics = try Extraction.run(
                paths: files,
                filter: bpf,
                limits: limits,
                order: order,
                options: options,
                whileWaiting: whileWaiting
            ) { take($0) }
        }
        finish()
        var counted = statistics
        counted.backLegs = backLegs
        return counted
    }

    /// True when each file starts no earlier than the previous one ends (tcpdump's rotated
    /// files), so workers can take files of their own. Files captured at the same time are
    /// merged packet by packet instead.
    package static func filesFollowEachOther(_ files: [String]) -> Bool {
        var previousEnd: Int64 = .min
        for file in files {
            guard let span = CaptureFileReader.timeSpan(of: file), span.first >= previousEnd else { return false }
            previousEnd = span.last
        }
        return true
    }
}
