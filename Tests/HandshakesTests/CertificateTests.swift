import Foundation
import Handshakes
import Packets
import TestSupport
import Testing

/// The leaf certificate of every full TLS 1.2-and-earlier handshake, checked against
/// `openssl x509` reading the same DER, which tshark cuts out of the capture.
@Suite struct CertificateTests {
    struct OpenSSLView {
        var fingerprint = ""
        var subject = ""
        var issuer = ""
        var notBefore: Date?
        var notAfter: Date?
        var subjectAlternativeNames: [String] = []
        var der = Data()
    }

    static let captures: [URL] =
        Paths.recordedCaptures
        + Paths.peerCaptures.filter {
            !$0.lastPathComponent.hasPrefix("quic__") && !$0.lastPathComponent.contains("dtls")
        }

    /// Every certificate tshark finds in the capture, as openssl reads it, by SHA-256 fingerprint.
    func openSSLViews(_ capture: URL, tlsPorts: Set<Int>) throws -> [String: OpenSSLView] {
        var arguments = ["-r", capture.path, "-o", "tcp.reassemble_out_of_order:TRUE"]
        for port in tlsPorts.sorted() { arguments += ["-d", "tcp.port==\(port),tls"] }
        arguments += [
            "-Y", "tls.handshake.certificate || dtls.handshake.certificate", "-T", "fields", "-E", "occurrence=a",
            "-E", "aggregator=;", "-E", "separator=;", "-e", "tls.handshake.certificate", "-e",
            "dtls.handshake.certificate",
        ]
        let hexes = Set(
            try runProcess("tshark", arguments).stdout.split(whereSeparator: { $0 == "\n" || $0 == ";" }).map {
                $0.replacingOccurrences(of: ":", with: "")
            }
        )
        var views: [String: OpenSSLView] = [:]
        let dates = DateFormatter()
        dates.locale = Locale(identifier: "en_US_POSIX")
        dates.timeZone = TimeZone(identifier: "UTC")
        dates.dateFormat = "yyyy-MM-dd HH:mm:ssX"
        for hex in hexes where !hex.isEmpty {
            var der = Data()
            var index = hex.startIndex
            while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
                der.append(UInt8(hex[index..<next], radix: 16) ?? 0)
                index = next
            }
            let result = try runProcess(
                "openssl",
                [
                    "x509", "-inform", "DER", "-noout", "-fingerprint", "-sha256", "-subject", "-issuer",
                    "-dates", "-ext", "subjectAltName", "-nameopt", "RFC2253", "-dateopt", "iso_8601",
                ],
                stdin: der
            )
            guard result.status == 0 else { continue }  // openssl refuses it too
            var view = OpenSSLView(der: der)
            var inNames = false
            for line in result.stdout.split(separator: "\n").map(String.init) {
                if line.hasPrefix("sha256 Fingerprint=") {
                    view.fingerprint = line.dropFirst("sha256 Fingerprint=".count).replacingOccurrences(
                        of: ":",
                        with: ""
                    ).lowercased()
                } else if line.hasPrefix("subject=") {
                    view.subject = String(line.dropFirst(8))
                } else if line.hasPrefix("issuer=") {
                    view.issuer = String(line.dropFirst(7))
                } else if line.hasPrefix("notBefore=") {
                    view.notBefore = dates.date(from: String(line.dropFirst(10)))
                } else if line.hasPrefix("notAfter=") {
                    view.notAfter = dates.date(from: String(line.dropFirst(9)))
                } else if line.contains("Subject Alternative Name") {
                    inNames = true
                } else if inNames {
                    view.subjectAlternativeNames = line.trimmingCharacters(in: .whitespaces).components(
                        separatedBy: ", "
                    ).compactMap(Self.normalisedName)
                    inNames = false
                }
            }
            views[view.fingerprint] = view
        }
        return views
    }

    /// openssl's "DNS:x", "IP Address:::1", "email:", "URI:" in tlsreuse's form.
    static func normalisedName(_ entry: String) -> String? {
        if entry.hasPrefix("DNS:") { return String(entry.dropFirst(4)) }
        if entry.hasPrefix("IP Address:") {
            return IPAddress(entry.dropFirst(11)).map(\.description) ?? String(entry.dropFirst(11))
        }
        if entry.hasPrefix("email:") || entry.hasPrefix("URI:") { return entry }
        return nil
    }

    /// The attribute values of an RFC 4514/2253 string, in order, unescaped.
    static func values(_ name: String) -> [String] {
        var values: [String] = []
        var current = ""
        var inValue = false
        var escaped = false
        for character in name {
            if escaped {
                if inValue { current.append(character) }
                escaped = false
                continue
            }
            switch character {
            case "\\": escaped = true
            case "=" where !inValue: inValue = true
            case ",", "+":
                values.append(current)
                current = ""
                inValue = false
            default: if inValue { current.append(character) }
            }
        }
        values.append(current)
        return values
    }

    @Test(
        .enabled(if: toolAvailable("tshark") && toolAvailable("openssl"), "needs tshark and openssl"),
        arguments: captures
    )
    func leafCertificateAgreesWithOpenSSL(capture: URL) throws {
        let records = try extractRecords(capture).filter { !$0.certificateFingerprints.isEmpty }
        guard !records.isEmpty else { return }
        let views = try openSSLViews(
            capture,
            tlsPorts: Set(records.filter { $0.starttls == nil }.map { Int($0.serverPort) })
        )
        for record in records {
            let name = "\(capture.lastPathComponent) \(record.uid)"
            guard let view = views[record.certificateFingerprints[0]] else {
                Issue.record(
                    "\(name): tshark shows no certificate with fingerprint \(record.certificateFingerprints[0])"
                )
                continue
            }
            let leaf = try #require(record.certificate, "\(name): openssl parses the leaf, tlsreuse did not")
            #expect(Self.values(leaf.subject) == Self.values(view.subject), "\(name) subject")
            #expect(Self.values(leaf.issuer) == Self.values(view.issuer), "\(name) issuer")
            #expect(
                leaf.notBeforeSeconds == view.notBefore.map { Int64($0.timeIntervalSince1970) },
                "\(name) notBefore"
            )
            #expect(leaf.notAfterSeconds == view.notAfter.map { Int64($0.timeIntervalSince1970) }, "\(name) notAfter")
            #expect(leaf.subjectAlternativeNames == view.subjectAlternativeNames, "\(name) SANs")
            if let sni = record.sni, !sni.isEmpty {
                // openssl's own host check (RFC 6125, the CN only without DNS names).
                let check = try runProcess(
                    "openssl",
                    ["x509", "-inform", "DER", "-noout", "-checkhost", sni],
                    stdin: view.der
                )
                #expect(
                    record.sniMatchesCertificate == check.stdout.contains(" does match certificate"),
                    "\(name) sni_matches_cert for \(sni)"
                )
            } else {
                #expect(record.sniMatchesCertificate == nil)
            }
        }
    }

    /// The recorded captures' servers use the certificates record.sh made: CN=localhost with
    /// localhost, 127.0.0.1 and ::1, and CN=backend-two without names.
    @Test func recordedCertificates() throws {
        let records = try extractRecords(Paths.captures.appendingPathComponent("moved-session.pcap"))
        let full = try #require(records.first { $0.certificate != nil })
        #expect(full.certificate?.commonName == "localhost")
        #expect(full.certificate?.subjectAlternativeNames == ["localhost", "127.0.0.1", "::1"])
        #expect(full.sni == "alpha.test" && full.sniMatchesCertificate == false)
        let validity = try #require(full.certificate.map { $0.notAfterSeconds - $0.notBeforeSeconds })
        #expect(validity == 3650 * 86_400)
    }
}
