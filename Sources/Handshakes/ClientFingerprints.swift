import Crypto
import TLSWire

/// Client and server fingerprints computed from the hellos. GREASE values (RFC 8701) are
/// left out everywhere, as both methods require.
enum Fingerprints {
    /// JA3 (Salesforce): the ClientHello's legacy version, cipher suites, extensions,
    /// supported groups and point formats, as decimal lists joined by "-", the five fields
    /// by ","; the MD5 of that string in hex. Nil for SSLv2-compatible hellos, whose cipher
    /// specs are three bytes and have no JA3 form.
    static func ja3(_ hello: ClientHello) -> String? {
        guard !hello.isSSLv2Compatible else { return nil }
        var text = String(hello.legacyVersion.rawValue) + ","
        appendDecimal(hello.cipherSuites.lazy.filter { !$0.isGREASE }.map(\.rawValue), to: &text)
        text += ","
        appendDecimal(hello.extensionTypes.lazy.filter { !$0.isGREASE }.map(\.rawValue), to: &text)
        text += ","
        appendDecimal(hello.supportedGroups.lazy.filter { !$0.isGREASE }.map(\.rawValue), to: &text)
        text += ","
        appendDecimal(hello.ecPointFormats.lazy.map(UInt16.init), to: &text)
        return md5(text)
    }

    /// JA3S: the ServerHello's legacy version, chosen cipher suite and extensions; MD5 in hex.
    static func ja3s(_ hello: ServerHello) -> String {
        var text = String(hello.legacyVersion.rawValue) + "," + String(hello.cipherSuite.rawValue) + ","
        appendDecimal(hello.extensionTypes.lazy.filter { !$0.isGREASE }.map(\.rawValue), to: &text)
        return md5(text)
    }

    /// Ciphers and extensions counted in JA4's first part show at most 99.
    static let ja4MaximumCount = 99

    /// JA4 (FoxIO, BSD licence): `t13d1516h2_8daaf6152771_e5627efa2ab1`. The first part is the
    /// transport, the highest offered version, SNI or not, the counts of cipher suites and
    /// extensions, and the first and last characters of the first ALPN name. Then the first
    /// 12 hex digits of the SHA-256 of the sorted cipher suites, and of the sorted extensions
    /// (without SNI and ALPN) followed by the signature algorithms in their order.
    static func ja4(_ hello: ClientHello, transport: String) -> String {
        let ciphers = hello.cipherSuites.filter { !$0.isGREASE }.map(\.rawValue)
        let extensions = hello.extensionTypes.filter { !$0.isGREASE }.map(\.rawValue)
        var text = transport == "quic" ? "q" : transport == "udp" ? "d" : "t"
        text += ja4Version(hello)
        text += extensions.contains(ExtensionType.serverName.rawValue) ? "d" : "i"
        text += twoDigits(min(ciphers.count, ja4MaximumCount))
        text += twoDigits(min(extensions.count, ja4MaximumCount))
        text += ja4ALPN(hello.firstALPN)
        text += "_"
        text += ciphers.isEmpty ? "000000000000" : truncatedSHA256(hexList(ciphers.sorted()))
        text += "_"
        let hashed = extensions.filter { $0 != ExtensionType.serverName.rawValue && $0 != ExtensionType.applicationLayerProtocolNegotiation.rawValue }
        if hashed.isEmpty {
            text += "000000000000"
        } else {
            var list = hexList(hashed.sorted())
            let algorithms = hello.signatureAlgorithms.filter { !TLSWire.isGREASE($0) }
            if !algorithms.isEmpty { list += "_" + hexList(algorithms) }
            text += truncatedSHA256(list)
        }
        return text
    }

    /// Two characters for the version: the highest of supported_versions, else the legacy version.
    private static func ja4Version(_ hello: ClientHello) -> String {
        let offered = hello.supportedVersions.filter { !$0.isGREASE }.map(\.rawValue)
        // DTLS versions count down (RFC 9147 5.3): the highest is the smallest number.
        let version = offered.isEmpty ? hello.legacyVersion.rawValue
            : offered.allSatisfy({ $0 >= 0xfe00 }) ? offered.min()! : offered.max()!
        switch version {
        case 0x0304: return "13"
        case 0x0303: return "12"
        case 0x0302: return "11"
        case 0x0301: return "10"
        case 0x0300: return "s3"
        case 0x0200, 0x0002: return "s2"
        case 0x0100: return "s1"
        case 0xfeff: return "d1"
        case 0xfefd: return "d2"
        case 0xfefc: return "d3"
        default: return "00"
        }
    }

    /// First and last characters of the first ALPN name; when either is not alphanumeric,
    /// the first and last hex digits of the name's bytes; "00" without ALPN.
    private static func ja4ALPN(_ name: [UInt8]?) -> String {
        guard let name, let first = name.first, let last = name.last else { return "00" }
        func isAlphanumeric(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
        }
        if isAlphanumeric(first) && isAlphanumeric(last) {
            return String(UnicodeScalar(first)) + String(UnicodeScalar(last))
        }
        return String(hexDigits[Int(first >> 4)]) + String(hexDigits[Int(last & 0x0f)])
    }

    // MARK: helpers

    private static let hexDigits = Array("0123456789abcdef")

    private static func appendDecimal<S: Sequence>(_ values: S, to text: inout String) where S.Element == UInt16 {
        var first = true
        for value in values {
            if !first { text += "-" }
            text += String(value)
            first = false
        }
    }

    private static func hexList(_ values: [UInt16]) -> String {
        var text = ""
        text.reserveCapacity(values.count * 5)
        for (index, value) in values.enumerated() {
            if index > 0 { text += "," }
            for shift in stride(from: 12, through: 0, by: -4) { text.append(hexDigits[Int(value >> UInt16(shift) & 0x0f)]) }
        }
        return text
    }

    private static func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }

    private static func md5(_ text: String) -> String {
        hex(Insecure.MD5.hash(data: Array(text.utf8)))
    }

    private static func truncatedSHA256(_ text: String) -> String {
        String(hex(SHA256.hash(data: Array(text.utf8))).prefix(12))
    }

    private static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        var text = ""
        for byte in digest {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0f)])
        }
        return text
    }
}
