import Handshakes
import TLSWire

/// A value in a rendered record: the one description every output format works from.
public indirect enum FieldValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    /// Nanoseconds since the epoch, rendered as seconds with microseconds.
    case timestamp(Int64)
    /// Whole seconds since the epoch, rendered like `timestamp` (certificate validity).
    case wholeSeconds(Int64)
    case seconds(Double)
    case string(String)
    case strings([String])
    case ints([Int64])
    case object([Field])
    case objects([[Field]])
}

public struct Field: Equatable, Sendable {
    public var key: String
    public var value: FieldValue
    public init(_ key: String, _ value: FieldValue) {
        self.key = key
        self.value = value
    }
}

extension FieldValue {
    static func optional(_ value: String?) -> FieldValue { value.map(FieldValue.string) ?? .null }
    static func optional(_ value: Bool?) -> FieldValue { value.map(FieldValue.bool) ?? .null }
    static func optional<I: BinaryInteger>(_ value: I?) -> FieldValue { value.map { .int(Int64($0)) } ?? .null }
}

extension HandshakeRecord {
    /// The record's fields in output order. JSON, JSON Lines, CSV and Zeek output are all
    /// rendered from this list.
    public var fields: [Field] {
        var fields: [Field] = [
            Field("uid", .string(uid)),
            Field("ts", .timestamp(timestampNanos)),
            Field("client", .string(client.description)),
            Field("client_port", .int(Int64(clientPort))),
            Field("server", .string(server.description)),
            Field("server_port", .int(Int64(serverPort))),
            Field("transport", .string(transport)),
            Field("starttls", .optional(starttls)),
            Field("sni", .optional(sni)),
            Field("alpn_offered", .strings(alpnOffered)),
            Field("versions_offered", .strings(versionsOffered.map(\.description))),
            Field("version", .optional(version?.description)),
            Field("cipher", .optional(cipher?.description)),
            Field("cipher_id", .optional(cipher?.rawValue)),
            Field("client_session_id", .string(clientSessionID)),
            Field("server_session_id", .optional(serverSessionID)),
            Field("offered_ticket", .bool(offeredTicket)),
            Field("offered_psk", .bool(offeredPSK)),
            Field("hrr", .bool(hrr)),
            Field("ticket_issued", .bool(ticketIssued)),
            Field("resumed", .optional(resumed)),
            Field("resumption", .optional(resumption)),
            Field("established", .bool(established)),
            Field("alert", .optional(alert)),
            Field("malformed", .optional(malformed)),
            Field("offer", .optional(offer)),
            Field("resumes", .optional(resumes)),
            Field("session_age", sessionAge.map { .seconds($0) } ?? .null),
            Field("session_age_from", .optional(sessionAgeFrom)),
            Field("psk_first_offered_by", .optional(pskFirstOfferedBy)),
            Field("backend", .optional(backend)),
            Field("backend_leg", .optional(backendLeg)),
            Field("backside_of", .optional(backsideOf)),
        ]
        fields += [
            Field("ticket_supported", .bool(ticketSupported)),
            Field("psk_kind", .optional(pskKind)),
            Field("psk_identities", .objects(pskIdentities.map { offer in
                [Field("digest", .string(offer.digest)), Field("key_name", .optional(offer.keyName)),
                 Field("obfuscated_age", .int(Int64(offer.obfuscatedTicketAge))), Field("length", .int(Int64(offer.length))),
                 Field("text", .optional(offer.text))]
            })),
            Field("psk_selected", .optional(pskSelected)),
            Field("offered_ticket_digest", .optional(offeredTicketDigest)),
            Field("offered_ticket_key_name", .optional(offeredTicketKeyName)),
            Field("issued_ticket_digest", .optional(issuedTicketDigest)),
            Field("issued_ticket_key_name", .optional(issuedTicketKeyName)),
            Field("ticket_lifetime_hint", .optional(ticketLifetimeHint)),
            Field("alpn_selected", .optional(alpnSelected)),
            Field("early_data_offered", .bool(earlyDataOffered)),
            Field("ech_offered", .bool(echOffered)),
            Field("sslv2_hello", .bool(sslv2Hello)),
            Field("client_random", .string(clientRandom)),
            Field("server_extensions", .ints(serverExtensions.map(Int64.init))),
            Field("cert_chain_fps", .strings(certificateFingerprints)),
            Field("certificate", certificate.map { leaf in
                .object([
                    Field("subject", .string(leaf.subject)),
                    Field("cn", .optional(leaf.commonName)),
                    Field("issuer", .string(leaf.issuer)),
                    Field("sans", .strings(leaf.subjectAlternativeNames)),
                    Field("not_before", .wholeSeconds(leaf.notBeforeSeconds)),
                    Field("not_after", .wholeSeconds(leaf.notAfterSeconds)),
                ])
            } ?? .null),
            Field("sni_matches_cert", .optional(sniMatchesCertificate)),
            Field("ja3", .optional(ja3)),
            Field("ja3s", .optional(ja3s)),
            Field("ja4", .optional(ja4)),
            Field("server_traits", serverTraits.map { traits in
                .object([
                    Field("ttl", .int(Int64(traits.ttl))),
                    Field("syn_ack_window", .optional(traits.synAckWindow)),
                    Field("syn_ack_options", .optional(traits.synAckOptions)),
                    Field("tsval_first", .optional(traits.firstTimestampValue)),
                    Field("tsval_first_ts", traits.firstTimestampNanos.map(FieldValue.timestamp) ?? .null),
                    Field("tsval_last", .optional(traits.lastTimestampValue)),
                    Field("tsval_last_ts", traits.lastTimestampNanos.map(FieldValue.timestamp) ?? .null),
                ])
            } ?? .null),
            Field("gaps", .int(Int64(gaps))),
        ]
        return fields
    }
}

extension JSONWriter {
    public mutating func value(_ value: FieldValue) {
        switch value {
        case .null: null()
        case let .bool(b): bool(b)
        case let .int(i): int(i)
        case let .timestamp(nanos): raw(epochSeconds(nanos))
        case let .wholeSeconds(seconds): raw(epochSeconds(whole: seconds))
        case let .seconds(s): double(s, decimals: 3)
        case let .string(s): string(s)
        case let .strings(list):
            beginArray()
            for s in list { string(s) }
            endArray()
        case let .ints(list):
            beginArray()
            for i in list { int(i) }
            endArray()
        case let .object(fields): object(fields)
        case let .objects(list):
            beginArray()
            for fields in list { object(fields) }
            endArray()
        }
    }

    public mutating func object(_ fields: [Field]) {
        beginObject()
        for field in fields {
            key(field.key)
            value(field.value)
        }
        endObject()
    }
}

/// Epoch seconds with microseconds, e.g. "1732857976.123456", or "-1.500000" for half a
/// second before 1970-01-01 (pcapng allows such times). The inverse of `JSONValue.epochNanos`.
public func epochSeconds(_ nanos: Int64) -> String {
    let micros = nanos.magnitude / 1000
    let fraction = String(micros % 1_000_000)
    let sign = nanos < 0 && micros > 0 ? "-" : ""
    return sign + String(micros / 1_000_000) + "." + String(repeating: "0", count: 6 - fraction.count) + fraction
}

/// Whole epoch seconds in the form of `epochSeconds(_:)` ("253402300799.000000"): certificate
/// validity, which reaches years that nanoseconds cannot.
public func epochSeconds(whole seconds: Int64) -> String { "\(seconds).000000" }

/// "2026-11-29 05:26:16.123456" in UTC (civil-from-days, proleptic Gregorian). Times before
/// 1970 count back correctly ("1969-12-31 23:59:59.500000").
public func utcTimestamp(_ nanos: Int64, fractionDigits: Int = 6) -> String {
    var (totalSeconds, fractionNanos) = nanos.quotientAndRemainder(dividingBy: 1_000_000_000)
    if fractionNanos < 0 {
        totalSeconds -= 1
        fractionNanos += 1_000_000_000
    }
    var text = utcDate(seconds: totalSeconds)
    if fractionDigits > 0 {
        let fraction = String(fractionNanos / 1000)
        text += "." + String((String(repeating: "0", count: 6 - fraction.count) + fraction).prefix(fractionDigits))
    }
    return text
}

/// "9999-12-31 23:59:59" for seconds since the epoch, any year from 0000 to 9999.
public func utcDate(seconds totalSeconds: Int64) -> String {
    var (days, secondOfDay) = totalSeconds.quotientAndRemainder(dividingBy: 86_400)
    if secondOfDay < 0 {
        days -= 1
        secondOfDay += 86_400
    }
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
    let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let yearText = year < 1000 ? String(repeating: "0", count: year < 10 ? 3 : year < 100 ? 2 : 1) + "\(year)" : "\(year)"
    return "\(yearText)-\(two(month))-\(two(day)) \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))"
}
