import Capture
import FuzzDriver
import Packets

let linkTypes: [LinkType] = [.ethernet, .linuxSLL, .linuxSLL2, .null, .loop, .raw, .ipv4, .ipv6, .ppp, .pppHDLC]

/// The link/IP/TCP decoder. Input: one byte choosing the link type, then one packet. The
/// decoder is kept across inputs so IP fragments of different inputs meet.
nonisolated(unsafe) var decoder = PacketDecoder()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let packet = CapturedPacket(
        timestampNanos: 1,
        linkType: linkTypes[Int(data[0]) % linkTypes.count],
        originalLength: size - 1,
        bytes: UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    )
    switch decoder.decode(packet) {
    case let .tcp(segment): _ = segment.options
    default: break
    }
    return 0
}

@_cdecl("FuzzPackets_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv, fuzz)
}
