import Capture
import Foundation
import TestSupport
import Testing

struct ReadPacket: Equatable {
    var timestamp: Int64
    var linkType: UInt32
    var originalLength: Int
    var bytes: [UInt8]
}

func readAll(_ path: String) throws -> ([ReadPacket], InputStats) {
    let reader = try CaptureFileReader(path: path)
    var packets: [ReadPacket] = []
    while let p = reader.next() {
        packets.append(
            ReadPacket(
                timestamp: p.timestampNanos,
                linkType: p.linkType.rawValue,
                originalLength: p.originalLength,
                bytes: Array(p.bytes)
            )
        )
    }
    return (packets, reader.stats)
}

func readWithLibpcap(_ path: String) throws -> [ReadPacket] {
    try readWithLibpcapReportingError(path).0
}

func readWithLibpcapReportingError(_ path: String) throws -> ([ReadPacket], String?) {
    let reader = try LibpcapFileReader(path: path)
    var packets: [ReadPacket] = []
    while let p = reader.next() {
        packets.append(
            ReadPacket(
                timestamp: p.timestampNanos,
                linkType: p.linkType.rawValue,
                originalLength: p.originalLength,
                bytes: Array(p.bytes)
            )
        )
    }
    return (packets, reader.error)
}

func temporaryFile(_ name: String, _ bytes: [UInt8]) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-\(getpid())-\(name)")
    try Data(bytes).write(to: url)
    return url
}

@Suite struct CaptureReaderTests {
    static var singleLinkTypeCaptures: [String] {
        Paths.recordedCaptures.filter { !$0.lastPathComponent.hasPrefix("two-interfaces") }.map(\.path)
            + Paths.peerCaptures.map(\.path)
    }

    /// The zero-copy reader returns exactly what libpcap returns: timestamps (nanoseconds),
    /// lengths, link types and bytes.
    @Test func ownReaderMatchesLibpcap() throws {
        var files = 0
        for path in Self.singleLinkTypeCaptures {
            let ours = try readAll(path).0
            let reference = try readWithLibpcap(path)
            #expect(ours.count == reference.count, "\(path)")
            if let index = (0..<min(ours.count, reference.count)).first(where: { ours[$0] != reference[$0] }) {
                let a = ours[index]
                let b = reference[index]
                Issue.record(
                    Comment(
                        rawValue: "\(path) packet \(index + 1): ours ts=\(a.timestamp) link=\(a.linkType) "
                            + "len=\(a.originalLength)/\(a.bytes.count), libpcap ts=\(b.timestamp) link=\(b.linkType) "
                            + "len=\(b.originalLength)/\(b.bytes.count)"
                    )
                )
            }
            files += 1
        }
        #expect(files >= 11)
    }

    /// libpcap 1.10 refuses a pcapng whose interfaces have different link types; this reader
    /// keeps a link type per interface.
    @Test func pcapngWithTwoLinkTypes() throws {
        let path = Paths.captures.appendingPathComponent("two-interfaces.pcapng").path
        let (partial, error) = try readWithLibpcapReportingError(path)
        #expect(error?.contains("different from the type of the first interface") == true)
        let packets = try readAll(path).0
        #expect(partial.count < packets.count)
        #expect(Set(packets.map(\.linkType)) == [1, 113])
        if toolAvailable("capinfos") {
            let info = try runProcess("capinfos", ["-c", "-M", path]).stdout
            #expect(info.contains("\(packets.count)"))
        }
    }

    @Test func multiInterfaceFilesComeOutInTimestampOrder() throws {
        let set = CaptureSet(paths: [Paths.captures.appendingPathComponent("two-interfaces.pcapng").path])
        var last = Int64.min
        var count = 0
        while let packet = set.next() {
            #expect(packet.timestampNanos >= last)
            last = packet.timestampNanos
            count += 1
        }
        #expect(count > 100)
        #expect(set.inputStats[0].reorderedPackets > 0)
    }

    @Test func gzipIsReadTransparently() throws {
        let plain = Paths.captures.appendingPathComponent("dumpcap.pcapng")
        let compressed = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-\(getpid()).pcapng.gz")
        defer { try? FileManager.default.removeItem(at: compressed) }
        #expect(try runProcess("/bin/sh", ["-c", "gzip -c '\(plain.path)' > '\(compressed.path)'"]).status == 0)
        let (packets, stats) = try readAll(compressed.path)
        #expect(packets == (try readAll(plain.path).0))
        #expect(stats.format == "pcapng+gzip")
    }

    @Test func standardInputCompressedOrNot() throws {
        let plain = Paths.captures.appendingPathComponent("tls12-session-id.pcap")
        let expected = try String(
            decoding: runProcess(Paths.binary.path, ["handshakes", "--format", "jsonl", "-q", plain.path]).stdout.utf8,
            as: UTF8.self
        )
        let viaStdin = try runProcess(
            "/bin/sh",
            ["-c", "'\(Paths.binary.path)' handshakes --format jsonl -q - < '\(plain.path)'"]
        )
        let viaGzipPipe = try runProcess(
            "/bin/sh",
            ["-c", "gzip -c '\(plain.path)' | '\(Paths.binary.path)' handshakes --format jsonl -q -"]
        )
        #expect(!expected.isEmpty)
        #expect(viaStdin.stdout == expected)
        #expect(viaGzipPipe.stdout == expected)
    }

    // The next tests DERIVE files from a real capture by rewriting its headers, or build
    // DELIBERATELY MALFORMED ones; each says which.

    /// Derived: the same capture written big-endian, and with nanosecond timestamps.
    @Test func byteOrdersAndNanosecondResolution() throws {
        let original = try Array(Data(contentsOf: Paths.captures.appendingPathComponent("tls12-session-id.pcap")))
        let (expected, _) = try readAll(Paths.captures.appendingPathComponent("tls12-session-id.pcap").path)
        func swap32(_ bytes: inout [UInt8], _ at: Int) { bytes[at..<(at + 4)].reverse() }
        func swap16(_ bytes: inout [UInt8], _ at: Int) { bytes[at..<(at + 2)].reverse() }
        var bigEndian = original
        var nano = original
        swap32(&bigEndian, 0)
        swap16(&bigEndian, 4)
        swap16(&bigEndian, 6)
        for field in stride(from: 8, to: 24, by: 4) { swap32(&bigEndian, field) }
        nano[0...3] = [0x4d, 0x3c, 0xb2, 0xa1]
        var position = 24
        while position + 16 <= original.count {
            let captured =
                Int(original[position + 8]) | Int(original[position + 9]) << 8 | Int(original[position + 10]) << 16
            for field in 0..<4 { swap32(&bigEndian, position + field * 4) }
            // microseconds x 1000 = nanoseconds
            let micros =
                UInt32(original[position + 4]) | UInt32(original[position + 5]) << 8 | UInt32(original[position + 6])
                << 16 | UInt32(original[position + 7]) << 24
            let nanos = micros * 1000
            nano[(position + 4)...(position + 7)] = [
                UInt8(nanos & 0xff), UInt8(nanos >> 8 & 0xff), UInt8(nanos >> 16 & 0xff), UInt8(nanos >> 24),
            ]
            position += 16 + captured
        }
        let big = try temporaryFile("big.pcap", bigEndian)
        let ns = try temporaryFile("ns.pcap", nano)
        defer {
            try? FileManager.default.removeItem(at: big)
            try? FileManager.default.removeItem(at: ns)
        }
        #expect(try readAll(big.path).0 == expected)
        let (nanoPackets, nanoStats) = try readAll(ns.path)
        #expect(nanoPackets == expected)
        #expect(nanoStats.format == "pcap-ns")
        #expect(try readWithLibpcap(big.path) == expected)
    }

    /// Deliberately malformed: a real capture cut in the middle of its last record.
    @Test func truncatedFileKeepsEarlierPackets() throws {
        let original = try Array(Data(contentsOf: Paths.captures.appendingPathComponent("tls12-session-id.pcap")))
        let (all, _) = try readAll(Paths.captures.appendingPathComponent("tls12-session-id.pcap").path)
        let cut = try temporaryFile("cut.pcap", Array(original.dropLast(7)))
        defer { try? FileManager.default.removeItem(at: cut) }
        let (packets, stats) = try readAll(cut.path)
        #expect(packets == Array(all.dropLast()))
        #expect(stats.truncated)
        #expect(stats.problems.first?.contains("file ends inside a packet") == true)
    }

    /// Deliberately malformed: one record header in the middle overwritten with garbage;
    /// the reader resynchronises at the next plausible record.
    @Test func corruptRecordHeaderIsSkipped() throws {
        var bytes = try Array(Data(contentsOf: Paths.captures.appendingPathComponent("tls12-session-id.pcap")))
        let (all, _) = try readAll(Paths.captures.appendingPathComponent("tls12-session-id.pcap").path)
        // Walk to the 10th record header and destroy its lengths.
        var position = 24
        for _ in 0..<9 { position += 16 + (Int(bytes[position + 8]) | Int(bytes[position + 9]) << 8) }
        for i in 8..<16 { bytes[position + i] = 0xff }
        let damaged = try temporaryFile("damaged.pcap", bytes)
        defer { try? FileManager.default.removeItem(at: damaged) }
        let (packets, stats) = try readAll(damaged.path)
        #expect(packets.count == all.count - 1)
        #expect(Array(packets[..<9]) == Array(all[..<9]) && Array(packets[9...]) == Array(all[10...]))
        #expect(stats.unusableRecords == 1 && stats.resyncedBytes > 0)
    }

    @Test func notACaptureMissingAndDirectory() throws {
        let text = try temporaryFile("text.txt", Array("hello, this is not a capture\n".utf8))
        let empty = try temporaryFile("empty.pcap", [])
        defer {
            try? FileManager.default.removeItem(at: text)
            try? FileManager.default.removeItem(at: empty)
        }
        func code(_ path: String) -> CaptureError.Code? {
            do {
                _ = try CaptureFileReader(path: path)
                return nil
            } catch { return error.code }
        }
        #expect(code(text.path) == .notACapture)
        #expect(code(empty.path) == .notACapture)
        #expect(code("/nonexistent/capture.pcap") == .notFound)
        #expect(code(FileManager.default.temporaryDirectory.path) == .notACapture)
    }

    /// The BPF filter keeps what tcpdump's own filtering keeps.
    @Test(.enabled(if: toolAvailable("tcpdump"), "tcpdump is not installed"))
    func bpfFilterAgreesWithTcpdump() throws {
        let path = Paths.captures.appendingPathComponent("tls12-session-id.pcap").path
        let expression = "tcp[tcpflags] & tcp-syn != 0"
        let filter = try PacketFilter(expression: expression)
        let reader = try CaptureFileReader(path: path)
        var kept = 0
        while let packet = reader.next() { if filter.matches(packet) { kept += 1 } }
        let reference = try runProcess("tcpdump", ["-nr", path, expression]).stdout.split(separator: "\n").count
        #expect(kept == reference && kept > 0)
        #expect(throws: CaptureError.self) { _ = try PacketFilter(expression: "tcp port") }
    }
}

@Suite struct TimeSpanTests {
    /// First and last packet times read from a file's two ends agree with capinfos (for
    /// captures in time order, where first and last are also earliest and latest).
    @Test(.enabled(if: toolAvailable("capinfos"), "capinfos is not installed"))
    func spanAgreesWithCapinfos() throws {
        let files = Paths.recordedCaptures.filter { !$0.lastPathComponent.hasPrefix("two-interfaces") }
        #expect(files.count > 10)
        for file in files {
            let span = try #require(CaptureFileReader.timeSpan(of: file.path), "\(file.lastPathComponent)")
            let info = try runProcess("capinfos", ["-a", "-e", "-S", "-T", "-r", file.path]).stdout
            let cells = info.split(separator: "\t").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            let first = try #require(Double(cells[1]))
            let last = try #require(Double(cells[2]))
            #expect(abs(Double(span.first) / 1e9 - first) < 1e-6, "\(file.lastPathComponent)")
            #expect(abs(Double(span.last) / 1e9 - last) < 1e-6, "\(file.lastPathComponent)")
        }
    }
}

/// Saved-record files are read line by line: LF or CRLF, gzip or not, a last line without
/// a line end (a killed run), and a line over the limit skipped and counted.
@Suite struct LineReaderTests {
    func lines(_ path: String) throws -> ([String], LineReader) {
        let reader = try LineReader(path: path)
        var out: [String] = []
        while let line = reader.next() { out.append(String(decoding: line, as: UTF8.self)) }
        return (out, reader)
    }

    @Test func lineEndsCompressionAndCutOffLastLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-lines-\(getpid()).txt").path
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: path + ".gz")
        }
        try Data("one\r\ntwo\n\nthree without end".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try lines(path).0 == ["one", "two", "", "three without end"])
        _ = try runProcess("gzip", ["-k", path])
        #expect(try lines(path + ".gz").0 == ["one", "two", "", "three without end"])
    }

    @Test func overlongLineIsSkippedAndCounted() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-long-\(getpid()).txt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var bytes = Array("first\n".utf8)
        bytes += [UInt8](repeating: UInt8(ascii: "x"), count: LineReader.maximumLine + 10)
        bytes += Array("\nlast\n".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (read, reader) = try lines(path)
        #expect(read == ["first", "last"])
        #expect(reader.overlongLines == 1)
    }
}

/// A worker following packets in place holds (pins) the reader's buffer; the reader must
/// then read on into another, never over bytes a worker still reads. The capture is
/// HAND-MADE: 3,000 packets of 1,500 numbered bytes (4.5 MB, several buffers' worth).
@Suite struct PinnedReadBufferTests {
    static func capture(packets: Int) throws -> URL {
        var bytes: [UInt8] = [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]
        for index in 0..<packets {
            let length = UInt32(1500)
            for field in [UInt32(1_700_000_000 + index), 0, length, length] {
                withUnsafeBytes(of: field.littleEndian) { bytes += $0 }
            }
            bytes += (0..<1500).map { UInt8(truncatingIfNeeded: index &* 7 &+ $0) }
        }
        return try temporaryFile("pinned-\(UUID().uuidString).pcap", bytes)
    }

    @Test func pinnedBytesStayAsTheyWereRead() throws {
        let file = try Self.capture(packets: 3000)
        defer { try? FileManager.default.removeItem(at: file) }
        let captures = CaptureSet(paths: [file.path], countsProgress: false)
        var held: [(buffer: ReadBuffer, bytes: UnsafeRawBufferPointer, copy: [UInt8])] = []
        var pinned = 0
        var count = 0
        while let packet = captures.next() {
            count += 1
            // Every tenth packet is held to the end; the others are let go at once.
            guard let buffer = captures.pin(packet.bytes) else { continue }
            pinned += 1
            if count % 10 == 0 { held.append((buffer, packet.bytes, Array(packet.bytes))) }
        }
        #expect(count == 3000)
        #expect(pinned == 3000, "a plain file's packets are all in its read buffer")
        #expect(Set(held.map { ObjectIdentifier($0.buffer) }).count > 3, "the reader moved on to other buffers")
        for (index, entry) in held.enumerated() {
            #expect(Array(entry.bytes).elementsEqual(entry.copy), "held packet \(index)")
            #expect(entry.copy.first == UInt8(truncatingIfNeeded: (index * 10 + 9) &* 7))
        }
        // Bytes from elsewhere are not the buffer's.
        let elsewhere = [UInt8](repeating: 1, count: 16)
        elsewhere.withUnsafeBytes { #expect(captures.pin($0) == nil) }
    }
}
