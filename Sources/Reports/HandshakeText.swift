import Handshakes
import TLSWire

/// The `handshakes --format text` table: one aligned line per connection.
/// Column widths come from the first rows and grow when a longer value appears, up to
/// `maximumColumnWidth`; a longer value is cut there and ends in "…". Wire strings are
/// escaped for the terminal (`DisplayText`).
public struct HandshakeTextTable {
    /// The widest a column grows, so one long name cannot widen every row.
    public static let maximumColumnWidth = 64

    public static let header = [
        "TIME (UTC)", "CLIENT", "SERVER", "SNI", "VERSION", "CIPHER", "OFFERED", "RESUMED", "EST", "NOTES",
    ]
    private var widths = HandshakeTextTable.header.map(\.count)
    private var headerWritten = false

    public init() {}

    public static func cells(_ record: HandshakeRecord) -> [String] {
        var offered: [String] = []
        // In TLS 1.3 the session ID is middlebox compatibility mode (RFC 8446 D.4), not an offer.
        if !record.clientSessionID.isEmpty, !(record.version?.isTLS13Family ?? false) { offered.append("sid") }
        if record.offeredTicket { offered.append("ticket") }
        if record.offeredPSK { offered.append(record.pskKind == .external ? "ext-psk" : "psk") }
        let resumed: String
        switch record.resumed {
        case .none: resumed = "?"
        case .some(false): resumed = "no"
        case .some(true): resumed = "yes (\(record.resumption?.rawValue ?? "?"))"
        }
        var notes: [String] = []
        if record.hrr { notes.append("hrr") }
        if record.ticketIssued { notes.append("ticket-issued") }
        if let alert = record.alert { notes.append("alert=\(alert)") }
        if record.gaps > 0 { notes.append("gaps=\(record.gaps)") }
        if let malformed = record.malformed { notes.append("malformed: \(malformed)") }
        var cipher = record.cipher?.description ?? "-"
        if cipher.hasPrefix("TLS_") { cipher.removeFirst(4) }
        return [
            utcTimestamp(record.timestampNanos),
            record.client.endpoint(port: record.clientPort),
            record.server.endpoint(port: record.serverPort),
            record.sni ?? "-",
            record.version?.description ?? "-",
            cipher,
            offered.isEmpty ? "-" : offered.joined(separator: "+"),
            resumed,
            record.established ? "yes" : "no",
            notes.joined(separator: " "),
        ]
    }

    /// Lines for these records (the header before the first).
    public mutating func lines(for records: [HandshakeRecord]) -> [String] {
        let rows = records.map {
            HandshakeTextTable.cells($0).map { DisplayText.cell($0, width: Self.maximumColumnWidth) }
        }
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        var out: [String] = []
        if !headerWritten {
            out.append(format(HandshakeTextTable.header))
            headerWritten = true
        }
        out += rows.map(format)
        return out
    }

    private func format(_ cells: [String]) -> String {
        var line = ""
        for (i, cell) in cells.enumerated() {
            if i == cells.count - 1 {
                line += cell
                break
            }
            line += cell + String(repeating: " ", count: widths[i] - cell.count + 2)
        }
        while line.hasSuffix(" ") { line.removeLast() }
        return line
    }
}
