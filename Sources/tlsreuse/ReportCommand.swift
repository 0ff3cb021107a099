import ArgumentParser
import Capture
import Foundation
import Handshakes
import Pipeline
import Reports
import Resumption

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract:
            "Per service: does it resume sessions, by which mechanism, how acceptance falls with age, how long "
            + "sessions live.",
        discussion: """
            Support per mechanism (session ID, ticket, TLS 1.3 PSK): yes (an offer was accepted), \
            no (the server issues no such sessions, or refused every offer where nothing else \
            could explain it), unknown (no offers, or refusals with several explanations).

            Stickiness verdicts: sticky (returning clients went back to the backend holding their \
            session), not-sticky (they landed elsewhere and lost it), shared (elsewhere, and \
            resumed anyway), sticky-or-shared (resumptions succeed but the capture cannot show \
            the backend; a single server looks the same), single-backend (backends are told \
            apart and all connections went to one), unknown (too little evidence, or evidence \
            that fits several answers: the evidence lines say which).

            Examples:
              tlsreuse captures/tls12-ticket.pcap
              tlsreuse report --format json day1.pcap.gz | jq '.services[].support'
              tlsreuse report --pairs --client 10.1.2.3 archive/*.pcap
              tlsreuse report --since '2026-11-29 05:00:00' archive/*.pcap
              tlsreuse report --html report.html captures/lb-roundrobin.pcap
              tlsreuse report --from site-a.jsonl site-b.jsonl.gz
            """
    )

    @OptionGroup var input: InputOptions
    @OptionGroup var source: RecordSourceOptions
    @OptionGroup var analysis: AnalysisOptions

    @Option(
        help: ArgumentHelp(
            "Output format: \(ReportFormat.allCases.map(\.rawValue).joined(separator: ", ")).",
            valueName: "FORMAT"
        )
    )
    var format: ReportFormat = .text

    @Option(
        help: ArgumentHelp("Upper edges of the session-age buckets in seconds, comma-separated.", valueName: "LIST")
    )
    var ageBuckets: String = "5,10,30,300,3600"

    @Flag(help: "List each client's sequence of connections per service (always in JSON).")
    var pairs = false

    @Option(
        name: [.customShort("o"), .long],
        help: ArgumentHelp("Write the report to this file instead of standard output.", valueName: "FILE"),
        completion: .file()
    )
    var output: String?

    @Option(
        help: ArgumentHelp("Also write the report as one self-contained HTML page with charts.", valueName: "FILE"),
        completion: .file(extensions: ["html"])
    )
    var html: String?

    @Option(
        help: ArgumentHelp(
            "Colour in the text report: auto (on a terminal, unless NO_COLOR is set), always, never.",
            valueName: "WHEN"
        )
    )
    var color: ColorChoice = .auto

    func validate() throws {
        try source.validate(input)
        _ = try bucketEdges()
    }

    func bucketEdges() throws -> [Double] {
        guard let edges = OptionValues.ageBuckets(ageBuckets) else {
            throw ValidationError(
                "--age-buckets: give up to \(OptionValues.maximumAgeBuckets) increasing positive numbers of seconds, "
                    + "at most ten years, e.g. 5,10,30,300,3600"
            )
        }
        return edges
    }

    func run() throws {
        var options = ReuseOptions()
        options.ageBucketEdges = try bucketEdges()
        let writer = try openOutput(output)
        let reportSource: ReportSource
        let pipeline: Pipeline
        if let recordFiles = source.recordFiles(input) {
            let (summary, analysed) = try analyseRecordFiles(
                recordFiles,
                analysis,
                budget: try input.memoryBudget(),
                reuse: options
            ) { _ in }
            (reportSource, pipeline) = (.records(summary), analysed)
        } else {
            let (statistics, analysed) = try analyseFiles(
                input,
                analysis,
                reuse: options,
                recordOptions: RecordOptions(content: .forAnalysis)  // the report prints no record
            ) { _ in }
            (reportSource, pipeline) = (.capture(statistics), analysed)
        }
        writeReport(
            format: format,
            pairs: pairs,
            colors: color.enabled(writingToFile: output != nil),
            pipeline: pipeline,
            source: reportSource,
            to: writer
        )
        if let html {
            let page = try openOutput(html)
            let (reuse, stickiness) = pipeline.results()
            page.line(
                HTMLReport.render(
                    reuse,
                    stickiness: stickiness,
                    source: reportSource,
                    version: TLSReuse.configuration.version
                )
            )
            page.flush()
            if page.failed {
                printError("\(html): could not write the HTML report")
                throw ExitStatus.output
            }
        }
        try finish(reportSource, quiet: analysis.quiet)
    }
}

/// The final report, the same for files and live capture.
func writeReport(
    format: ReportFormat,
    pairs: Bool,
    colors: Bool = false,
    pipeline: Pipeline,
    source: ReportSource,
    extra: [Field] = [],
    to writer: LineWriter
) {
    let (reuse, stickiness) = pipeline.results()
    switch format {
    case .text:
        ReuseReportText(showPairs: pairs, colors: colors).lines(reuse, stickiness: stickiness, source: source).forEach(
            writer.line
        )
    case .json:
        ReuseReportFields.write(reuse, stickiness: stickiness, source: source, extra: extra, to: writer)
    }
    writer.flush()
}

enum ColorChoice: String, ExpressibleByArgument, CaseIterable {
    case auto
    case always
    case never

    /// auto: standard output is a terminal, NO_COLOR is unset or empty (no-color.org) and
    /// TERM is not "dumb".
    func enabled(writingToFile: Bool) -> Bool {
        switch self {
        case .always: return true
        case .never: return false
        case .auto:
            guard !writingToFile, isatty(STDOUT_FILENO) == 1 else { return false }
            let environment = ProcessInfo.processInfo.environment
            if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return false }
            return environment["TERM"] != "dumb"
        }
    }
}
