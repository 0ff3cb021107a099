import ArgumentParser
import Capture
import Handshakes
import Reports

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
        """,
        version: "0.1.0",
        subcommands: [HandshakesCommand.self],
        defaultSubcommand: HandshakesCommand.self
    )
}

/// Options every file-reading subcommand shares.
struct InputOptions: ParsableArguments {
    @Argument(help: "Capture files (pcap, pcapng, .gz); \"-\" reads standard input. Several files are read as one capture in timestamp order.")
    var files: [String] = []

    @Option(name: .customLong("bpf"), help: "Only packets matching this libpcap filter expression, e.g. 'tcp port 443'.")
    var bpf: String?

    @Flag(name: [.customShort("q"), .long], help: "No summary on standard error.")
    var quiet = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one capture file, or \"-\" for standard input") }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case jsonl
}

struct HandshakesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handshakes",
        abstract: "Print one record per TLS connection, in the order of each connection's first ClientHello.",
        discussion: """
        Examples:
          tlsreuse handshakes captures/tls12-session-id.pcap
          tlsreuse handshakes --format jsonl day1.pcap.gz day2.pcap.gz | jq 'select(.resumed)'
          tcpdump -i eth0 -w - 'tcp port 443' | tlsreuse handshakes --format jsonl -
        """
    )

    @OptionGroup var input: InputOptions

    @Option(help: "Output format: \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: OutputFormat = .text

    @Option(name: [.customShort("o"), .long], help: "Write records to this file instead of standard output.")
    var output: String?

    func run() throws {
        let writer: LineWriter
        do { writer = try output.map { (path: String) throws(OutputError) in try LineWriter(path: path) } ?? LineWriter() }
        catch {
            printError(error.description)
            throw ExitStatus.output
        }
        var table = HandshakeTextTable()
        var json = JSONWriter()
        // Text columns are sized from the first rows, then stream.
        var firstRows: [HandshakeRecord] = []
        let sizingRows = 200
        let emit: (HandshakeRecord) -> Void = { record in
            switch format {
            case .jsonl:
                json.reset()
                json.object(record.fields)
                writer.line(bytes: json.bytes)
            case .text:
                if firstRows.count < sizingRows {
                    firstRows.append(record)
                    if firstRows.count == sizingRows { table.lines(for: firstRows).forEach(writer.line) }
                } else {
                    table.lines(for: [record]).forEach(writer.line)
                }
            }
        }
        let statistics: ExtractionStatistics
        do {
            statistics = try Extraction.run(paths: input.files, filter: input.bpf, emit: emit)
        } catch {
            printError(error.description)
            throw ExitStatus.usage
        }
        if format == .text, firstRows.count < sizingRows { table.lines(for: firstRows).forEach(writer.line) }
        writer.flush()
        try finish(statistics, quiet: input.quiet)
    }
}

/// Prints the summary and picks the exit code: input errors name what could not be read.
func finish(_ statistics: ExtractionStatistics, quiet: Bool) throws {
    let unreadable = statistics.inputs.filter { $0.error != nil }
    if !quiet || !statistics.damagedInputs.isEmpty {
        for line in CaptureSummary.lines(statistics) where !quiet || line.hasPrefix("could not") || line.contains(": ") {
            printError(line)
        }
    }
    if !unreadable.isEmpty, unreadable.count == statistics.inputs.count { throw ExitStatus.input }
    if !statistics.damagedInputs.isEmpty { throw ExitStatus.partialResults }
}
