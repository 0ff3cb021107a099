import Foundation
import Packets
import TLSWire

/// Handshake records in a compact binary form, for a worker that runs ahead of the merge:
/// the records of a later rotated file wait in a temporary file instead of in memory, so
/// memory stays flat whatever the files hold. The format is private to one run.
struct RecordSpillWriter {
    private(set) var bytes: [UInt8] = []

    mutating func unsigned(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// Zigzag, so small negative numbers stay short.
    mutating func signed(_ value: Int64) { unsigned(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }
    mutating func int(_ value: Int) { signed(Int64(value)) }
    mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            unsigned(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// A presence byte, then the value when present.
    mutating func optional<T>(_ value: T?, _ write: (inout RecordSpillWriter, T) -> Void) {
        bool(value != nil)
        if let value { write(&self, value) }
    }

    mutating func array<T>(_ values: [T], _ write: (inout RecordSpillWriter, T) -> Void) {
        unsigned(UInt64(values.count))
        for value in values { write(&self, value) }
    }

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }
}

/// Reads what `RecordSpillWriter` wrote. Every read returns nil when the bytes are short
/// or do not fit, so a damaged file ends the reading instead of the process.
struct RecordSpillReader {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { index == bytes.count }

    mutating func unsigned() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    mutating func signed() -> Int64? {
        guard let raw = unsigned() else { return nil }
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func int() -> Int? { signed().map { Int($0) } }

    mutating func uint16() -> UInt16? { unsigned().flatMap { UInt16(exactly: $0) } }
    mutating func uint32() -> UInt32? { unsigned().flatMap { UInt32(exactly: $0) } }

    mutating func bool() -> Bool? {
        guard index < bytes.count, bytes[index] <= 1 else { return nil }
        index += 1
        return bytes[index - 1] == 1
    }

    mutating func string() -> String? {
        guard let count = unsigned(), count <= UInt64(bytes.count - index) else { return nil }
        let start = index
        index += Int(count)
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// `.some(nil)` for an absent value, nil when the bytes are damaged.
    mutating func optional<T>(_ read: (inout RecordSpillReader) -> T?) -> T?? {
        guard let present = bool() else { return nil }
        guard present else { return .some(nil) }
        guard let value = read(&self) else { return nil }
        return .some(value)
    }

    mutating func array<T>(_ read: (inout RecordSpillReader) -> T?) -> [T]? {
        guard let count = unsigned(), count <= UInt64(bytes.count - index) else { return nil }
        var values: [T] = []
        values.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let value = read(&self) else { return nil }
            values.append(value)
        }
        return values
    }
}

extension HandshakeRecord {
    /// Appends the whole record; `init(spilled:certificates:)` reads it back equal.
    func spill(into writer: inout RecordSpillWriter) {
        writer.string(uid)
        writer.signed(timestampNanos)
        writer.address(client)
        writer.unsigned(UInt64(clientPort))
        writer.address(server)
        writer.unsigned(UInt64(serverPort))
        writer.string(transport)
        writer.optional(starttls) { $0.string($1) }
        writer.optional(sni) { $0.string($1) }
        writer.array(alpnOffered) { $0.string($1) }
        writer.array(versionsOffered) { $0.unsigned(UInt64($1.rawValue)) }
        writer.string(clientSessionID)
        writer.bool(offeredTicket)
        writer.bool(ticketSupported)
        writer.optional(offeredTicketDigest) { $0.string($1) }
        writer.optional(offeredTicketKeyName) { $0.string($1) }
        writer.bool(offeredPSK)
        writer.array(pskIdentities) { writer, offer in
            writer.string(offer.digest)
            writer.optional(offer.keyName) { $0.string($1) }
            writer.unsigned(UInt64(offer.obfuscatedTicketAge))
            writer.int(offer.length)
            writer.optional(offer.text) { $0.string($1) }
        }
        writer.optional(pskKind) { $0.string($1) }
        writer.bool(earlyDataOffered)
        writer.bool(echOffered)
        writer.string(clientRandom)
        writer.bool(sslv2Hello)
        writer.optional(version) { $0.unsigned(UInt64($1.rawValue)) }
        writer.optional(cipher) { $0.unsigned(UInt64($1.rawValue)) }
        writer.optional(serverSessionID) { $0.string($1) }
        writer.optional(alpnSelected) { $0.string($1) }
        writer.optional(pskSelected) { $0.int($1) }
        writer.array(serverExtensions) { $0.unsigned(UInt64($1)) }
        writer.bool(hrr)
        writer.bool(ticketIssued)
        writer.optional(issuedTicketDigest) { $0.string($1) }
        writer.optional(issuedTicketKeyName) { $0.string($1) }
        writer.optional(ticketLifetimeHint) { $0.unsigned(UInt64($1)) }
        writer.array(certificateFingerprints) { $0.string($1) }
        writer.optional(serverTraits) { writer, traits in
            writer.unsigned(UInt64(traits.ttl))
            writer.optional(traits.synAckWindow) { $0.unsigned(UInt64($1)) }
            writer.optional(traits.synAckOptions) { $0.string($1) }
            writer.optional(traits.firstTimestampValue) { $0.unsigned(UInt64($1)) }
            writer.optional(traits.firstTimestampNanos) { $0.signed($1) }
            writer.optional(traits.lastTimestampValue) { $0.unsigned(UInt64($1)) }
            writer.optional(traits.lastTimestampNanos) { $0.signed($1) }
        }
        writer.optional(certificate) { writer, summary in
            writer.string(summary.subject)
            writer.string(summary.issuer)
            writer.optional(summary.commonName) { $0.string($1) }
            writer.array(summary.subjectAlternativeNames) { $0.string($1) }
            writer.signed(summary.notBeforeNanos)
            writer.signed(summary.notAfterNanos)
        }
        writer.optional(sniMatchesCertificate) { $0.bool($1) }
        writer.optional(ja3) { $0.string($1) }
        writer.optional(ja4) { $0.string($1) }
        writer.optional(ja3s) { $0.string($1) }
        writer.optional(resumed) { $0.bool($1) }
        writer.optional(resumption) { $0.string($1) }
        writer.bool(established)
        writer.optional(alert) { $0.string($1) }
        writer.optional(malformed) { $0.string($1) }
        writer.int(gaps)
        writer.optional(offer) { $0.string($1) }
        writer.optional(resumes) { $0.string($1) }
        writer.optional(pskFirstOfferedBy) { $0.string($1) }
        writer.optional(sessionAge) { $0.unsigned($1.bitPattern) }
        writer.optional(backend) { $0.string($1) }
        writer.optional(backendLeg) { $0.string($1) }
        writer.optional(backsideOf) { $0.string($1) }
    }

    /// Reads one record that `spill(into:)` wrote; nil when the bytes are damaged. Records of
    /// one server share one certificate summary again through `certificates`.
    init?(spilled reader: inout RecordSpillReader, certificates: inout SpilledCertificates) {
        guard let uid = reader.string(), let timestampNanos = reader.signed(), let client = reader.address(),
              let clientPort = reader.uint16(), let server = reader.address(), let serverPort = reader.uint16()
        else { return nil }
        self.init(uid: uid, timestampNanos: timestampNanos, client: client, clientPort: clientPort, server: server, serverPort: serverPort)
        guard let transport = reader.string(), let starttls = reader.optional({ $0.string() }),
              let sni = reader.optional({ $0.string() }), let alpnOffered = reader.array({ $0.string() }),
              let versionsOffered = reader.array({ $0.uint16().map(ProtocolVersion.init(rawValue:)) }),
              let clientSessionID = reader.string(), let offeredTicket = reader.bool(), let ticketSupported = reader.bool(),
              let offeredTicketDigest = reader.optional({ $0.string() }), let offeredTicketKeyName = reader.optional({ $0.string() }),
              let offeredPSK = reader.bool(),
              let pskIdentities = reader.array({ reader -> PSKOffer? in
                  guard let digest = reader.string(), let keyName = reader.optional({ $0.string() }), let age = reader.uint32(),
                        let length = reader.int(), let text = reader.optional({ $0.string() }) else { return nil }
                  return PSKOffer(digest: digest, keyName: keyName, obfuscatedTicketAge: age, length: length, text: text)
              }),
              let pskKind = reader.optional({ $0.string() }), let earlyDataOffered = reader.bool(), let echOffered = reader.bool(),
              let clientRandom = reader.string(), let sslv2Hello = reader.bool()
        else { return nil }
        self.transport = transport
        self.starttls = starttls
        self.sni = sni
        self.alpnOffered = alpnOffered
        self.versionsOffered = versionsOffered
        self.clientSessionID = clientSessionID
        self.offeredTicket = offeredTicket
        self.ticketSupported = ticketSupported
        self.offeredTicketDigest = offeredTicketDigest
        self.offeredTicketKeyName = offeredTicketKeyName
        self.offeredPSK = offeredPSK
        self.pskIdentities = pskIdentities
        self.pskKind = pskKind
        self.earlyDataOffered = earlyDataOffered
        self.echOffered = echOffered
        self.clientRandom = clientRandom
        self.sslv2Hello = sslv2Hello
        guard let version = reader.optional({ $0.uint16().map(ProtocolVersion.init(rawValue:)) }),
              let cipher = reader.optional({ $0.uint16().map(CipherSuite.init(rawValue:)) }),
              let serverSessionID = reader.optional({ $0.string() }), let alpnSelected = reader.optional({ $0.string() }),
              let pskSelected = reader.optional({ $0.int() }), let serverExtensions = reader.array({ $0.uint16() }),
              let hrr = reader.bool(), let ticketIssued = reader.bool(),
              let issuedTicketDigest = reader.optional({ $0.string() }), let issuedTicketKeyName = reader.optional({ $0.string() }),
              let ticketLifetimeHint = reader.optional({ $0.uint32() }),
              let certificateFingerprints = reader.array({ $0.string() }),
              let serverTraits = reader.optional({ reader -> ServerTraits? in
                  guard let ttl = reader.unsigned().flatMap({ UInt8(exactly: $0) }),
                        let window = reader.optional({ $0.uint16() }), let options = reader.optional({ $0.string() }),
                        let firstValue = reader.optional({ $0.uint32() }), let firstNanos = reader.optional({ $0.signed() }),
                        let lastValue = reader.optional({ $0.uint32() }), let lastNanos = reader.optional({ $0.signed() })
                  else { return nil }
                  var traits = ServerTraits(ttl: ttl)
                  traits.synAckWindow = window
                  traits.synAckOptions = options
                  traits.firstTimestampValue = firstValue
                  traits.firstTimestampNanos = firstNanos
                  traits.lastTimestampValue = lastValue
                  traits.lastTimestampNanos = lastNanos
                  return traits
              }),
              let certificate = reader.optional({ reader -> CertificateSummary? in
                  guard let subject = reader.string(), let issuer = reader.string(), let commonName = reader.optional({ $0.string() }),
                        let names = reader.array({ $0.string() }), let notBefore = reader.signed(), let notAfter = reader.signed()
                  else { return nil }
                  return CertificateSummary(subject: subject, issuer: issuer, commonName: commonName, subjectAlternativeNames: names,
                                            notBeforeNanos: notBefore, notAfterNanos: notAfter)
              })
        else { return nil }
        self.version = version
        self.cipher = cipher
        self.serverSessionID = serverSessionID
        self.alpnSelected = alpnSelected
        self.pskSelected = pskSelected
        self.serverExtensions = serverExtensions
        self.hrr = hrr
        self.ticketIssued = ticketIssued
        self.issuedTicketDigest = issuedTicketDigest
        self.issuedTicketKeyName = issuedTicketKeyName
        self.ticketLifetimeHint = ticketLifetimeHint
        self.certificateFingerprints = certificateFingerprints
        self.serverTraits = serverTraits
        self.certificate = certificate.map { certificates.shared($0, leaf: certificateFingerprints.first) }
        guard let sniMatchesCertificate = reader.optional({ $0.bool() }), let ja3 = reader.optional({ $0.string() }),
              let ja4 = reader.optional({ $0.string() }), let ja3s = reader.optional({ $0.string() }),
              let resumed = reader.optional({ $0.bool() }), let resumption = reader.optional({ $0.string() }),
              let established = reader.bool(), let alert = reader.optional({ $0.string() }),
              let malformed = reader.optional({ $0.string() }), let gaps = reader.int(),
              let offer = reader.optional({ $0.string() }), let resumes = reader.optional({ $0.string() }),
              let pskFirstOfferedBy = reader.optional({ $0.string() }),
              let sessionAge = reader.optional({ $0.unsigned().map(Double.init(bitPattern:)) }),
              let backend = reader.optional({ $0.string() }), let backendLeg = reader.optional({ $0.string() }),
              let backsideOf = reader.optional({ $0.string() })
        else { return nil }
        self.sniMatchesCertificate = sniMatchesCertificate
        self.ja3 = ja3
        self.ja4 = ja4
        self.ja3s = ja3s
        self.resumed = resumed
        self.resumption = resumption
        self.established = established
        self.alert = alert
        self.malformed = malformed
        self.gaps = gaps
        self.offer = offer
        self.resumes = resumes
        self.pskFirstOfferedBy = pskFirstOfferedBy
        self.sessionAge = sessionAge
        self.backend = backend
        self.backendLeg = backendLeg
        self.backsideOf = backsideOf
    }
}

/// Certificate summaries read back from a spill, one instance per leaf certificate again, as
/// the extractor shares them. Bounded: a capture of many certificates only costs sharing.
struct SpilledCertificates {
    /// Distinct leaf certificates remembered before the table starts afresh.
    static let maximumRemembered = 1024
    private var byLeaf: [String: CertificateSummary] = [:]

    mutating func shared(_ summary: CertificateSummary, leaf: String?) -> CertificateSummary {
        guard let leaf else { return summary }
        if let known = byLeaf[leaf], known == summary { return known }
        if byLeaf.count >= SpilledCertificates.maximumRemembered { byLeaf.removeAll(keepingCapacity: true) }
        byLeaf[leaf] = summary
        return summary
    }
}

extension RecordSpillWriter {
    mutating func address(_ address: IPAddress) {
        bool(address.isIPv6)
        unsigned(address.high)
        unsigned(address.low)
    }
}

extension RecordSpillReader {
    mutating func address() -> IPAddress? {
        guard let isIPv6 = bool(), let high = unsigned(), let low = unsigned() else { return nil }
        return IPAddress(high: high, low: low, isIPv6: isIPv6)
    }
}

/// An unlinked temporary file that frames of spilled records are appended to and read back
/// from in order. Nil when no temporary file can be made; the caller then waits instead.
final class RecordSpillFile {
    private let descriptor: Int32
    private var writeOffset: Int64 = 0
    private var readOffset: Int64 = 0

    /// - Parameter directory: where to make the file; TMPDIR, or /tmp, when nil.
    init?(directory: String? = nil) {
        let directory = directory ?? ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(directory)/tlsreuse-spill-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { return nil }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Appends one frame: its length, then its bytes. False when the write failed (a full
    /// disk); nothing of the frame counts then.
    func append(_ frame: [UInt8]) -> Bool {
        var length = UInt32(frame.count).littleEndian
        let header = withUnsafeBytes(of: &length) { writeAll($0, at: writeOffset) }
        guard header, frame.withUnsafeBytes({ writeAll($0, at: writeOffset + 4) }) else { return false }
        writeOffset += 4 + Int64(frame.count)
        return true
    }

    /// The next frame appended and not yet read; nil when the read failed.
    func next() -> [UInt8]? {
        var length: UInt32 = 0
        guard withUnsafeMutableBytes(of: &length, { readAll($0, at: readOffset) }) else { return nil }
        let count = Int(UInt32(littleEndian: length))
        var frame = [UInt8](repeating: 0, count: count)
        guard frame.withUnsafeMutableBytes({ readAll($0, at: readOffset + 4) }) else { return nil }
        readOffset += 4 + Int64(count)
        if readOffset == writeOffset {
            // Everything read: start over, so the file holds at most what is waiting.
            readOffset = 0
            writeOffset = 0
            _ = ftruncate(descriptor, 0)
        }
        return frame
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer, at offset: Int64) -> Bool {
        var done = 0
        while done < bytes.count {
            let written = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return false }
            done += written
        }
        return true
    }

    private func readAll(_ bytes: UnsafeMutableRawBufferPointer, at offset: Int64) -> Bool {
        var done = 0
        while done < bytes.count {
            let got = pread(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if got < 0, errno == EINTR { continue }
            guard got > 0 else { return false }
            done += got
        }
        return true
    }
}
