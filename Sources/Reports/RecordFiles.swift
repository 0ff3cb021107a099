import Capture
import Handshakes
import HeapModule

/// What was read from one file of saved records.
package struct RecordInputStats: Sendable {
    package var name: String
    package var records = 0
    /// Lines that were not a record (cut off, edited, another program's output).
    package var unreadableLines = 0
    /// The first unreadable line's number and reason, for the message on stderr.
    package var firstProblem: String?
    /// The file could not be opened or read to its end.
    package var error: String?
    /// Records earlier than the one before them: the file was not in ClientHello order.
    package var outOfOrder = 0

    package init(name: String) { self.name = name }
}

/// What a run over saved records read, for the report's "records" section.
package struct RecordInputSummary: Sendable {
    package var inputs: [RecordInputStats] = []
    package var firstNanos: Int64?
    package var lastNanos: Int64?
    package var records: Int { inputs.reduce(0) { $0 + $1.records } }
    package var damagedInputs: [RecordInputStats] { inputs.filter { $0.error != nil || $0.unreadableLines > 0 } }

    package init() {}

    package var fields: [Field] {
        [
            Field(
                "inputs",
                .objects(
                    inputs.map { input in
                        [
                            Field("name", .string(input.name)),
                            Field("records", .int(Int64(input.records))),
                            Field("unreadable_lines", .int(Int64(input.unreadableLines))),
                            Field("out_of_order", .int(Int64(input.outOfOrder))),
                            Field("error", .optional(input.error)),
                        ]
                    }
                )
            ),
            Field("first_connection", firstNanos.map(FieldValue.timestamp) ?? .null),
            Field("last_connection", lastNanos.map(FieldValue.timestamp) ?? .null),
            Field("records", .int(Int64(records))),
        ]
    }

    /// One line per file that could not be read, or only in part.
    package var problems: [String] {
        damagedInputs.map { input in
            if let error = input.error { return "\(input.name): \(error)" }
            return
                "\(input.name): \(input.unreadableLines) line\(input.unreadableLines == 1 ? "" : "s") not a "
                + "handshake record (first: \(input.firstProblem ?? "?")); the rest was read"
        }
    }

    package var summary: String {
        "\(records) handshake records from \(inputs.count) file\(inputs.count == 1 ? "" : "s")"
    }
}

/// Where a report's records came from: captures, or files of saved records.
package enum ReportSource {
    case capture(ExtractionStatistics)
    case records(RecordInputSummary)

    /// The report's first section: "capture" or "records".
    package var field: Field {
        switch self {
        case let .capture(statistics): Field("capture", .object(CaptureSummary.fields(statistics)))
        case let .records(summary): Field("records", .object(summary.fields))
        }
    }

    /// First and last time seen: packets of a capture, connections of saved records.
    package var span: (first: Int64, last: Int64)? {
        switch self {
        case let .capture(s):
            guard let first = s.firstPacketNanos, let last = s.lastPacketNanos else { return nil }
            return (first, last)
        case let .records(s):
            guard let first = s.firstNanos, let last = s.lastNanos else { return nil }
            return (first, last)
        }
    }
}

/// Reads files of saved records (`handshakes --format jsonl` or `--format json`, optionally
/// gzip-compressed, "-" for standard input) and merges them in ClientHello time order, so
/// records extracted per file or per machine are analysed as one capture.
package final class RecordFileSet {
    /// A file's next record, ordered by ClientHello time, then by file.
    private struct Pending: Comparable {
        var record: HandshakeRecord
        var index: Int
        static func < (a: Pending, b: Pending) -> Bool {
            (a.record.timestampNanos, a.index) < (b.record.timestampNanos, b.index)
        }
        static func == (a: Pending, b: Pending) -> Bool {
            (a.record.timestampNanos, a.index) == (b.record.timestampNanos, b.index)
        }
    }

    private var readers: [LineReader?] = []
    private var stats: [RecordInputStats] = []
    private var lineNumbers: [Int] = []
    private var previousNanos: [Int64] = []
    package private(set) var summary = RecordInputSummary()

    package init(paths: [String]) {
        for path in paths {
            var input = RecordInputStats(name: path)
            do {
                readers.append(try LineReader(path: path))
            } catch {
                input.error = error.reason
                readers.append(nil)
            }
            stats.append(input)
        }
        lineNumbers = Array(repeating: 0, count: paths.count)
        previousNanos = Array(repeating: .min, count: paths.count)
    }

    /// The next record of file `index`, or nil at its end.
    private func nextRecord(_ index: Int) -> HandshakeRecord? {
        guard let reader = readers[index] else { return nil }
        while let raw = reader.next() {
            lineNumbers[index] += 1
            var line = raw[...]
            while let last = line.last, last == 0x20 || last == 0x09 { line.removeLast() }
            // The JSON array format: "[" and "]" on lines of their own, a comma after each record.
            if line.isEmpty || line.elementsEqual("[".utf8) || line.elementsEqual("]".utf8) { continue }
            if line.last == UInt8(ascii: ",") { line.removeLast() }
            do {
                let record = try HandshakeRecord(json: try JSONParser.parse(Array(line)))
                stats[index].records += 1
                if record.timestampNanos < previousNanos[index] { stats[index].outOfOrder += 1 }
                previousNanos[index] = record.timestampNanos
                return record
            } catch {
                stats[index].unreadableLines += 1
                if stats[index].firstProblem == nil {
                    stats[index].firstProblem = "line \(lineNumbers[index]): \(error)"
                }
            }
        }
        if let readError = reader.readError {
            stats[index].error = "read error after \(lineNumbers[index]) lines: \(readError)"
        }
        if reader.overlongLines > 0 {
            stats[index].unreadableLines += reader.overlongLines
            if stats[index].firstProblem == nil {
                stats[index].firstProblem = "a line longer than \(LineReader.maximumLine) bytes"
            }
        }
        readers[index] = nil
        return nil
    }

    /// Passes every record on, earliest ClientHello first (ties: earlier file first).
    package func run(_ emit: (HandshakeRecord) -> Void) {
        var heap = Heap<Pending>()
        for index in readers.indices {
            if let record = nextRecord(index) { heap.insert(Pending(record: record, index: index)) }
        }
        while let pending = heap.popMin() {
            let (record, index) = (pending.record, pending.index)
            if summary.firstNanos == nil { summary.firstNanos = record.timestampNanos }
            summary.lastNanos = max(summary.lastNanos ?? .min, record.timestampNanos)
            if let next = nextRecord(index) { heap.insert(Pending(record: next, index: index)) }
            emit(record)
        }
        summary.inputs = stats
    }
}
