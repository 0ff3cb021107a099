import Capture
import FuzzDriver

/// The pcap/pcapng reader. Input: a whole capture file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let reader = try? CaptureFileReader(bytes: Array(UnsafeBufferPointer(start: data, count: size))) else {
        return 0
    }
    var packets = 0
    while let packet = reader.next() {
        packets &+= packet.bytes.count
    }
    _ = reader.stats
    return 0
}

@_cdecl("FuzzCapture_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv, fuzz)
}
