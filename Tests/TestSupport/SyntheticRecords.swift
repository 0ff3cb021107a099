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
