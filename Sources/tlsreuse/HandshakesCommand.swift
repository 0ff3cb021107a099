import ArgumentParser
import Capture
import Handshakes
import Reports

extension RecordFormat: ExpressibleByArgument {}

struct HandshakesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handshakes",
        abstract: "One record per TLS connection, in the order of each connection's first ClientHello.",
        discussion: """
            Formats: text (aligned columns), jsonl (one JSON object per line), json (one \
            array), csv (RFC 4180 with a header row), zeek (Zeek's tab-separated log; zeek-cut \
            reads it). All carry the same fields; in csv and zeek, nested fields become \
            "parent.child" columns.

            Examples:
              tlsreuse handshakes captures/tls12-session-id.pcap
              tlsreuse handshakes --format jsonl day1.pcap.gz | jq 'select(.resumed)'
              tlsreuse handshakes --format csv -o handshakes.csv archive/*.pcap
              tlsreuse handshakes --format zeek tls13.pcap | zeek-cut ts sni resumed
              tlsreuse handshakes --format csv --from saved.jsonl
              tcpdump -U -w - 'tcp port 443' | tlsreuse handshakes --format jsonl -
            """
    )

    @OptionGroup var input: InputOptions
    @OptionGroup var source: RecordSourceOptions
    @OptionGroup var analysis: AnalysisOptions

    @Option(
        help: ArgumentHelp(
            "Output format: \(RecordFormat.allCases.map(\.rawValue).joined(separator: ", ")).",
            valueName: "FORMAT"
        )
    )
    var format: RecordFormat = .text

    @Option(
        name: [.customShort("o"), .long],
        help: ArgumentHelp("Write records to this file instead of standard output.", valueName: "FILE"),
        completion: .file()
    )
    var output: String?

    func validate() throws { try source.validate(input) }

    func run() throws {
        let output = RecordOutput(format: format, writer: try openOutput(output), openedAtNanos: wallClockNanos())
        let reportSource: ReportSource
        // Records only: the per-service analyses, which nothing here prints, do not run.
        if let recordFiles = source.recordFiles(input) {
            let budget = try input.memoryBudget()
            reportSource = .records(
                try analyseRecordFiles(recordFiles, analysis, budget: budget, analysesServices: false) {
                    output.write($0)
                }.0
            )
        } else {
            reportSource = .capture(try analyseFiles(input, analysis, analysesServices: false) { output.write($0) }.0)
        }
        output.finish(closedAtNanos: wallClockNanos())
        try finish(reportSource, quiet: analysis.quiet)
    }
}
