import FuzzDriver
import Reports

/// The option values a user types (`--since`, `--memory-limit`, `--age-buckets`, `--server`,
/// durations). Input: the text, its first byte choosing the parser.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    switch data[0] % 5 {
    case 0: _ = OptionValues.time(text)
    case 1: _ = OptionValues.size(text)
    case 2: _ = OptionValues.ageBuckets(text)
    case 3: _ = OptionValues.server(text)
    default: _ = Double(text).flatMap(OptionValues.duration)
    }
    return 0
}

@_cdecl("FuzzOptions_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv, fuzz)
}
