import Crypto
import TLSWire

/// JA3, JA4 and JA3S of recent hellos. Most connections come from a handful of client
/// programs, so the lists are compared with the last few and the hashes reused.
final class HelloFingerprintMemo {
    static let capacity = 16

    private struct ServerKey: Equatable {
        var legacyVersion: UInt16
        var cipher: UInt16
        var extensions: [ExtensionType]
    }

    /// Keyed by `ClientHello.fingerprintKey`, with the transport as its tag.
    private var clients: [(key: [UInt8], ja3: String?, ja4: String)] = []
    private var servers: [(key: ServerKey, ja3s: String)] = []
    private var nextClient = 0, nextServer = 0

    func client(_ hello: ClientHello, transport: Transport) -> (ja3: String?, ja4: String) {
        let tag: UInt8 =
            switch transport {
            case .tcp: 0
            case .udp: 1
            case .quic: 2
            }
        // By index: `first(where:)` would copy the entry, key arrays and all. Each key is
        // compared with the hello in place; one is built only for a new entry.
        if let hit = clients.firstIndex(where: { hello.matchesFingerprintKey($0.key, tag: tag) }) {
            return (clients[hit].ja3, clients[hit].ja4)
        }
        let key = hello.fingerprintKey(tag: tag)
        let entry = (key: key, ja3: Fingerprints.ja3(hello), ja4: Fingerprints.ja4(hello, transport: transport))
        if clients.count < HelloFingerprintMemo.capacity {
            clients.append(entry)
        } else {
            clients[nextClient] = entry
            nextClient = (nextClient + 1) % HelloFingerprintMemo.capacity
        }
        return (entry.ja3, entry.ja4)
    }

    func server(_ hello: ServerHello) -> String {
        let key = ServerKey(
            legacyVersion: hello.legacyVersion.rawValue,
            cipher: hello.cipherSuite.rawValue,
            extensions: hello.extensionTypes
        )
        if let hit = servers.firstIndex(where: { $0.key == key }) { return servers[hit].ja3s }
        let entry = (key: key, ja3s: Fingerprints.ja3s(hello))
        if servers.count < HelloFingerprintMemo.capacity {
            servers.append(entry)
        } else {
            servers[nextServer] = entry
            nextServer = (nextServer + 1) % HelloFingerprintMemo.capacity
        }
        return entry.ja3s
    }
}

/// Client and server fingerprints computed from the hellos. GREASE values (RFC 8701) are
/// left out everywhere, as both methods require.
enum Fingerprints {
    /// JA3 (Salesforce): the ClientHello's legacy version, cipher suites, extensions,
    /// supported groups and point formats, as decimal lists joined by "-", the five fields
    /// by ","; the MD5 of that string in hex. Nil for SSLv2-compatible hellos, whose cipher
    /// specs are three bytes and have no JA3 form.
    static func ja3(_ hello: ClientHello) -> String? {
        guard !hello.isSSLv2Compatible else { return nil }
        // Built as bytes, not a String: this runs once per connection.
        var text: [UInt8] = []
        text.reserveCapacity(512)
        appendDecimal(hello.legacyVersion.rawValue, to: &text)
        text.append(comma)
        appendDecimalList(hello.cipherSuites.lazy.filter { !$0.isGREASE }.map(\.rawValue), to: &text)
        text.append(comma)
        appendDecimalList(hello.extensionTypes.lazy.filter { !$0.isGREASE }.map(\.rawValue), to: &text)
        text.append(comma)
        appendDecimalList(hello.supportedGroups.lazy.filter { !$0.isGREASE }.map(\.rawValue), to: &text)
        text.append(comma)
        appendDecimalList(hello.ecPointFormats.lazy.map(UInt16.init), to: &text)
        return hexString(Array(Insecure.MD5.hash(data: text)))
    }

    /// JA3S: the ServerHello's legacy version, chosen cipher suite and extensions; MD5 in hex.
    static func ja3s(_ hello: ServerHello) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(128)
        appendDecimal(hello.legacyVersion.rawValue, to: &text)
        text.append(comma)
        appendDecimal(hello.cipherSuite.rawValue, to: &text)
        text.append(comma)
        appendDecimalList(hello.extensionTypes.lazy.filter { !$0.isGREASE }.map(\.rawValue), to: &text)
        return hexString(Array(Insecure.MD5.hash(data: text)))
    }

    /// Ciphers and extensions counted in JA4's first part show at most 99.
    static let ja4MaximumCount = 99

    /// JA4 (FoxIO, BSD licence): `t13d1516h2_8daaf6152771_e5627efa2ab1`. The first part is the
    /// transport, the highest offered version, SNI or not, the counts of cipher suites and
    /// extensions, and the first and last characters of the first ALPN name. Then the first
    /// 12 hex digits of the SHA-256 of the sorted cipher suites, and of the sorted extensions
    /// (without SNI and ALPN) followed by the signature algorithms in their order.
    static func ja4(_ hello: ClientHello, transport: Transport) -> String {
        let ciphers = hello.cipherSuites.filter { !$0.isGREASE }.map(\.rawValue)
        let extensions = hello.extensionTypes.filter { !$0.isGREASE }.map(\.rawValue)
        var text =
            switch transport {
            case .quic: "q"
            case .udp: "d"
            case .tcp: "t"
            }
        text += ja4Version(hello)
        text += extensions.contains(ExtensionType.serverName.rawValue) ? "d" : "i"
        text += twoDigits(min(ciphers.count, ja4MaximumCount))
        text += twoDigits(min(extensions.count, ja4MaximumCount))
        text += ja4ALPN(hello.firstALPN)
        text += "_"
        var list: [UInt8] = []
        list.reserveCapacity(512)
        if ciphers.isEmpty {
            text += "000000000000"
        } else {
            appendHexList(ciphers.sorted(), to: &list)
            text += truncatedSHA256(list)
        }
        text += "_"
        let hashed = extensions.filter {
            $0 != ExtensionType.serverName.rawValue && $0 != ExtensionType.applicationLayerProtocolNegotiation.rawValue
        }
        if hashed.isEmpty {
            text += "000000000000"
        } else {
            list.removeAll(keepingCapacity: true)
            appendHexList(hashed.sorted(), to: &list)
            let algorithms = hello.signatureAlgorithms.filter { !TLSWire.isGREASE($0) }
            if !algorithms.isEmpty {
                list.append(UInt8(ascii: "_"))
                appendHexList(algorithms, to: &list)
            }
            text += truncatedSHA256(list)
        }
        return text
    }

    /// Two characters for the version: the highest of supported_versions, else the legacy version.
    private static func ja4Version(_ hello: ClientHello) -> String {
        let offered = hello.supportedVersions.filter { !$0.isGREASE }.map(\.rawValue)
        // DTLS versions count down (RFC 9147 5.3): the highest is the smallest number.
        let version =
            offered.isEmpty
            ? hello.legacyVersion.rawValue
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

    /// The JA4 ALPN part: the first and last characters of the first ALPN name, "00" without
    /// ALPN (a one-byte name gives its character twice). Where an end is not alphanumeric, the
    /// first and last characters of the name's hex (JA4 technical details, "ALPN Extension
    /// Value": 0x30 0xab gives `3b`), except that a name whose first byte is above 0x7f gives
    /// `99`, as the JA4 project's implementations and its test vector do
    /// (`tls-non-ascii-alpn.pcapng`: 0xba 0xad gives `99` where the prose would give `bd`).
    private static func ja4ALPN(_ name: ArraySlice<UInt8>?) -> String {
        guard let name, let first = name.first, let last = name.last else { return "00" }
        func isAlphanumeric(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
        }
        if isAlphanumeric(first) && isAlphanumeric(last) {
            return String(UnicodeScalar(first)) + String(UnicodeScalar(last))
        }
        if first > 0x7f { return "99" }
        return String(hexDigits[Int(first >> 4)]) + String(hexDigits[Int(last & 0x0f)])
    }

    // MARK: helpers

    private static let hexDigits = Array("0123456789abcdef")
    private static let hexBytes = Array("0123456789abcdef".utf8)
    private static let comma = UInt8(ascii: ",")

    private static func appendDecimal(_ value: UInt16, to bytes: inout [UInt8]) {
        var divisor: UInt16 = 10_000
        var started = false
        var rest = value
        while divisor > 0 {
            let digit = rest / divisor
            if digit > 0 || started || divisor == 1 {
                bytes.append(UInt8(ascii: "0") + UInt8(digit))
                started = true
            }
            rest %= divisor
            divisor /= 10
        }
    }

    private static func appendDecimalList<S: Sequence>(_ values: S, to bytes: inout [UInt8]) where S.Element == UInt16 {
        var first = true
        for value in values {
            if !first { bytes.append(UInt8(ascii: "-")) }
            appendDecimal(value, to: &bytes)
            first = false
        }
    }

    /// Four lowercase hex digits per value, comma separated.
    private static func appendHexList(_ values: [UInt16], to bytes: inout [UInt8]) {
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(comma) }
            bytes.append(hexBytes[Int(value >> 12)])
            bytes.append(hexBytes[Int(value >> 8 & 0x0f)])
            bytes.append(hexBytes[Int(value >> 4 & 0x0f)])
            bytes.append(hexBytes[Int(value & 0x0f)])
        }
    }

    private static func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }

    private static func truncatedSHA256(_ bytes: [UInt8]) -> String {
        hexString(Array(SHA256.hash(data: bytes)).prefix(6))
    }
}
