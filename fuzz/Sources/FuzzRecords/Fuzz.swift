import FuzzDriver
import Handshakes
import Reports

/// Saved records (`--from`): one line parsed as JSON and read as a handshake record, then
/// written back in every format. Input: one line of bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let json = try? JSONParser.parse(Array(UnsafeBufferPointer(start: data, count: size))),
        let record = try? HandshakeRecord(json: json)
    else { return 0 }
    var writer = JSONWriter()
    record.writeJSON(into: &writer)
    // What was written must read back as a record (times past microseconds are rounded, so
    // the record itself may differ).
    guard let again = try? JSONParser.parse(writer.bytes), (try? HandshakeRecord(json: again)) != nil else {
        fatalError("tlsreuse wrote a record it cannot read")
    }
    let cells = FlatRecord.cells(record)
    _ = FlatRecord.csvRow(cells)
    _ = FlatRecord.zeekRow(cells)
    var table = HandshakeTextTable()
    _ = table.lines(for: [record])
    _ = utcTimestamp(record.timestampNanos)
    return 0
}

@_cdecl("FuzzRecords_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv, fuzz)
}
