import Capture
import FuzzDriver
import Handshakes

/// Reassembly and TLS parsing over sequences of packets. Input: raw IPv4/IPv6 packets, each
/// preceded by a two-byte big-endian length; each gets the next millisecond.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var extractor = HandshakeExtractor()
    var position = 0
    var time: Int64 = 1_000_000_000
    var records = 0
    while position + 2 <= size {
        let length = Int(data[position]) << 8 | Int(data[position + 1])
        position += 2
        let end = min(size, position + length)
        let packet = CapturedPacket(
            timestampNanos: time,
            linkType: .raw,
            originalLength: length,
            bytes: UnsafeRawBufferPointer(start: data + position, count: end - position)
        )
        extractor.process(packet) { _ in records += 1 }
        position = end
        time += 1_000_000
    }
    extractor.finish { _ in records += 1 }
    return 0
}

@_cdecl("FuzzReassembly_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv, fuzz)
}
