import ArgumentParser
import CHints
import Capture
import Foundation
import Handshakes
import Packets
import Pipeline
import Reassembly
import Reports
import Resumption
import Stickiness
import TLSWire

#if canImport(Glibc)
import Glibc
import Linking
#endif

/// Exit codes, documented in the README.
enum ExitStatus {
    /// Results were produced, but some input could not be read or was damaged.
    static let partialResults = ExitCode(1)
    /// Bad options or arguments (sysexits EX_USAGE).
    static let usage = ExitCode(64)
    /// No input could be read: missing, unreadable, not a capture (sysexits EX_NOINPUT).
    static let input = ExitCode(66)
    /// Output could not be written (sysexits EX_CANTCREAT).
    static let output = ExitCode(73)
    /// Live capture is not permitted (sysexits EX_NOPERM).
    static let capturePermission = ExitCode(77)
}

@main
struct TLSReuse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tlsreuse",
        abstract: "Passive TLS session-reuse analysis from packet captures.",
        discussion: """
            Reads pcap and pcapng files (optionally gzip-compressed, "-" for standard input),
            reassembles TCP and parses every TLS handshake, without sending a packet.
            `tlsreuse FILE...` is `tlsreuse report FILE...`.
            """,
        version: "0.2.0",
        subcommands: [ReportCommand.self, HandshakesCommand.self, LiveCommand.self],
        defaultSubcommand: ReportCommand.self
    )

    static func main() {
        // glibc maps a worker thread's heap a page at a time as it grows, an mprotect call
        // each with the address space locked against the other threads: about 2,000 calls
        // with two workers on `dense.pcap`. Heaps that start with 16 MiB mapped (not
        // touched, so not resident) need about 20.
        tlsreuse_pad_heaps(16 << 20)
        let names = configuration.subcommands.map { $0._commandName } + ["help"]
        main(negativeValuesJoined(subcommandFirst(Array(CommandLine.arguments.dropFirst()), names: names)))
    }

    /// `--jobs -1` is `--jobs=-1`: the parser takes a lone "-1" for an option and says a
    /// value is missing, where the option's own check says what range it takes.
    static func negativeValuesJoined(_ arguments: [String]) -> [String] {
        var joined: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                joined += arguments[index...]
                break
            }
            if argument.hasPrefix("--"), !argument.contains("="), index + 1 < arguments.count,
                Double(arguments[index + 1]).map({ $0 < 0 }) == true
            {
                joined.append(argument + "=" + arguments[index + 1])
                index += 2
                continue
            }
            joined.append(argument)
            index += 1
        }
        return joined
    }

    /// `tlsreuse -q handshakes f.pcap` is `tlsreuse handshakes -q f.pcap`: options given
    /// before a subcommand's name go after it (the parser would otherwise run `report` on a
    /// file named "handshakes"). Only when the arguments start with an option and no file of
    /// that name is here.
    static func subcommandFirst(
        _ arguments: [String],
        names: [String],
        fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }
    ) -> [String] {
        guard let first = arguments.first, first.hasPrefix("-"), first != "-",
            let index = arguments.firstIndex(where: { names.contains($0) }), index > 0,
            !arguments[..<index].contains("--"), !fileExists(arguments[index])
        else { return arguments }
        var reordered = arguments
        let name = reordered.remove(at: index)
        return [name] + reordered
    }
}

func memoryLimitError(_ text: String) -> ValidationError {
    ValidationError("--memory-limit: '\(text)' is not a size from 64M to 1024G, e.g. 256M or 2G")
}

/// The capture files a subcommand reads.
struct InputOptions: ParsableArguments {
    @Argument(
        help: ArgumentHelp(
            "Capture files (pcap, pcapng, .gz); \"-\" reads standard input. Several files are read as one capture in "
                + "timestamp order."
        ),
        completion: .file()
    )
    var files: [String] = []

    @Option(
        name: .customLong("bpf"),
        help: ArgumentHelp(
            "Only packets matching this libpcap filter expression, e.g. 'tcp port 443'.",
            valueName: "EXPR"
        )
    )
    var bpf: String?

    @Option(
        help: ArgumentHelp(
            "Worker threads following TCP flows, 1 to 64 (default: one per core). Standard input uses one.",
            valueName: "N"
        )
    )
    var jobs: Int?

    @Option(
        help: ArgumentHelp(
            "Memory for the whole run, all workers together: flows, buffers, records, remembered sessions, "
                + "statistics. Bytes, or a number with K, M or G (default 256M, at least 64M). Past a stage's part, "
                + "the oldest or least recently active holder gives way, and what was dropped is counted.",
            valueName: "SIZE"
        )
    )
    var memoryLimit: String?

    @Option(
        name: .customLong("keylog"),
        help: ArgumentHelp(
            "A key log in the NSS format (what SSLKEYLOGFILE and openssl s_client -keylogfile write): the TLS 1.3 "
                + "connections it names are read through the server's encrypted records, for the certificate, the "
                + "tickets and early data. Repeatable. As sensitive as a private key; no secret is printed or "
                + "recorded.",
            valueName: "FILE"
        ),
        completion: .file()
    )
    var keylogs: [String] = []

    /// The key logs, read; nil without `--keylog`. Lines that do not parse are named on
    /// standard error and the run goes on; a key log that cannot be read ends it (66).
    func keyLog() throws -> KeyLog? {
        guard !keylogs.isEmpty else { return nil }
        var keyLog = KeyLog(memoryBytes: try memoryBudget().keyLog)
        for path in keylogs {
            guard let data = FileManager.default.contents(atPath: path) else {
                printError("could not read the key log \(path)")
                throw ExitStatus.input
            }
            let before = keyLog.malformedLines
            keyLog.add(text: data, source: path)
            if keyLog.malformedLines > before {
                for problem in keyLog.problems.suffix(keyLog.problems.count - min(keyLog.problems.count, before)) {
                    printError("key log: \(problem)")
                }
            }
        }
        if keyLog.malformedLines > keyLog.problems.count {
            printError("key log: \(keyLog.malformedLines) lines in all that are not key log lines")
        }
        if keyLog.linesNotKept > 0 {
            printError(
                "key log: \(keyLog.linesNotKept) secrets past \(keyLog.connectionLimit) connections not kept "
                    + "(the memory budget's part for key logs; raise --memory-limit)"
            )
        }
        keyLog.forgetProblems()
        return keyLog
    }

    func validate() throws {
        if let jobs, jobs < 1 || jobs > 64 { throw ValidationError("--jobs must be between 1 and 64") }
        _ = try memoryBudget()
    }

    /// `--memory-limit` as a budget.
    func memoryBudget() throws -> MemoryBudget {
        guard let budget = OptionValues.memoryBudget(memoryLimit) else { throw memoryLimitError(memoryLimit ?? "") }
        return budget
    }

    /// The extraction limits for this run's budget and workers.
    func limits() -> ReassemblyLimits {
        ReassemblyLimits(budget: (try? memoryBudget()) ?? MemoryBudget(), workers: workers)
    }

    /// Workers to use: one for standard input, a pipe or a FIFO (they cannot be read twice).
    var workers: Int {
        if files.contains("-") { return 1 }
        let streams = files.contains { path in
            var info = stat()
            return stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG
        }
        if streams { return 1 }
        return jobs ?? min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 8)
    }

    /// A pipe or terminal on standard input, or a FIFO, is live traffic: records go out as
    /// they are decided.
    var isLivePipe: Bool {
        guard files.count == 1 else { return false }
        var info = stat()
        let found = files == ["-"] ? fstat(STDIN_FILENO, &info) == 0 : stat(files[0], &info) == 0
        return found && (info.st_mode & S_IFMT) != S_IFREG && (info.st_mode & S_IFMT) != S_IFDIR
    }
}

/// Options for the analysis of handshake records: forensic filters and bounds.
struct AnalysisOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Only connections from this time on: epoch seconds or UTC 'YYYY-MM-DD HH:MM:SS'.",
            valueName: "TIME"
        )
    )
    var since: String?

    @Option(
        help: ArgumentHelp(
            "Only connections before this time: epoch seconds or UTC 'YYYY-MM-DD HH:MM:SS'.",
            valueName: "TIME"
        )
    )
    var until: String?

    @Option(help: ArgumentHelp("Only this server: ADDRESS, or ADDRESS:PORT ([IPv6]:PORT).", valueName: "ADDR[:PORT]"))
    var server: String?

    @Option(help: ArgumentHelp("Only this client address.", valueName: "ADDR"))
    var client: String?

    @Option(help: ArgumentHelp("Only connections with this server name (SNI).", valueName: "NAME"))
    var sni: String?

    @Option(help: ArgumentHelp("Forget issued sessions older than this many seconds.", valueName: "SECONDS"))
    var sessionHorizon: Double = 86_400

    @Flag(name: [.customShort("q"), .long], help: "No summary on standard error.")
    var quiet = false

    func validate() throws {
        _ = try recordFilter()
        guard sessionHorizon > 0, OptionValues.duration(sessionHorizon) != nil else {
            throw ValidationError(
                "--session-horizon must be a positive number of seconds, at most ten years "
                    + "(\(Int(CaptureTime.maximumDurationSeconds)))"
            )
        }
    }

    func recordFilter() throws -> RecordFilter {
        var filter = RecordFilter()
        if let since { filter.sinceNanos = try parseTime(since, option: "--since") }
        if let until { filter.untilNanos = try parseTime(until, option: "--until") }
        if let client {
            guard let address = IPAddress(client) else {
                throw ValidationError("--client: '\(client)' is not an IPv4 or IPv6 address")
            }
            filter.client = address
        }
        if let server {
            guard let (address, port) = OptionValues.server(server) else {
                throw ValidationError("--server: '\(server)' is not ADDRESS or ADDRESS:PORT")
            }
            filter.server = address
            filter.serverPort = port
        }
        filter.sni = sni
        return filter
    }

    private func parseTime(_ text: String, option: String) throws -> Int64 {
        guard let nanos = OptionValues.time(text) else {
            throw ValidationError(
                "\(option): '\(text)' is not a time tlsreuse reads: epoch seconds or 'YYYY-MM-DD HH:MM:SS' (UTC), "
                    + "from 1900-01-01 to 2149-12-31"
            )
        }
        return nanos
    }
}

extension AnalysisOptions {
    /// The pipeline's options from the command line's.
    func pipelineOptions(
        budget: MemoryBudget,
        reuse: ReuseOptions = ReuseOptions(),
        legWindowNanos: Int64 = LegPairer.defaultWindowNanos,
        analysesServices: Bool = true
    ) throws -> PipelineOptions {
        var options = PipelineOptions()
        options.filter = try recordFilter()
        options.sessionHorizonSeconds = sessionHorizon
        options.reuse = reuse
        options.legWindowNanos = legWindowNanos
        options.budget = budget
        options.analysesServices = analysesServices
        return options
    }
}

/// Runs the pipeline over capture files.
func analyseFiles(
    _ input: InputOptions,
    _ options: AnalysisOptions,
    reuse: ReuseOptions = ReuseOptions(),
    recordOptions: RecordOptions = RecordOptions(),
    analysesServices: Bool = true,
    each: @escaping (HandshakeRecord) -> Void
) throws -> (ExtractionStatistics, Pipeline) {
    let budget = (try? input.memoryBudget()) ?? MemoryBudget()  // checked by validate()
    // A live pipe holds records for leg pairing as `live` does: half a second.
    let window = input.isLivePipe ? LiveCommand.legWindowNanos : LegPairer.defaultWindowNanos
    let pipeline = Pipeline(
        try options.pipelineOptions(
            budget: budget,
            reuse: reuse,
            legWindowNanos: window,
            analysesServices: analysesServices
        ),
        each: each
    )
    var recordOptions = recordOptions
    recordOptions.keyLog = try input.keyLog()
    let progress = ProgressDisplay.start(files: input.files, quiet: options.quiet)
    defer { progress?.stop() }
    do {
        let statistics = try pipeline.extract(
            files: input.files,
            bpf: input.bpf,
            workers: input.workers,
            limits: input.limits(),
            order: input.isLivePipe ? .decision : .firstClientHello,
            options: recordOptions
        )
        return (statistics, pipeline)
    } catch {
        printError(error.description)
        throw ExitStatus.usage
    }
}

func openOutput(_ path: String?) throws -> LineWriter {
    do {
        return try path.map { (path: String) throws(OutputError) in try LineWriter(path: path) } ?? LineWriter()
    } catch {
        printError(error.description)
        throw ExitStatus.output
    }
}

/// Runs the analysis over files of saved records (`--from`), merged in ClientHello order.
func analyseRecordFiles(
    _ paths: [String],
    _ options: AnalysisOptions,
    budget: MemoryBudget,
    reuse: ReuseOptions = ReuseOptions(),
    analysesServices: Bool = true,
    each: @escaping (HandshakeRecord) -> Void
) throws -> (RecordInputSummary, Pipeline) {
    let pipeline = Pipeline(
        try options.pipelineOptions(budget: budget, reuse: reuse, analysesServices: analysesServices),
        each: each
    )
    let files = RecordFileSet(paths: paths)
    let progress = ProgressDisplay.start(files: paths, quiet: options.quiet)
    files.run { pipeline.take($0) }
    progress?.stop()
    pipeline.finish()
    return (files.summary, pipeline)
}

/// Prints what could not be used (always) and the summary (unless quiet), and picks the
/// exit code: 66 when nothing could be read, 1 when some input was unreadable, damaged or
/// on an unsupported link type (results for the rest were printed).
func finish(_ source: ReportSource, quiet: Bool) throws {
    switch source {
    case let .capture(statistics):
        for line in CaptureSummary.problems(statistics) { printError(line) }
        if !quiet { printError(CaptureSummary.summary(statistics)) }
        let unreadable = statistics.inputs.filter { $0.error != nil }
        if !unreadable.isEmpty, unreadable.count == statistics.inputs.count { throw ExitStatus.input }
        if !statistics.damagedInputs.isEmpty || statistics.decode.unsupportedLinkTypePackets > 0
            || statistics.recordsLostInSpill > 0
        {
            throw ExitStatus.partialResults
        }
    case let .records(summary):
        for line in summary.problems { printError(line) }
        if !quiet { printError(summary.summary) }
        let unreadable = summary.inputs.filter { $0.error != nil && $0.records == 0 }
        if !unreadable.isEmpty, unreadable.count == summary.inputs.count { throw ExitStatus.input }
        if !summary.damagedInputs.isEmpty { throw ExitStatus.partialResults }
    }
}

/// Options for commands that can read saved records instead of captures.
struct RecordSourceOptions: ParsableArguments {
    @Option(
        name: .customLong("from"),
        help: ArgumentHelp(
            "Read saved handshake records (handshakes --format jsonl or json; .gz; \"-\" for standard input) instead "
                + "of captures. Further file arguments are record files too.",
            valueName: "FILE"
        ),
        completion: .file()
    )
    var recordFile: String?

    /// The record files, or nil when reading captures.
    func recordFiles(_ input: InputOptions) -> [String]? {
        recordFile.map { [$0] + input.files }
    }

    func validate(_ input: InputOptions) throws {
        if recordFile == nil, input.files.isEmpty {
            throw ValidationError("name at least one capture file, or \"-\" for standard input")
        }
        if recordFile != nil, input.bpf != nil {
            throw ValidationError("--bpf filters packets; it does not apply to saved records (--from)")
        }
        if recordFile != nil, !input.keylogs.isEmpty {
            throw ValidationError("--keylog opens captured connections; it does not apply to saved records (--from)")
        }
    }
}
