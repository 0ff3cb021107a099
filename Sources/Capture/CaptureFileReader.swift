/// What one input held and what could not be used, reported at the end of a run.
public struct InputStats: Sendable {
    public var name: String
    /// "pcap", "pcap-ns", "pcap-modified" or "pcapng", with "+gzip" when decompressed.
    public var format: String = ""
    public var packets = 0
    public var capturedBytes: Int64 = 0
    /// Packets dropped because a record or block was corrupt or named an undefined interface.
    public var unusableRecords = 0
    /// Bytes skipped to find the next plausible record after corruption.
    public var resyncedBytes: Int64 = 0
    /// Packets released in timestamp order rather than file order (multi-interface pcapng).
    public var reorderedPackets = 0
    /// True when the input ended inside a record.
    public var truncated = false
    /// Plain sentences about what went wrong, first ones only.
    public var problems: [String] = []
    /// Set when the whole input could not be read (missing, not a capture, ...).
    public var error: CaptureError?

    public init(name: String) { self.name = name }

    static let maximumProblems = 20
    mutating func note(_ problem: String) {
        if problems.count < InputStats.maximumProblems { problems.append(problem) }
    }
}

/// Reads classic pcap and pcapng files record by record, in place.
///
/// libpcap 1.10 refuses a pcapng file whose interfaces have different link types
/// ("an interface has a type 1 different from the type of the first interface"), which
/// `tcpdump -i any` alongside another interface and `mergecap` both produce; this reader
/// keeps a link type per interface. libpcap remains the reference in the tests.
public final class CaptureFileReader {
    /// libpcap's MAXIMUM_SNAPLEN: no capture tool writes a longer packet record.
    public static let maximumCapturedLength = 262_144
    /// pcapng readers cap a block at 16 MiB (libpcap's MAX_BLOCKSIZE).
    static let maximumBlockLength = ByteSource.maximumWindow
    /// Interfaces per pcapng section (interface ids are 32-bit; real files hold a few).
    static let maximumInterfaces = 65_536
    /// How far to scan for the next plausible record after a corrupt one.
    static let maximumResyncScan = 1 << 20

    private enum Format {
        case pcap(fractionNanos: Int64, recordHeader: Int)
        case pcapng
    }

    private struct Interface {
        var linkType: LinkType
        var snapLength: Int
        /// Timestamp units per second (if_tsresol, RFC draft-ietf-opsawg-pcapng 4.2).
        var unitsPerSecond: UInt64
        var offsetSeconds: Int64

        /// The time `units` stand for, or nil outside `CaptureTime`'s span.
        func nanos(_ units: UInt64) -> Int64? {
            let seconds = units / unitsPerSecond
            let fraction = units % unitsPerSecond
            let fractionNanos: UInt64
            if unitsPerSecond <= 1_000_000_000 {
                fractionNanos =
                    fraction &* (1_000_000_000 / unitsPerSecond) &+ (fraction &* (1_000_000_000 % unitsPerSecond))
                    / unitsPerSecond
            } else {
                fractionNanos = UInt64(Double(fraction) * 1e9 / Double(unitsPerSecond))
            }
            guard let whole = Int64(exactly: seconds) else { return nil }
            let (shifted, overflow) = whole.addingReportingOverflow(offsetSeconds)
            guard !overflow else { return nil }
            return CaptureTime.nanos(seconds: shifted, fractionNanos: Int64(fractionNanos))
        }
    }

    private let source: ByteSource
    private var format: Format
    private var swapped = false
    private var classicLinkType = LinkType.ethernet
    private var classicSnapLength = 0
    private var interfaces: [Interface] = []
    private var lastTimestamp: Int64 = 0
    public let inputIndex: Int
    public private(set) var stats: InputStats
    private var finished = false

    public var name: String { stats.name }
    /// True once a pcapng section has declared more than one interface: such files are
    /// written in per-interface chunks, so `CaptureSet` restores timestamp order.
    /// Set when a second interface appears (a pcapng from dumpcap on several interfaces writes
    /// each one's packets in chunks): from then on they need putting in timestamp order.
    /// Kept as a flag, read for every packet.
    public private(set) var hasSeveralInterfaces = false
    /// Decompressed bytes read so far, and the file size when known (for progress).
    public var bytesRead: Int64 { source.offset }
    public var totalBytes: Int64? { source.knownSize }
    /// For a pipe or FIFO: `next()` gives nil after 250 ms without bytes between packets,
    /// with `isWaiting` set, instead of waiting on (a live pipe's reader can then release
    /// what it holds, and ask again).
    public var returnsWhenWaiting: Bool {
        get { source.returnsWhenWaiting }
        set { source.returnsWhenWaiting = newValue }
    }
    /// Whether the last `next()` gave nil because no bytes had come yet (not the end).
    public var isWaiting: Bool { source.isWaiting && !finished }

    /// Opens a capture file, "-" for standard input. Throws when the input cannot be opened
    /// or does not start like a capture; later damage is recorded in `stats`, never thrown.
    /// `countsProgress`: this reader's bytes count towards `ReadProgress.shared`.
    public convenience init(path: String, inputIndex: Int = 0, countsProgress: Bool = false) throws(CaptureError) {
        try self.init(
            source: try ByteSource(path: path, countsProgress: countsProgress),
            name: path,
            inputIndex: inputIndex
        )
    }

    /// Reads a capture held in memory (fuzzing, tests).
    public convenience init(bytes: [UInt8], name: String = "memory") throws(CaptureError) {
        try self.init(source: ByteSource(bytes: bytes), name: name, inputIndex: 0)
    }

    private init(source: ByteSource, name path: String, inputIndex: Int) throws(CaptureError) {
        self.source = source
        self.inputIndex = inputIndex
        stats = InputStats(name: path)
        guard let header = source.window(4) else {
            if let error = source.readError { throw CaptureError.make(.io, error, input: path) }
            throw CaptureError.make(.notACapture, "empty or too short to be a capture", input: path)
        }
        let magic = header.loadUnaligned(as: UInt32.self)
        switch magic {
        case 0xa1b2_c3d4, 0xa1b2_3c4d, 0xa1b2_cd34:
            swapped = false
        case 0xd4c3_b2a1, 0x4d3c_b2a1, 0x34cd_b2a1:
            swapped = true
        case 0x0a0d_0d0a:
            format = .pcapng
            stats.format = "pcapng" + (source.isCompressed ? "+gzip" : "")
            return
        default:
            let hex = String(magic.bigEndian, radix: 16)
            throw CaptureError.make(.notACapture, "not a pcap or pcapng file (magic 0x\(hex))", input: path)
        }
        let native = swapped ? magic.byteSwapped : magic
        guard let fileHeader = source.window(24) else {
            throw CaptureError.make(.notACapture, "pcap file header is cut short", input: path)
        }
        let linkField =
            swapped
            ? fileHeader.loadUnaligned(fromByteOffset: 20, as: UInt32.self).byteSwapped
            : fileHeader.loadUnaligned(fromByteOffset: 20, as: UInt32.self)
        let snap =
            swapped
            ? fileHeader.loadUnaligned(fromByteOffset: 16, as: UInt32.self).byteSwapped
            : fileHeader.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
        // The low 16 bits are the link type; higher bits carry FCS information.
        classicLinkType = LinkType(rawValue: linkField & 0xffff)
        classicSnapLength = Int(snap)
        source.advance(24)
        switch native {
        case 0xa1b2_3c4d:
            format = .pcap(fractionNanos: 1, recordHeader: 16)
            stats.format = "pcap-ns"
        case 0xa1b2_cd34:
            // Alexey Kuznetzov's patched libpcap: 8 more bytes per record header.
            format = .pcap(fractionNanos: 1000, recordHeader: 24)
            stats.format = "pcap-modified"
        default:
            format = .pcap(fractionNanos: 1000, recordHeader: 16)
            stats.format = "pcap"
        }
        if source.isCompressed { stats.format += "+gzip" }
    }

    /// The next packet, or nil at the end of the input (including after damage that
    /// ends it, which is recorded in `stats`). The packet's bytes are valid until the next call.
    @inline(__always)
    public func next() -> CapturedPacket? {
        if finished { return nil }
        switch format {
        case let .pcap(fractionNanos, recordHeader):
            return nextClassic(fractionNanos: fractionNanos, headerLength: recordHeader)
        case .pcapng: return nextPcapng()
        }
    }

    /// The read buffer holding `bytes` of the packet last returned, if they are in it.
    package func pin(_ bytes: UnsafeRawBufferPointer) -> ReadBuffer? { source.pin(bytes) }

    @inline(__always)
    private func load32(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        let value = pointer.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        return swapped ? value.byteSwapped : value
    }

    @inline(__always)
    private func load16(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        let value = pointer.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        return swapped ? value.byteSwapped : value
    }

    private func end(truncatedAt offset: Int64? = nil, _ problem: String? = nil) -> CapturedPacket? {
        finished = true
        if let error = source.readError {
            stats.truncated = true
            stats.note("read error at byte \(source.offset): \(error)")
        } else if let offset, let problem {
            stats.truncated = true
            stats.note("\(problem) at byte \(offset)")
        }
        return nil
    }

    /// The timestamp of the record that ends exactly at the end of `tail` (the file's last
    /// bytes), found by scanning back for a record whose length reaches the end.
    func lastTimestamp(inTail tail: UnsafeRawBufferPointer) -> Int64? {
        let base = tail.baseAddress!
        switch format {
        case let .pcap(fractionNanos, headerLength):
            var offset = tail.count - headerLength
            while offset >= 0 {
                let captured = Int(load32(base, offset + 8))
                if offset + headerLength + captured == tail.count, captured <= CaptureFileReader.maximumCapturedLength,
                    Int(load32(base, offset + 12)) >= captured
                {
                    return Int64(load32(base, offset)) &* 1_000_000_000 &+ Int64(load32(base, offset + 4))
                        &* fractionNanos
                }
                offset -= 1
            }
            return nil
        case .pcapng:
            // A block's total length is repeated in its last four bytes.
            var end = tail.count
            while end >= 32 {
                let length = Int(load32(base, end - 4))
                guard length >= 12, length <= end, Int(load32(base, end - length + 4)) == length else { return nil }
                let start = end - length
                if load32(base, start) == 6, let interface = interfaces.first {
                    let units = UInt64(load32(base, start + 12)) << 32 | UInt64(load32(base, start + 16))
                    return interface.nanos(units)  // nil: not a time to compare with
                }
                end = start
            }
            return nil
        }
    }

    // MARK: classic pcap

    /// pcap record header (https://www.tcpdump.org/manpages/pcap-savefile.5.html):
    ///   uint32 ts_sec; uint32 ts_usec_or_nsec; uint32 incl_len; uint32 orig_len;
    @inline(__always)
    private func nextClassic(fractionNanos: Int64, headerLength: Int) -> CapturedPacket? {
        while true {
            guard let header = source.window(headerLength) else {
                if source.isWaiting { return nil }
                if source.buffered > 0 {
                    return end(
                        truncatedAt: source.offset,
                        "file ends inside a packet record header (\(source.buffered) of \(headerLength) bytes)"
                    )
                }
                return end()
            }
            let seconds = Int64(load32(header, 0))
            let fraction = Int64(load32(header, 4))
            let captured = Int(load32(header, 8))
            let original = Int(load32(header, 12))
            guard captured <= CaptureFileReader.maximumCapturedLength, fraction < 1_000_000_000 else {
                if resyncClassic(headerLength: headerLength, fractionNanos: fractionNanos) { continue }
                return end()
            }
            guard let record = source.window(headerLength + captured) else {
                return end(
                    truncatedAt: source.offset,
                    "file ends inside a packet (\(max(0, source.buffered - headerLength)) of \(captured) bytes)"
                )
            }
            let timestamp = seconds &* 1_000_000_000 &+ fraction &* fractionNanos
            source.advance(headerLength + captured)
            lastTimestamp = timestamp
            stats.packets += 1
            stats.capturedBytes += Int64(captured)
            return CapturedPacket(
                timestampNanos: timestamp,
                linkType: classicLinkType,
                originalLength: max(original, captured),
                bytes: UnsafeRawBufferPointer(start: record + headerLength, count: captured),
                inputIndex: inputIndex
            )
        }
    }

    /// After a corrupt record header, scans forward for two consecutive plausible headers.
    /// Returns false when none is found within `maximumResyncScan` bytes.
    private func resyncClassic(headerLength: Int, fractionNanos: Int64) -> Bool {
        let corruptAt = source.offset
        stats.unusableRecords += 1
        let fractionLimit = fractionNanos == 1 ? 1_000_000_000 : 1_000_000
        func plausible(_ p: UnsafeRawPointer) -> Int? {
            let seconds = Int64(load32(p, 0))
            let captured = Int(load32(p, 8))
            let original = Int(load32(p, 12))
            guard Int(load32(p, 4)) < fractionLimit, captured <= CaptureFileReader.maximumCapturedLength,
                original >= captured, original <= 0x10_0000
            else { return nil }
            let last = lastTimestamp / 1_000_000_000
            if lastTimestamp != 0, seconds < last - 3600 || seconds > last + 86_400 { return nil }
            return captured
        }
        var skipped = 1
        while skipped < CaptureFileReader.maximumResyncScan {
            guard let window = source.window(1 + headerLength) else { break }
            source.advance(1)
            let candidate = window + 1
            if let captured = plausible(candidate) {
                // Confirm with the header that follows, or the end of the input.
                let span = headerLength + captured
                if let following = source.window(span + headerLength) {
                    if plausible(following + span) != nil {
                        stats.resyncedBytes += Int64(skipped)
                        stats.note(
                            "corrupt packet record at byte \(corruptAt); skipped \(skipped) bytes to the next "
                                + "plausible record"
                        )
                        return true
                    }
                } else if source.window(span) != nil, source.buffered == span {
                    stats.resyncedBytes += Int64(skipped)
                    return true
                }
            }
            skipped += 1
        }
        stats.truncated = true
        stats.note("corrupt packet record at byte \(corruptAt); no plausible record follows, rest of the file skipped")
        return false
    }

    // MARK: pcapng

    /// pcapng block (draft-ietf-opsawg-pcapng section 3.1):
    ///   uint32 block_type; uint32 block_total_length; body; uint32 block_total_length;
    private func nextPcapng() -> CapturedPacket? {
        while true {
            guard let head = source.window(12) else {
                if source.isWaiting { return nil }
                if source.buffered > 0 {
                    return end(truncatedAt: source.offset, "file ends inside a pcapng block header")
                }
                return end()
            }
            let rawType = head.loadUnaligned(as: UInt32.self)
            if rawType == 0x0a0d_0d0a {
                // Section Header Block: its byte-order magic says how to read everything in the section.
                let byteOrder = head.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
                if byteOrder == 0x1a2b_3c4d {
                    swapped = false
                } else if byteOrder == 0x4d3c_2b1a {
                    swapped = true
                } else {
                    stats.note("pcapng section header with unknown byte-order magic at byte \(source.offset)")
                    return end()
                }
                interfaces.removeAll(keepingCapacity: true)
            }
            let type = load32(head, 0)
            let length = Int(load32(head, 4))
            guard length >= 12, length % 4 == 0, length <= CaptureFileReader.maximumBlockLength else {
                if resyncPcapng() { continue }
                return end()
            }
            guard let block = source.window(length) else {
                return end(
                    truncatedAt: source.offset,
                    "file ends inside a pcapng block (\(source.buffered) of \(length) bytes)"
                )
            }
            guard Int(load32(block, length - 4)) == length else {
                if resyncPcapng() { continue }
                return end()
            }
            let body = UnsafeRawBufferPointer(start: block + 8, count: length - 12)
            defer { source.advance(length) }
            switch type {
            case 6:  // Enhanced Packet Block
                if let packet = enhancedPacket(body) { return packet }
            case 3:  // Simple Packet Block
                if let packet = simplePacket(body) { return packet }
            case 2:  // Packet Block (obsolete)
                if let packet = obsoletePacket(body) { return packet }
            case 1:
                addInterface(body)
            case 10:
                decryptionSecrets(body)
            default:
                break  // name resolution, statistics, custom: not needed
            }
        }
    }

    /// Decryption Secrets Block body (4.7): uint32 secrets_type; uint32 secrets_length;
    /// secrets_data; options. TLS key log text (type 0x544c534b, "TLSK") is kept for
    /// `takeSecrets()`; other types (WireGuard, ZigBee, ...) are passed over.
    private func decryptionSecrets(_ body: UnsafeRawBufferPointer) {
        guard body.count >= 8 else { return note("decryption secrets block too short") }
        let type = load32(body.baseAddress!, 0)
        let length = Int(load32(body.baseAddress!, 4))
        guard type == 0x544c_534b else { return }
        guard length <= body.count - 8 else { return note("decryption secrets longer than their block") }
        guard secretsBytes + length <= CaptureFileReader.maximumSecretsBytes else {
            return note("TLS secrets past \(CaptureFileReader.maximumSecretsBytes) bytes in this file not kept")
        }
        secretsBytes += length
        pendingSecrets.append(Array(UnsafeRawBufferPointer(rebasing: body[8..<(8 + length)])))
        hasPendingSecrets = true
    }

    private func note(_ problem: String) { stats.note(problem) }

    /// TLS key log text from Decryption Secrets Blocks read so far and not yet taken.
    public private(set) var pendingSecrets: [[UInt8]] = []
    /// Whether `pendingSecrets` holds any: asked for every packet, answered without touching
    /// the array.
    public private(set) var hasPendingSecrets = false
    private var secretsBytes = 0
    /// Key log bytes kept per file (a key log line is about 200 bytes: some 80,000 secrets).
    static let maximumSecretsBytes = 16 << 20

    /// The secrets read since the last call, in file order.
    public func takeSecrets() -> [[UInt8]] {
        defer {
            pendingSecrets = []
            hasPendingSecrets = false
        }
        return pendingSecrets
    }

    /// Enhanced Packet Block body (4.3):
    ///   uint32 interface_id; uint32 ts_high; uint32 ts_low; uint32 captured_len; uint32 original_len; data; options
    @inline(__always)
    private func enhancedPacket(_ body: UnsafeRawBufferPointer) -> CapturedPacket? {
        guard body.count >= 20 else { return unusable("enhanced packet block too short") }
        let base = body.baseAddress!
        let interfaceID = Int(load32(base, 0))
        let units = UInt64(load32(base, 4)) << 32 | UInt64(load32(base, 8))
        let captured = Int(load32(base, 12))
        let original = Int(load32(base, 16))
        guard captured <= body.count - 20 else { return unusable("packet length exceeds its block") }
        guard interfaceID < interfaces.count else { return unusable("packet names undefined interface \(interfaceID)") }
        return packet(
            interfaces[interfaceID],
            units: units,
            bytes: UnsafeRawBufferPointer(start: base + 20, count: captured),
            original: original
        )
    }

    /// Simple Packet Block body (4.4): uint32 original_len; data. Always interface 0, no timestamp.
    private func simplePacket(_ body: UnsafeRawBufferPointer) -> CapturedPacket? {
        guard body.count >= 4, let interface = interfaces.first else {
            return unusable("simple packet block without interface")
        }
        let base = body.baseAddress!
        let original = Int(load32(base, 0))
        var captured = min(original, body.count - 4)
        if interface.snapLength > 0 { captured = min(captured, interface.snapLength) }
        stats.packets += 1
        stats.capturedBytes += Int64(captured)
        return CapturedPacket(
            timestampNanos: lastTimestamp,
            linkType: interface.linkType,
            originalLength: original,
            bytes: UnsafeRawBufferPointer(start: base + 4, count: captured),
            inputIndex: inputIndex
        )
    }

    /// Packet Block body (obsolete, appendix A):
    ///   uint16 interface_id; uint16 drops_count; uint32 ts_high; uint32 ts_low;
    ///   uint32 captured_len; uint32 original_len; data
    private func obsoletePacket(_ body: UnsafeRawBufferPointer) -> CapturedPacket? {
        guard body.count >= 20 else { return unusable("packet block too short") }
        let base = body.baseAddress!
        let interfaceID = Int(load16(base, 0))
        let units = UInt64(load32(base, 4)) << 32 | UInt64(load32(base, 8))
        let captured = Int(load32(base, 12))
        let original = Int(load32(base, 16))
        guard captured <= body.count - 20 else { return unusable("packet length exceeds its block") }
        guard interfaceID < interfaces.count else { return unusable("packet names undefined interface \(interfaceID)") }
        return packet(
            interfaces[interfaceID],
            units: units,
            bytes: UnsafeRawBufferPointer(start: base + 20, count: captured),
            original: original
        )
    }

    @inline(__always)
    private func packet(
        _ interface: Interface,
        units: UInt64,
        bytes: UnsafeRawBufferPointer,
        original: Int
    ) -> CapturedPacket? {
        guard let timestamp = interface.nanos(units) else { return unusable("packet time outside 1900 to 2149") }
        lastTimestamp = timestamp
        stats.packets += 1
        stats.capturedBytes += Int64(bytes.count)
        return CapturedPacket(
            timestampNanos: timestamp,
            linkType: interface.linkType,
            originalLength: max(original, bytes.count),
            bytes: bytes,
            inputIndex: inputIndex
        )
    }

    func noteReordered() { stats.reorderedPackets += 1 }

    private func unusable(_ problem: String) -> CapturedPacket? {
        stats.unusableRecords += 1
        stats.note("\(problem) at byte \(source.offset)")
        return nil
    }

    /// Interface Description Block body (4.2):
    ///   uint16 link_type; uint16 reserved; uint32 snap_len; options
    /// Options used: if_tsresol (9) and if_tsoffset (14).
    private func addInterface(_ body: UnsafeRawBufferPointer) {
        guard body.count >= 8, interfaces.count < CaptureFileReader.maximumInterfaces else {
            stats.note("unusable interface description block at byte \(source.offset)")
            // Keep interface numbering aligned so later packets are not misattributed.
            interfaces.append(
                Interface(
                    linkType: LinkType(rawValue: 0xffff_ffff),
                    snapLength: 0,
                    unitsPerSecond: 1_000_000,
                    offsetSeconds: 0
                )
            )
            hasSeveralInterfaces = interfaces.count > 1
            return
        }
        let base = body.baseAddress!
        var interface = Interface(
            linkType: LinkType(rawValue: UInt32(load16(base, 0))),
            snapLength: Int(load32(base, 4)),
            unitsPerSecond: 1_000_000,
            offsetSeconds: 0
        )
        var position = 8
        // Each option: uint16 code; uint16 length; value padded to 32 bits. Ends at opt_endofopt or the body end.
        while position + 4 <= body.count {
            let code = load16(base, position)
            let length = Int(load16(base, position + 2))
            let value = position + 4
            guard code != 0, value + length <= body.count else { break }
            if code == 9, length >= 1 {
                let resolution = base.load(fromByteOffset: value, as: UInt8.self)
                let exponent = UInt64(resolution & 0x7f)
                if resolution & 0x80 != 0 {
                    if exponent <= 63 { interface.unitsPerSecond = 1 << exponent }
                } else if exponent <= 19 {
                    var units: UInt64 = 1
                    for _ in 0..<exponent { units *= 10 }
                    interface.unitsPerSecond = units
                }
            } else if code == 14, length >= 8 {
                let raw = base.loadUnaligned(fromByteOffset: value, as: UInt64.self)
                interface.offsetSeconds = Int64(bitPattern: swapped ? raw.byteSwapped : raw)
            }
            position = value + (length + 3) & ~3
        }
        interfaces.append(interface)
        hasSeveralInterfaces = interfaces.count > 1
    }

    /// After a block with an impossible length, scans for the next block whose leading and
    /// trailing lengths agree. Returns false when none is found within `maximumResyncScan`.
    private func resyncPcapng() -> Bool {
        let corruptAt = source.offset
        stats.unusableRecords += 1
        var skipped = 0
        while skipped < CaptureFileReader.maximumResyncScan {
            guard source.window(16) != nil else { break }
            source.advance(4)
            skipped += 4
            guard let head = source.window(12) else { break }
            let type = load32(head, 0)
            let length = Int(load32(head, 4))
            guard [1, 2, 3, 5, 6].contains(type), length >= 12, length % 4 == 0, length <= 1 << 18 + 64 else {
                continue
            }
            if let block = source.window(length), Int(load32(block, length - 4)) == length {
                stats.resyncedBytes += Int64(skipped)
                stats.note(
                    "corrupt pcapng block at byte \(corruptAt); skipped \(skipped) bytes to the next intact block"
                )
                return true
            }
        }
        stats.truncated = true
        stats.note("corrupt pcapng block at byte \(corruptAt); no intact block follows, rest of the file skipped")
        return false
    }
}
