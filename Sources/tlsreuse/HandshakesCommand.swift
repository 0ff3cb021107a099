import ArgumentParser
import Handshakes
import Reports

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case jsonl
}

struct HandshakesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handshakes",
        abstract: "One record per TLS connection, in the order of each connection's first ClientHello.",
        discussion: """
        Examples:
          tlsreuse handshakes captures/tls12-session-id.pcap
          tlsreuse handshakes --format jsonl day1.pcap.gz day2.pcap.gz | jq 'select(.resumed)'
          tcpdump -i eth0 -w - 'tcp port 443' | tlsreuse handshakes --format jsonl -
        """
    )

    @OptionGroup var input: InputOptions
    @OptionGroup var analysis: AnalysisOptions

    @Option(help: "Output format: \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: OutputFormat = .text

    @Option(name: [.customShort("o"), .long], help: "Write records to this file instead of standard output.")
    var output: String?

    func run() throws {
        let writer = try openOutput(output)
        var table = HandshakeTextTable()
        var json = JSONWriter()
        // Text columns are sized from the first rows, then stream.
        var firstRows: [HandshakeRecord] = []
        let sizingRows = 200
        let (statistics, _) = try analyseFiles(input, analysis) { record in
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
        if format == .text, firstRows.count < sizingRows { table.lines(for: firstRows).forEach(writer.line) }
        writer.flush()
        try finish(statistics, quiet: analysis.quiet)
    }
}
