import ArgumentParser
import Handshakes
import Reports
import Resumption

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Per service: does it resume sessions, by which mechanism, how acceptance falls with age, how long sessions live.",
        discussion: """
        Examples:
          tlsreuse captures/tls12-ticket.pcap
          tlsreuse report --format json day1.pcap.gz day2.pcap.gz | jq '.services[] | {server, port, support}'
          tlsreuse report --pairs --client 10.1.2.3 --since '2026-11-29 05:00:00' archive/*.pcap
        """
    )

    @OptionGroup var input: InputOptions
    @OptionGroup var analysis: AnalysisOptions

    @Option(help: "Output format: \(ReportFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: ReportFormat = .text

    @Option(help: "Upper edges of the session-age buckets in seconds, comma-separated.")
    var ageBuckets: String = "5,10,30,300,3600"

    @Flag(help: "List each client's sequence of connections per service (always in JSON).")
    var pairs = false

    @Option(name: [.customShort("o"), .long], help: "Write the report to this file instead of standard output.")
    var output: String?

    func validate() throws {
        _ = try bucketEdges()
    }

    func bucketEdges() throws -> [Double] {
        let edges = ageBuckets.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !edges.isEmpty, edges.allSatisfy({ ($0 ?? -1) > 0 }), edges.map({ $0! }) == edges.map({ $0! }).sorted() else {
            throw ValidationError("--age-buckets: give increasing positive numbers of seconds, e.g. 5,10,30,300,3600")
        }
        return edges.map { $0! }
    }

    func run() throws {
        var options = ReuseOptions()
        options.ageBucketEdges = try bucketEdges()
        let writer = try openOutput(output)
        let (statistics, pipeline) = try analyseFiles(input, analysis, reuse: options) { _ in }
        writeReport(format: format, pairs: pairs, pipeline: pipeline, statistics: statistics, to: writer)
        try finish(statistics, quiet: analysis.quiet)
    }
}

/// The final report, the same for files and live capture.
func writeReport(format: ReportFormat, pairs: Bool, pipeline: Pipeline, statistics: ExtractionStatistics,
                 extra: [Field] = [], to writer: LineWriter) {
    let reuse = pipeline.reuseReport
    let stickiness = pipeline.stickinessVerdicts()
    switch format {
    case .text:
        ReuseReportText(showPairs: pairs).lines(reuse, stickiness: stickiness, statistics: statistics).forEach(writer.line)
    case .json:
        ReuseReportFields.write(reuse, stickiness: stickiness, statistics: statistics, extra: extra, to: writer)
    }
    writer.flush()
}
