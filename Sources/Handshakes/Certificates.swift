import Capture
import Foundation
import Packets
import SwiftASN1
import TLSWire
import X509

/// What a server's leaf certificate says, parsed by swift-certificates (RFC 5280).
/// A class: every record of a server shares the one parsed instance.
public final class CertificateSummary: Sendable, Equatable {
    /// Subject and issuer as RFC 4514 strings ("CN=localhost,O=Example").
    public let subject: String
    public let issuer: String
    public let commonName: String?
    /// subjectAltName entries (RFC 5280 4.2.1.6): DNS names as they are, IP addresses in
    /// text form, others prefixed with their kind ("email:", "URI:").
    public let subjectAlternativeNames: [String]
    /// Validity (RFC 5280 4.1.2.5) in seconds since the epoch: every year from 0000 to 9999
    /// that GeneralizedTime can write, 99991231235959Z ("no well-defined expiration") included.
    public let notBeforeSeconds: Int64
    public let notAfterSeconds: Int64

    public static func == (a: CertificateSummary, b: CertificateSummary) -> Bool {
        a.subject == b.subject && a.issuer == b.issuer && a.commonName == b.commonName
            && a.subjectAlternativeNames == b.subjectAlternativeNames && a.notBeforeSeconds == b.notBeforeSeconds
            && a.notAfterSeconds == b.notAfterSeconds
    }

    public init(
        subject: String,
        issuer: String,
        commonName: String?,
        subjectAlternativeNames: [String],
        notBeforeSeconds: Int64,
        notAfterSeconds: Int64
    ) {
        self.subject = subject
        self.issuer = issuer
        self.commonName = commonName
        self.subjectAlternativeNames = subjectAlternativeNames
        self.notBeforeSeconds = notBeforeSeconds
        self.notAfterSeconds = notAfterSeconds
    }

    /// The earliest and latest validity times a certificate can state: 0000-01-01 00:00:00
    /// and 9999-12-31 23:59:59 UTC (GeneralizedTime's four-digit year, RFC 5280 4.1.2.5.2).
    public static let validityRange: ClosedRange<Int64> = -62_167_219_200...253_402_300_799

    /// Parses DER with swift-certificates. When it refuses the certificate as a whole (a
    /// public key type it does not support, such as ML-DSA or RSA under 2048 bits, or odd
    /// signature parameters), the fields are read from the TBSCertificate alone. Nil when
    /// neither works.
    /// The summary of a DER certificate, or nil (for the fuzz target; records get theirs
    /// through the fingerprint cache).
    public static func parse(der: [UInt8]) -> CertificateSummary? { CertificateSummary(der: der) }

    convenience init?(der: [UInt8]) {
        let fields: TBSFields
        if let certificate = try? Certificate(derEncoded: der),
            let notBefore = Self.seconds(certificate.notValidBefore),
            let notAfter = Self.seconds(certificate.notValidAfter)
        {
            fields = TBSFields(
                issuer: certificate.issuer,
                subject: certificate.subject,
                notBeforeSeconds: notBefore,
                notAfterSeconds: notAfter,
                extensions: certificate.extensions
            )
        } else if let read = try? TBSFields(der: der) {
            fields = read
        } else {
            return nil
        }
        self.init(fields)
    }

    private convenience init(_ fields: TBSFields) {
        var commonName: String?
        for relativeName in fields.subject {
            for attribute in relativeName where attribute.type == .RDNAttributeType.commonName {
                commonName = DistinguishedNameText.text(of: attribute.value)
            }
        }
        var names: [String] = []
        if let alternatives = try? fields.extensions.subjectAlternativeNames {
            for name in alternatives {
                switch name {
                // IA5Strings (RFC 5280 4.2.1.6), as wire text so a backslash reads as \x5c here too.
                case let .dnsName(dns): names.append(WireText.decode(Array(dns.utf8)))
                case let .ipAddress(octets): names.append(Self.ipText(Array(octets.bytes)))
                case let .rfc822Name(mail): names.append("email:" + WireText.decode(Array(mail.utf8)))
                case let .uniformResourceIdentifier(uri): names.append("URI:" + WireText.decode(Array(uri.utf8)))
                default: break
                }
            }
        }
        self.init(
            subject: DistinguishedNameText.rfc4514(fields.subject),
            issuer: DistinguishedNameText.rfc4514(fields.issuer),
            commonName: commonName,
            subjectAlternativeNames: names,
            notBeforeSeconds: fields.notBeforeSeconds,
            notAfterSeconds: fields.notAfterSeconds
        )
    }

    /// DNS names the certificate is valid for: its DNS subjectAltNames, or its CN when it has
    /// none (RFC 6125 6.4.4 allows the CN only then).
    public var dnsNames: [String] {
        let dns = subjectAlternativeNames.filter {
            !$0.hasPrefix("email:") && !$0.hasPrefix("URI:") && !$0.hasPrefix("IP:") && IPAddress($0) == nil
        }
        if !dns.isEmpty { return dns }
        return commonName.map { [$0] } ?? []
    }

    /// Whether `serverName` is a name the certificate covers (RFC 6125 6.4): exact, case
    /// insensitive, or a wildcard standing for exactly the leftmost label.
    public func covers(_ serverName: String) -> Bool {
        let name = serverName.lowercased().trimmingTrailingDot
        for pattern in dnsNames.map({ $0.lowercased().trimmingTrailingDot }) {
            if pattern == name { return true }
            if pattern.hasPrefix("*."), let dot = name.firstIndex(of: "."),
                name[name.index(after: dot)...] == pattern.dropFirst(2),
                dot != name.startIndex
            {
                return true
            }
        }
        // An IP address in the SNI is not allowed (RFC 6066 3), but some clients send one.
        return subjectAlternativeNames.contains(name)
    }

    /// A validity date as whole seconds, or nil outside `validityRange` (then the TBSCertificate
    /// is read instead).
    private static func seconds(_ date: Date) -> Int64? {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        guard seconds.isFinite, let whole = Int64(exactly: seconds), validityRange.contains(whole) else { return nil }
        return whole
    }

    private static func ipText(_ bytes: [UInt8]) -> String {
        var high: UInt64 = 0
        var low: UInt64 = 0
        switch bytes.count {
        case 4:
            let value = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
            return IPAddress(ipv4: value.bigEndian).description
        case 16:
            for byte in bytes[0..<8] { high = high << 8 | UInt64(byte) }
            for byte in bytes[8..<16] { low = low << 8 | UInt64(byte) }
            return IPAddress(high: high, low: low, isIPv6: true).description
        default:
            return "IP:" + hexString(bytes)
        }
    }
}

/// The TBSCertificate fields tlsreuse reports (RFC 5280 4.1), read with swift-asn1 and
/// swift-certificates' own DistinguishedName and Extension types, skipping the public key
/// and signature that `Certificate` insists on understanding.
struct TBSFields {
    var issuer: DistinguishedName
    var subject: DistinguishedName
    var notBeforeSeconds: Int64
    var notAfterSeconds: Int64
    var extensions: Certificate.Extensions

    init(
        issuer: DistinguishedName,
        subject: DistinguishedName,
        notBeforeSeconds: Int64,
        notAfterSeconds: Int64,
        extensions: Certificate.Extensions
    ) {
        self.issuer = issuer
        self.subject = subject
        self.notBeforeSeconds = notBeforeSeconds
        self.notAfterSeconds = notAfterSeconds
        self.extensions = extensions
    }

    ///     Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    ///     TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
    ///         validity, subject, subjectPublicKeyInfo, [1] [2] unique IDs OPTIONAL, [3] extensions OPTIONAL }
    init(der: [UInt8]) throws {
        let root = try DER.parse(der)
        guard case let .constructed(parts) = root.content, root.identifier == .sequence else {
            throw ASN1Error.invalidASN1Object(reason: "not a certificate")
        }
        var iterator = parts.makeIterator()
        guard let tbs = iterator.next() else { throw ASN1Error.invalidASN1Object(reason: "not a certificate") }
        self = try DER.sequence(tbs, identifier: .sequence) { nodes in
            var node = nodes.next()
            // The explicit version, when present.
            if node?.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) { node = nodes.next() }
            guard node != nil, nodes.next() != nil, let issuerNode = nodes.next(), let validity = nodes.next(),
                let subjectNode = nodes.next(), nodes.next() != nil
            else {
                throw ASN1Error.invalidASN1Object(reason: "TBSCertificate too short")
            }
            let (notBefore, notAfter) = try DER.sequence(validity, identifier: .sequence) { times in
                (try Self.time(times.next()), try Self.time(times.next()))
            }
            var extensions = Certificate.Extensions()
            while let optional = nodes.next() {
                guard optional.identifier == ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific) else {
                    continue
                }
                extensions = try Certificate.Extensions(
                    DER.explicitlyTagged(optional, tagNumber: 3, tagClass: .contextSpecific) {
                        try DER.sequence(of: Certificate.Extension.self, identifier: .sequence, rootNode: $0)
                    }
                )
            }
            return TBSFields(
                issuer: try DistinguishedName(derEncoded: issuerNode),
                subject: try DistinguishedName(derEncoded: subjectNode),
                notBeforeSeconds: notBefore,
                notAfterSeconds: notAfter,
                extensions: extensions
            )
        }
    }

    /// Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime } (RFC 5280 4.1.2.5).
    private static func time(_ node: ASN1Node?) throws -> Int64 {
        guard let node else { throw ASN1Error.invalidASN1Object(reason: "validity too short") }
        if node.identifier == UTCTime.defaultIdentifier {
            let time = try UTCTime(derEncoded: node)
            return try epochSeconds(time.year, time.month, time.day, time.hours, time.minutes, time.seconds)
        }
        let time = try GeneralizedTime(derEncoded: node)
        return try epochSeconds(time.year, time.month, time.day, time.hours, time.minutes, time.seconds)
    }

    /// Seconds since the epoch; swift-asn1 has checked each field, `CaptureTime` checks the
    /// calendar again (a day past the month's end is refused).
    static func epochSeconds(
        _ year: Int,
        _ month: Int,
        _ day: Int,
        _ hours: Int,
        _ minutes: Int,
        _ seconds: Int
    ) throws -> Int64 {
        guard
            let value = CaptureTime.epochSeconds(
                year: year,
                month: month,
                day: day,
                hour: hours,
                minute: minutes,
                second: seconds
            )
        else {
            throw ASN1Error.invalidASN1Object(reason: "validity time out of range")
        }
        return value
    }
}

/// Distinguished names as RFC 4514 strings, with every directory string type decoded
/// (swift-certificates renders only UTF8String, PrintableString and IA5String as text).
enum DistinguishedNameText {
    /// RFC 4514 3: the last RDN first, attributes of one RDN joined by "+".
    static func rfc4514(_ name: DistinguishedName) -> String {
        name.reversed().map { relativeName in
            relativeName.map { attribute in
                shortName(attribute.type) + "=" + escaped(text(of: attribute.value))
            }.joined(separator: "+")
        }.joined(separator: ",")
    }

    /// RFC 4514 3 short names; others as dotted OIDs.
    private static func shortName(_ type: ASN1ObjectIdentifier) -> String {
        switch type {
        case .RDNAttributeType.commonName: return "CN"
        case .RDNAttributeType.countryName: return "C"
        case .RDNAttributeType.localityName: return "L"
        case .RDNAttributeType.stateOrProvinceName: return "ST"
        case .RDNAttributeType.organizationName: return "O"
        case .RDNAttributeType.organizationalUnitName: return "OU"
        case .RDNAttributeType.streetAddress: return "STREET"
        case .RDNAttributeType.domainComponent: return "DC"
        case [0, 9, 2342, 19_200_300, 100, 1, 1]: return "UID"
        default: return type.description
        }
    }

    /// The attribute's text: the directory string types of RFC 5280 4.1.2.4 decoded from
    /// their own bytes as `WireText` (so invalid UTF-8 and backslashes survive as `\xHH`),
    /// other values as "#" and the DER in hex (RFC 4514 2.4).
    static func text(of value: RelativeDistinguishedName.Attribute.Value) -> String {
        var serializer = DER.Serializer()
        guard (try? serializer.serialize(ASN1Any(value))) != nil else { return "" }
        let der = serializer.serializedBytes
        guard let node = try? DER.parse(der), node.identifier.tagClass == .universal,
            case let .primitive(content) = node.content
        else { return "#" + hexString(der) }
        switch node.identifier.tagNumber {
        case 12, 18, 19, 22, 26: return WireText.decode(Array(content))
        case 20:  // T61String, read as Latin-1: every byte is a character
            return String(String.UnicodeScalarView(content.map { Unicode.Scalar($0) }))
        case 30: return wideText(Array(content), unitBytes: 2)  // BMPString: UTF-16 big-endian
        case 28: return wideText(Array(content), unitBytes: 4)  // UniversalString: UTF-32 big-endian
        default: return "#" + hexString(der)
        }
    }

    /// BMPString or UniversalString content as text; a unit that is no character (an unpaired
    /// surrogate, a value past U+10FFFF, a trailing odd byte) keeps its bytes as `\xHH`.
    private static func wideText(_ bytes: [UInt8], unitBytes: Int) -> String {
        var out = String.UnicodeScalarView()
        func escape(_ slice: ArraySlice<UInt8>) { out.append(contentsOf: WireText.escaped(slice).unicodeScalars) }
        var index = 0
        while index + unitBytes <= bytes.count {
            var value: UInt32 = 0
            for byte in bytes[index..<(index + unitBytes)] { value = value << 8 | UInt32(byte) }
            var length = unitBytes
            if unitBytes == 2, (0xd800..<0xdc00).contains(value), index + 4 <= bytes.count {
                let low = UInt32(bytes[index + 2]) << 8 | UInt32(bytes[index + 3])
                if (0xdc00..<0xe000).contains(low) {
                    value = 0x10000 + (value - 0xd800) << 10 + (low - 0xdc00)
                    length = 4
                }
            }
            if let scalar = Unicode.Scalar(value), scalar != "\\" {
                out.append(scalar)
            } else {
                escape(bytes[index..<(index + length)])
            }
            index += length
        }
        if index < bytes.count { escape(bytes[index...]) }
        return String(out)
    }

    /// RFC 4514 2.4: special characters get a backslash, as do a leading space or "#" and a trailing space.
    private static func escaped(_ value: String) -> String {
        var out = ""
        for (index, character) in value.enumerated() {
            if ",+\"\\<>;".contains(character) || (index == 0 && (character == " " || character == "#"))
                || (index == value.count - 1 && character == " ")
            {
                out.append("\\")
            }
            out.append(character)
        }
        return out
    }
}

extension String {
    fileprivate var trimmingTrailingDot: String { hasSuffix(".") ? String(dropLast()) : self }
}
