import Handshakes
import Packets

/// Forensic filters: a time window, a server (address, optionally with port), a client
/// address, an SNI. Applied after linking, so sessions issued outside the window still
/// give ages and links to the connections inside it.
public struct RecordFilter: Sendable {
    public var sinceNanos: Int64?
    public var untilNanos: Int64?
    public var server: IPAddress?
    public var serverPort: UInt16?
    public var client: IPAddress?
    public var sni: String?

    public init() {}

    public var isEmpty: Bool {
        sinceNanos == nil && untilNanos == nil && server == nil && serverPort == nil && client == nil && sni == nil
    }

    public func matches(_ record: HandshakeRecord) -> Bool {
        if let sinceNanos, record.timestampNanos < sinceNanos { return false }
        if let untilNanos, record.timestampNanos >= untilNanos { return false }
        if let server, record.server != server { return false }
        if let serverPort, record.serverPort != serverPort { return false }
        if let client, record.client != client { return false }
        if let sni, record.sni?.lowercased() != sni.lowercased() { return false }
        return true
    }
}
