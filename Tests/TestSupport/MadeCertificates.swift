import Foundation

/// Certificates made by `openssl ca` for the tests of hostile certificate fields (validity
/// years a normal CA would not write, small keys). The DER is openssl's; only the fields
/// are chosen by the test.
package enum MadeCertificates {
    /// A leaf certificate with CN `commonName`, an RSA key of `bits`, and validity from
    /// `notBefore` to `notAfter` (GeneralizedTime "YYYYMMDDHHMMSSZ"), signed by a throwaway CA.
    /// Returns the DER and what `openssl x509 -dates` prints for it.
    package static func make(
        commonName: String = "far.example",
        bits: Int,
        notBefore: String,
        notAfter: String
    ) throws
        -> (der: [UInt8], dates: String)
    {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        let configuration =
            "[ca]\ndefault_ca = test\n[test]\ndatabase = \(path("index.txt"))\nnew_certs_dir = \(folder.path)\n"
            + "serial = \(path("serial"))\ndefault_md = sha256\npolicy = any\nunique_subject = no\n"
            + "[any]\ncommonName = supplied\n"
        try configuration.write(toFile: path("ca.cnf"), atomically: true, encoding: .utf8)
        try "".write(toFile: path("index.txt"), atomically: true, encoding: .utf8)
        try "01\n".write(toFile: path("serial"), atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            [
                "req", "-x509", "-newkey", "rsa:\(bits)", "-nodes", "-keyout", path("ca.key"), "-out", path("ca.pem"),
                "-subj", "/CN=test-ca", "-days", "1",
            ],
            [
                "req", "-new", "-newkey", "rsa:\(bits)", "-nodes", "-keyout", path("leaf.key"), "-out",
                path("leaf.csr"), "-subj", "/CN=\(commonName)",
            ],
            [
                "ca", "-batch", "-config", path("ca.cnf"), "-cert", path("ca.pem"), "-keyfile", path("ca.key"), "-in",
                path("leaf.csr"),
                "-out", path("leaf.pem"), "-startdate", notBefore, "-enddate", notAfter, "-notext",
            ],
            ["x509", "-in", path("leaf.pem"), "-outform", "DER", "-out", path("leaf.der")],
        ]
        for step in steps {
            let result = try runProcess("openssl", step)
            guard result.status == 0 else {
                throw MadeCertificateError(message: "openssl \(step[0]): \(result.stderr)")
            }
        }
        let dates = try runProcess("openssl", ["x509", "-in", path("leaf.pem"), "-noout", "-dates"]).stdout
        return (Array(try Data(contentsOf: URL(fileURLWithPath: path("leaf.der")))), dates)
    }
}

package struct MadeCertificateError: Error, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}
