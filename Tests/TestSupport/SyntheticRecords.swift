import Handshakes
import Packets
import TLSWire

/// SYNTHETIC RECORDS, built here to exercise one linking rule each (not from a capture).
package func syntheticRecord(
    _ uid: String,
    at seconds: Double,
    client: String = "10.0.0.1",
    version: ProtocolVersion = .tls1_2,
    build: (inout HandshakeRecord) -> Void = { _ in }
) -> HandshakeRecord {
    var record = HandshakeRecord(
        uid: uid,
        timestampNanos: Int64(seconds * 1e9),
        client: IPAddress(client)!,
        clientPort: 50000,
        server: IPAddress("10.0.0.9")!,
        serverPort: 443
    )
    record.version = version
    record.versionsOffered = [version]
    record.resumed = false
    build(&record)
    return record
}

/// A synthetic record's session ID, ticket digest or key name written as a label ("t1",
/// "aa"): its UTF-8 bytes, which are all the linker compares.
extension ShortBytes: ExpressibleByStringLiteral {
    public init(stringLiteral label: String) { self.init(Array(label.utf8)) }
}

extension ShortBytes {
    /// `label`'s UTF-8 bytes, as `ExpressibleByStringLiteral` makes them, for labels built at run time.
    package init(label: String) { self.init(Array(label.utf8)) }
}
