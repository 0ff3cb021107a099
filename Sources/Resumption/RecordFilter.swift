import Handshakes
import Packets

/// Forensic filters: a time window, a server (address, optionally with port), a client
/// address, an SNI. Applied after linking, so sessions issued outside the window still
/// give ages and links to the connections inside it.
package struct RecordFilter: Sendable {
    package var sinceNanos: Int64?
    package var untilNanos: Int64?
    package var server: IPAddress?
    package var serverPort: UInt16?
    package var client: IPAddress?
    package var sni: String?

    package init() {}

    package var isEmpty: Bool {
        sinceNanos == nil && untilNanos == nil && server == nil && serverPort == nil && client == nil && sni == nil
    }

    package func matches(_ record: HandshakeRecord) -> Bool {
        if let sinceNanos, record.timestampNanos < sinceNanos { return false }
        if let untilNanos, record.timestampNanos >= untilNanos { return false }
        if let server, record.server != server { return false }
        if let serverPort, record.serverPort != serverPort { return false }
        if let client, record.client != client { return false }
        if let sni, record.sni?.lowercased() != sni.lowercased() { return false }
        return true
    }
}
