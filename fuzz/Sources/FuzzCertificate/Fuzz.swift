import Handshakes
import Reports

/// The leaf certificate summary (swift-certificates, and the TBSCertificate fallback), and
/// its fields as every record format writes them. Input: DER bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let summary = CertificateSummary.parse(der: Array(UnsafeBufferPointer(start: data, count: size))) else { return 0 }
    _ = utcDate(seconds: summary.notBeforeSeconds) + utcDate(seconds: summary.notAfterSeconds)
    _ = summary.dnsNames
    _ = summary.covers("example.com")
    var json = JSONWriter()
    json.value(.wholeSeconds(summary.notAfterSeconds))
    json.string(summary.subject)
    _ = DisplayText.escaped(summary.issuer + (summary.commonName ?? "") + summary.subjectAlternativeNames.joined())
    return 0
}

// SwiftPM links an executable with main defined as <target>_main; hand control to libFuzzer.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

@_cdecl("FuzzCertificate_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzz)
}
