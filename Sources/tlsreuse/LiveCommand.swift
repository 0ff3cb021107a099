import ArgumentParser
import Capture
import Extraction
import Handshakes
import Pipeline
import Reassembly
import Reports
import Resumption
import Stickiness
import Synchronization
import TLSWire

#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT and SIGTERM; the capture loop stops and prints the final report.
let stopRequested = Atomic<Bool>(false)

enum LiveFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
    case jsonl
    case csv
    case zeek

    /// The streamed record format, for formats that stream records.
    var recordFormat: RecordFormat? {
        switch self {
        case .text, .json: nil
        case .jsonl: .jsonl
        case .csv: .csv
        case .zeek: .zeek
        }
    }
}

struct LiveCommand: ParsableCommand {
    /// How long a live record waits for its balancer leg (README: "held at most 0.5 s").
    static let legWindowNanos: Int64 = 500_000_000

    static let configuration = CommandConfiguration(
        commandName: "live",
        abstract:
            "Analyse an interface while traffic flows: running summaries, streamed records, the final report on stop.",
        discussion: """
            Stops on Ctrl-C (SIGINT), SIGTERM, --duration or --count, and prints the same \
            report as for a file. On Ctrl-C, SIGTERM and --duration, packets that had already \
            arrived in the kernel buffer are still analysed; --count stops at once. Capturing \
            needs root, or CAP_NET_RAW and CAP_NET_ADMIN on the binary.

            Examples:
              tlsreuse live -i eth0 --bpf 'tcp port 443'
              tlsreuse live -i any --format jsonl | jq -c 'select(.resumed == false)'
              tlsreuse live -i eth0 --format zeek --duration 3600 > handshakes.log
              tlsreuse live -i eth0 --duration 600 -w tls.pcap --format json > r.json
            """
    )

    @Option(
        name: .customShort("i"),
        help: ArgumentHelp("Interface to capture on; \"any\" for all.", valueName: "IFACE"),
        // The interfaces this host has, and "any".
        completion: .shellCommand("ls /sys/class/net 2>/dev/null; echo any")
    )
    var interface: String

    @Option(
        name: .customLong("bpf"),
        help: ArgumentHelp("libpcap filter expression, applied in the kernel.", valueName: "EXPR")
    )
    var bpf: String = "tcp"

    @Option(
        help: ArgumentHelp(
            "Seconds between running summaries (text: on standard output; other formats: on standard error). 0 turns "
                + "them off. Default: 10 in text, 0 otherwise.",
            valueName: "SECONDS"
        )
    )
    var interval: Double?

    @Option(help: ArgumentHelp("Stop after this many seconds.", valueName: "SECONDS"))
    var duration: Double?

    @Option(help: ArgumentHelp("Stop after this many TLS connections.", valueName: "N"))
    var count: Int?

    @Option(
        name: .customShort("w"),
        help: ArgumentHelp(
            "Also write the captured packets to this pcap file (made as the --user, never through a symbolic link).",
            valueName: "FILE"
        ),
        completion: .file()
    )
    var write: String?

    @Option(
        name: .customLong("keylog"),
        help: ArgumentHelp(
            "A key log that a client is writing (SSLKEYLOGFILE, openssl s_client -keylogfile), read as it grows: "
                + "the TLS 1.3 connections it names are read through the server's encrypted records. Opened before "
                + "privileges are dropped; packets wait a second before they are parsed, for the client to write "
                + "its secrets. Repeatable. As sensitive as a private key; no secret is printed or recorded.",
            valueName: "FILE"
        ),
        completion: .file()
    )
    var keylogs: [String] = []

    /// How long packets wait for the key log when one is followed: a client writes a
    /// connection's secrets as it makes the handshake, within milliseconds of its packets.
    static let keyLogWaitNanos: Int64 = 1_000_000_000

    @Option(
        help: ArgumentHelp(
            "Started as root: the user to run as once the interface is open, before any packet is parsed (default: "
                + "tlsreuse if that user exists, else nobody).",
            valueName: "NAME"
        )
    )
    var user: String?

    @Option(
        help: ArgumentHelp(
            "Output: text (summaries and report), json (final report), or each record as it is decided: jsonl, csv, "
                + "zeek.",
            valueName: "FORMAT"
        )
    )
    var format: LiveFormat = .text

    @Flag(help: "List each client's sequence of connections per service in the final text report.")
    var pairs = false

    @Option(
        help: ArgumentHelp(
            "Colour in the final text report: auto (on a terminal, unless NO_COLOR is set), always, never.",
            valueName: "WHEN"
        )
    )
    var color: ColorChoice = .auto

    @Option(
        help: ArgumentHelp(
            "Memory for the whole run, all workers together: flows, buffers, records, remembered sessions, "
                + "statistics. Bytes, or a number with K, M or G (default 256M, at least 64M). Past a stage's part, "
                + "the oldest or least recently active holder gives way, and what was dropped is counted.",
            valueName: "SIZE"
        )
    )
    var memoryLimit: String?

    @OptionGroup var analysis: AnalysisOptions

    func validate() throws {
        let longest = Int(CaptureTime.maximumDurationSeconds)
        if let interval, CaptureTime.durationNanos(seconds: interval) == nil {
            throw ValidationError("--interval must be 0 or more seconds, at most ten years (\(longest))")
        }
        if let duration, duration <= 0 || CaptureTime.durationNanos(seconds: duration) == nil {
            throw ValidationError("--duration must be a positive number of seconds, at most ten years (\(longest))")
        }
        if let count, count <= 0 { throw ValidationError("--count must be a positive number of connections") }
        if OptionValues.memoryBudget(memoryLimit) == nil { throw memoryLimitError(memoryLimit ?? "") }
    }

    func run() throws {
        let capture: LiveCapture
        // Opened while privileges last: a key log is rightly readable by its owner only.
        var keyLogs: [FollowedFile] = []
        for path in keylogs {
            do {
                keyLogs.append(try FollowedFile(path: path, maximumLineLength: KeyLog.maximumLineLength))
            } catch {
                printError("could not read the key log \(path): \(error.reason)")
                throw ExitStatus.input
            }
        }
        do {
            capture = try LiveCapture(interface: interface, filter: bpf)
            // The interface is open: nothing further needs privileges (tcpdump -Z).
            let dropped = try Privileges.drop(to: user)
            if !analysis.quiet {
                let capabilities = Privileges.effectiveCapabilities
                printError(
                    "capturing on \(interface) as \(dropped.user) (uid \(dropped.uid)), "
                        + (capabilities == 0 ? "no capabilities" : "capabilities 0x\(String(capabilities, radix: 16))")
                )
            }
            if let write { try capture.startWriting(to: write) }
        } catch {
            printError(error.description)
            switch error.code {
            case .capturePermission: throw ExitStatus.capturePermission
            case .noSuchInterface, .badFilter: throw ExitStatus.usage
            default: throw ExitStatus.output
            }
        }
        // A parent may have started us with these blocked (the mask is inherited): unblock them.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        // A reader that went away (`| head`, jq stopped) is a write error, which ends the run
        // with the summary on stderr, not a silent death.
        signal(SIGPIPE, SIG_IGN)

        let out = LineWriter(flushEachLine: true)
        let records = format.recordFormat.map { RecordOutput(format: $0, writer: out, openedAtNanos: wallClockNanos()) }
        // A short pairing window: back legs follow their front within milliseconds.
        let budget = OptionValues.memoryBudget(memoryLimit) ?? MemoryBudget()  // checked by validate()
        let pipeline = Pipeline(try analysis.pipelineOptions(budget: budget, legWindowNanos: Self.legWindowNanos)) {
            record in
            records?.write(record)
        }
        // Exactly --count connections: those decided with the last one are not reported.
        pipeline.connectionLimit = count
        // Both checked by validate().
        let summaryEveryNanos = CaptureTime.durationNanos(seconds: interval ?? (format == .text ? 10 : 0)) ?? 0
        let durationNanos = duration.flatMap { CaptureTime.durationNanos(seconds: $0) }
        let start = wallClockNanos()
        var lastSummary = start
        let limits = ReassemblyLimits(budget: budget, workers: 1)
        let (statistics, endReason) = Extraction.runLive(
            capture,
            limits: limits,
            keyLogs: keyLogs.isEmpty
                ? nil
                : Extraction.LiveKeyLogs(
                    files: keyLogs,
                    waitNanos: Self.keyLogWaitNanos,
                    // The key log's part of the budget, half for secrets and half for waiting packets.
                    memoryBytes: budget.keyLog / 2,
                    heldPacketBytes: budget.keyLog / 2,
                    problem: { printError("key log: \($0)") }
                ),
            shouldStop: {
                if let count, pipeline.connections >= count { return .now }
                if out.failed { return .now }
                if stopRequested.load(ordering: .relaxed) { return .afterBuffered }
                if let durationNanos, wallClockNanos() - start >= durationNanos { return .afterBuffered }
                return nil
            },
            tick: { now in
                pipeline.tick(at: now)
                if summaryEveryNanos > 0, now - lastSummary >= summaryEveryNanos {
                    lastSummary = now
                    let (reuse, stickiness) = pipeline.results()
                    let lines = LiveSummary.lines(
                        reuse,
                        stickiness: stickiness,
                        interface: interface,
                        kernel: capture.statistics,
                        connections: pipeline.connections
                    )
                    for line in lines {
                        if format == .text { out.line(line) } else { printError(line) }
                    }
                }
            },
            emit: { pipeline.take($0) }
        )
        pipeline.finish()
        if let endReason { printError("capture on \(interface) ended: \(endReason)") }

        let kernel = capture.statistics
        let drops = kernel.dropped + kernel.droppedByInterface
        let kernelLine =
            "kernel: \(kernel.received) packets received, \(kernel.dropped) dropped by the kernel, "
            + "\(kernel.droppedByInterface) by the interface"
        switch format {
        case .text:
            writeReport(
                format: .text,
                pairs: pairs,
                colors: color.enabled(writingToFile: false),
                pipeline: pipeline,
                source: .capture(statistics),
                to: out
            )
            out.line(kernelLine)
        case .json:
            writeReport(
                format: .json,
                pairs: pairs,
                pipeline: pipeline,
                source: .capture(statistics),
                extra: [
                    Field(
                        "kernel",
                        .object([
                            Field("received", .int(Int64(kernel.received))),
                            Field("dropped", .int(Int64(kernel.dropped))),
                            Field("dropped_by_interface", .int(Int64(kernel.droppedByInterface))),
                        ])
                    )
                ],
                to: out
            )
        case .jsonl, .csv, .zeek:
            records?.finish(closedAtNanos: wallClockNanos())
        }
        out.flush()
        if drops > 0 {
            printError("warning: \(drops) packets dropped before tlsreuse saw them; results may miss handshakes")
        }
        if !analysis.quiet {
            printError("\(pipeline.connections) TLS connections; \(kernelLine)")
        }
    }
}

/// One running summary: a line per service with offers, acceptance, support and stickiness so far.
enum LiveSummary {
    static func lines(
        _ reuse: ReuseReport,
        stickiness: [ServiceKey: StickinessVerdict],
        interface: String,
        kernel: LiveCapture.Statistics,
        connections: Int
    ) -> [String] {
        var lines = [
            "\(utcTimestamp(wallClockNanos(), fractionDigits: 0)) \(interface): \(connections) TLS connections, "
                + "\(kernel.received) packets, \(kernel.dropped + kernel.droppedByInterface) dropped"
                + (kernel.dropped + kernel.droppedByInterface > 0 ? " (WARNING: drops)" : "")
        ]
        for service in reuse.services {
            let offers = Mechanism.allCases.map { m in
                let c = service.offers[m] ?? OfferCount()
                return "\(m.rawValue) \(c.accepted)/\(c.made) \(service.support[m]?.value.rawValue ?? "unknown")"
            }.joined(separator: ", ")
            let endpoint = service.key.description
            lines.append(
                "  \(endpoint)  \(service.connections) conns, \(service.resumed) resumed; offers accepted/made: "
                    + "\(offers); stickiness \(stickiness[service.key]?.verdict.rawValue ?? "-")"
            )
        }
        return lines
    }
}
