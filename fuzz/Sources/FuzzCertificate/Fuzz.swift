import FuzzDriver
import Handshakes
import Reports

/// The leaf certificate summary (swift-certificates, and the TBSCertificate fallback), and
/// its fields as every record format writes them. Input: DER bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let summary = CertificateSummary.parse(der: Array(UnsafeBufferPointer(start: data, count: size))) else {
        return 0
    }
    _ = utcDate(seconds: summary.notBeforeSeconds) + utcDate(seconds: summary.notAfterSeconds)
    _ = summary.dnsNames
    _ = summary.covers("example.com")
    var json = JSONWriter()
    json.value(.wholeSeconds(summary.notAfterSeconds))
    json.string(summary.subject)
    _ = DisplayText.escaped(summary.issuer + (summary.commonName ?? "") + summary.subjectAlternativeNames.joined())
    return 0
}

@_cdecl("FuzzCertificate_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv, fuzz)
}
