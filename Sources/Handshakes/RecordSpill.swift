import Foundation
import Packets
import TLSWire

/// Handshake records in a compact binary form, for a worker that runs ahead of the merge:
/// the records of a later rotated file wait in a temporary file instead of in memory, so
/// memory stays flat whatever the files hold. The format is private to one run.
///
/// One list of fields (`HandshakeRecord.code`) serves both directions: the writer appends
/// each value it is handed, the reader replaces it with what it reads. Writing and reading
/// cannot drift apart.
protocol RecordSpillCoder {
    mutating func unsigned<T: FixedWidthInteger & UnsignedInteger>(_ value: inout T)
    mutating func signed(_ value: inout Int64)
    mutating func bool(_ value: inout Bool)
    mutating func string(_ value: inout String)
    /// A presence flag, then the value; a reader fills `placeholder` in.
    mutating func optional<T>(_ value: inout T?, placeholder: T, _ code: (inout Self, inout T) -> Void)
    /// A count, then the values; a reader fills a `placeholder` in for each.
    mutating func array<T>(_ values: inout [T], placeholder: T, _ code: (inout Self, inout T) -> Void)
    /// After the certificate's fields: a reader makes the summary, shared between the records
    /// of one leaf certificate as the extractor shares it; a writer has nothing to do.
    mutating func certificate(_ value: inout CertificateSummary?, from fields: CertificateFields?, leaf: String?)
}

extension RecordSpillCoder {
    mutating func int(_ value: inout Int) {
        var wide = Int64(value)
        signed(&wide)
        value = Int(wide)
    }

    mutating func double(_ value: inout Double) {
        var bits = value.bitPattern
        unsigned(&bits)
        value = Double(bitPattern: bits)
    }

    mutating func optionalString(_ value: inout String?) { optional(&value, placeholder: "") { $0.string(&$1) } }
    mutating func strings(_ values: inout [String]) { array(&values, placeholder: "") { $0.string(&$1) } }
    mutating func optionalUnsigned<T: FixedWidthInteger & UnsignedInteger>(_ value: inout T?) {
        optional(&value, placeholder: 0) { $0.unsigned(&$1) }
    }

    mutating func address(_ address: inout IPAddress) {
        bool(&address.isIPv6)
        unsigned(&address.high)
        unsigned(&address.low)
    }
}

struct RecordSpillWriter: RecordSpillCoder {
    private(set) var bytes: [UInt8] = []

    mutating func unsigned<T: FixedWidthInteger & UnsignedInteger>(_ value: inout T) { append(UInt64(value)) }

    private mutating func append(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// Zigzag, so small negative numbers stay short.
    mutating func signed(_ value: inout Int64) { append(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }
    mutating func bool(_ value: inout Bool) { bytes.append(value ? 1 : 0) }

    mutating func string(_ value: inout String) {
        value.withUTF8 { utf8 in
            append(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func optional<T>(_ value: inout T?, placeholder: T, _ code: (inout Self, inout T) -> Void) {
        var present = value != nil
        bool(&present)
        if var present = value { code(&self, &present) }
    }

    mutating func array<T>(_ values: inout [T], placeholder: T, _ code: (inout Self, inout T) -> Void) {
        append(UInt64(values.count))
        for var value in values { code(&self, &value) }
    }

    mutating func certificate(_ value: inout CertificateSummary?, from fields: CertificateFields?, leaf: String?) {}

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }
}

/// Reads what `RecordSpillWriter` wrote. A read that finds the bytes short or out of range
/// leaves its value and marks the reader `damaged`, so a damaged file ends the reading
/// instead of the process.
struct RecordSpillReader: RecordSpillCoder {
    private let bytes: [UInt8]
    private var index = 0
    private(set) var damaged = false
    /// Summaries read so far, carried from frame to frame by the caller.
    private(set) var certificates: SpilledCertificates

    init(_ bytes: [UInt8], certificates: SpilledCertificates = SpilledCertificates()) {
        self.bytes = bytes
        self.certificates = certificates
    }

    var isAtEnd: Bool { index == bytes.count }

    /// Nil, and damaged, when the varint is cut off or longer than 64 bits.
    private mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while !damaged, index < bytes.count, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        damaged = true
        return nil
    }

    /// A count of items that each take at least one byte: no more than the bytes left.
    private mutating func count() -> Int? {
        guard let count = varint(), count <= UInt64(bytes.count - index) else {
            damaged = true
            return nil
        }
        return Int(count)
    }

    mutating func unsigned<T: FixedWidthInteger & UnsignedInteger>(_ value: inout T) {
        guard let raw = varint() else { return }
        guard let exact = T(exactly: raw) else {
            damaged = true
            return
        }
        value = exact
    }

    mutating func signed(_ value: inout Int64) {
        guard let raw = varint() else { return }
        value = Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func bool(_ value: inout Bool) {
        guard !damaged, index < bytes.count, bytes[index] <= 1 else {
            damaged = true
            return
        }
        value = bytes[index] == 1
        index += 1
    }

    mutating func string(_ value: inout String) {
        guard let count = count() else { return }
        value = String(decoding: bytes[index..<(index + count)], as: UTF8.self)
        index += count
    }

    mutating func optional<T>(_ value: inout T?, placeholder: T, _ code: (inout Self, inout T) -> Void) {
        var present = false
        bool(&present)
        guard present, !damaged else {
            value = nil
            return
        }
        var read = placeholder
        code(&self, &read)
        value = read
    }

    mutating func array<T>(_ values: inout [T], placeholder: T, _ code: (inout Self, inout T) -> Void) {
        guard let count = count() else { return }
        var read: [T] = []
        read.reserveCapacity(count)
        for _ in 0..<count where !damaged {
            var value = placeholder
            code(&self, &value)
            read.append(value)
        }
        values = read
    }

    mutating func certificate(_ value: inout CertificateSummary?, from fields: CertificateFields?, leaf: String?) {
        value = fields.map { certificates.shared($0.summary, leaf: leaf) }
    }
}

/// A certificate summary's fields, as the spill codes them (the summary itself is immutable).
struct CertificateFields {
    var subject = ""
    var issuer = ""
    var commonName: String?
    var subjectAlternativeNames: [String] = []
    var notBeforeSeconds: Int64 = 0
    var notAfterSeconds: Int64 = 0

    init() {}

    init(_ summary: CertificateSummary) {
        subject = summary.subject
        issuer = summary.issuer
        commonName = summary.commonName
        subjectAlternativeNames = summary.subjectAlternativeNames
        notBeforeSeconds = summary.notBeforeSeconds
        notAfterSeconds = summary.notAfterSeconds
    }

    var summary: CertificateSummary {
        CertificateSummary(subject: subject, issuer: issuer, commonName: commonName, subjectAlternativeNames: subjectAlternativeNames,
                           notBeforeSeconds: notBeforeSeconds, notAfterSeconds: notAfterSeconds)
    }

    mutating func code<Coder: RecordSpillCoder>(_ c: inout Coder) {
        c.string(&subject)
        c.string(&issuer)
        c.optionalString(&commonName)
        c.strings(&subjectAlternativeNames)
        c.signed(&notBeforeSeconds)
        c.signed(&notAfterSeconds)
    }
}

extension PSKOffer {
    static let placeholder = PSKOffer(digest: "", keyName: nil, obfuscatedTicketAge: 0, length: 0, text: nil)

    mutating func code<Coder: RecordSpillCoder>(_ c: inout Coder) {
        c.string(&digest)
        c.optionalString(&keyName)
        c.unsigned(&obfuscatedTicketAge)
        c.int(&length)
        c.optionalString(&text)
    }
}

extension ServerTraits {
    mutating func code<Coder: RecordSpillCoder>(_ c: inout Coder) {
        c.unsigned(&ttl)
        c.optionalUnsigned(&synAckWindow)
        c.optionalString(&synAckOptions)
        c.optionalUnsigned(&firstTimestampValue)
        c.optional(&firstTimestampNanos, placeholder: 0) { $0.signed(&$1) }
        c.optionalUnsigned(&lastTimestampValue)
        c.optional(&lastTimestampNanos, placeholder: 0) { $0.signed(&$1) }
    }
}

extension HandshakeRecord {
    /// Every field, in the one order both directions use.
    mutating func code<Coder: RecordSpillCoder>(_ c: inout Coder) {
        c.string(&uid)
        c.signed(&timestampNanos)
        c.address(&client)
        c.unsigned(&clientPort)
        c.address(&server)
        c.unsigned(&serverPort)
        c.string(&transport)
        c.optionalString(&starttls)
        c.optionalString(&sni)
        c.strings(&alpnOffered)
        c.array(&versionsOffered, placeholder: ProtocolVersion(rawValue: 0)) { $0.unsigned(&$1.rawValue) }
        c.string(&clientSessionID)
        c.bool(&offeredTicket)
        c.bool(&ticketSupported)
        c.optionalString(&offeredTicketDigest)
        c.optionalString(&offeredTicketKeyName)
        c.bool(&offeredPSK)
        c.array(&pskIdentities, placeholder: .placeholder) { $1.code(&$0) }
        c.optionalString(&pskKind)
        c.bool(&earlyDataOffered)
        c.bool(&echOffered)
        c.string(&clientRandom)
        c.bool(&sslv2Hello)
        c.optional(&version, placeholder: ProtocolVersion(rawValue: 0)) { $0.unsigned(&$1.rawValue) }
        c.optional(&cipher, placeholder: CipherSuite(rawValue: 0)) { $0.unsigned(&$1.rawValue) }
        c.optionalString(&serverSessionID)
        c.optionalString(&alpnSelected)
        c.optional(&pskSelected, placeholder: 0) { $0.int(&$1) }
        c.array(&serverExtensions, placeholder: 0) { $0.unsigned(&$1) }
        c.bool(&hrr)
        c.bool(&ticketIssued)
        c.optionalString(&issuedTicketDigest)
        c.optionalString(&issuedTicketKeyName)
        c.optionalUnsigned(&ticketLifetimeHint)
        c.strings(&certificateFingerprints)
        c.optional(&serverTraits, placeholder: ServerTraits(ttl: 0)) { $1.code(&$0) }
        var certificateFields = certificate.map(CertificateFields.init)
        c.optional(&certificateFields, placeholder: CertificateFields()) { $1.code(&$0) }
        c.certificate(&certificate, from: certificateFields, leaf: certificateFingerprints.first)
        c.optional(&sniMatchesCertificate, placeholder: false) { $0.bool(&$1) }
        c.optionalString(&ja3)
        c.optionalString(&ja4)
        c.optionalString(&ja3s)
        c.optional(&resumed, placeholder: false) { $0.bool(&$1) }
        c.optionalString(&resumption)
        c.bool(&established)
        c.optionalString(&alert)
        c.optionalString(&malformed)
        c.int(&gaps)
        c.optionalString(&offer)
        c.optionalString(&resumes)
        c.optionalString(&pskFirstOfferedBy)
        c.optional(&sessionAge, placeholder: 0) { $0.double(&$1) }
        c.optionalString(&sessionAgeFrom)
        c.optionalString(&backend)
        c.optionalString(&backendLeg)
        c.optionalString(&backsideOf)
    }

    /// Appends the whole record; `init(spilled:)` reads it back equal.
    func spill(into writer: inout RecordSpillWriter) {
        var record = self
        record.code(&writer)
    }

    /// Reads one record that `spill(into:)` wrote; nil when the bytes are damaged.
    init?(spilled reader: inout RecordSpillReader) {
        let unset = IPAddress(high: 0, low: 0, isIPv6: false)
        self.init(uid: "", timestampNanos: 0, client: unset, clientPort: 0, server: unset, serverPort: 0)
        code(&reader)
        if reader.damaged { return nil }
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
        untilDone(bytes.count) { pwrite(descriptor, bytes.baseAddress! + $0, bytes.count - $0, off_t(offset) + off_t($0)) }
    }

    private func readAll(_ bytes: UnsafeMutableRawBufferPointer, at offset: Int64) -> Bool {
        untilDone(bytes.count) { pread(descriptor, bytes.baseAddress! + $0, bytes.count - $0, off_t(offset) + off_t($0)) }
    }

    /// Repeats a partial pread or pwrite (`step`, given the bytes done so far) until `count`
    /// bytes are through; false on an error or end of file. Interrupted calls are retried.
    private func untilDone(_ count: Int, _ step: (Int) -> Int) -> Bool {
        var done = 0
        while done < count {
            let moved = step(done)
            if moved < 0, errno == EINTR { continue }
            guard moved > 0 else { return false }
            done += moved
        }
        return true
    }
}
