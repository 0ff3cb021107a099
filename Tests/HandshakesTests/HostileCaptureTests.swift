import Foundation
import TestSupport
import Testing

/// Hostile and broken captures. Every capture here is either DELIBERATELY MALFORMED (a real
/// capture damaged in one way) or SYNTHETIC (packets built by the test); each test says
/// which. In every case tlsreuse must not crash, must stay under `memoryBound`, and must
/// count what it skipped in the report.
@Suite struct HostileCaptureTests {
    /// The documented bound (README, "Bad input").
    /// The documented bound. Under a sanitizer (scripts/test-sanitizers) shadow memory and
    /// quarantine inflate RSS several times by design, so only the sanitizer's own checks apply.
    static let memoryBoundKiB = ProcessInfo.processInfo.environment["TLSREUSE_SANITIZED"] == nil ? 256 * 1024 : Int.max

    static func temporary(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-hostile-\(getpid())-\(name)")
    }

    static func original(_ capture: String) throws -> [UInt8] {
        try Array(Data(contentsOf: Paths.captures.appendingPathComponent(capture)))
    }

    /// The records of a pcap's packets, rewritten by `change`, as classic pcap records.
    static func rewritePackets(_ capture: String, _ change: (inout [UInt8], inout Int, Int) -> Void) throws -> [UInt8] {
        let bytes = try original(capture)
        var out = Array(bytes[0..<24])
        var position = 24
        var index = 0
        while position + 16 <= bytes.count {
            let captured = Int(bytes[position + 8]) | Int(bytes[position + 9]) << 8 | Int(bytes[position + 10]) << 16
            var header = Array(bytes[position..<(position + 16)])
            var data = Array(bytes[(position + 16)..<(position + 16 + captured)])
            var length = data.count
            change(&data, &length, index)
            let newLength = UInt32(data.count)
            header[8] = UInt8(newLength & 0xff)
            header[9] = UInt8(newLength >> 8 & 0xff)
            header[10] = UInt8(newLength >> 16)
            header[11] = 0
            out += header + data
            position += 16 + captured
            index += 1
        }
        return out
    }

    func run(_ arguments: [String]) throws -> (ProcessResult, Int) {
        let (result, peak) = try runMeasured(arguments)
        #expect(!result.crashed, "\(result.stderr)")
        if peak > 0 { #expect(peak < Self.memoryBoundKiB, "peak RSS \(peak) KiB") }
        return (result, peak)
    }

    /// DELIBERATELY MALFORMED: a real capture cut in the middle of its last record.
    @Test func truncatedLastPacketKeepsEarlierResults() throws {
        let file = Self.temporary("cut.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(try Self.original("tls12-session-id.pcap").dropLast(7)).write(to: file)
        let (result, _) = try run(["handshakes", "--format", "jsonl", "-q", file.path])
        #expect(result.status == 1)
        #expect(result.stdout.split(separator: "\n").count == 6)
        #expect(result.stderr.contains("file ends inside a packet"))
    }

    /// DELIBERATELY MALFORMED: a real capture with every packet cut to 100 bytes (a small snaplen).
    @Test func smallSnaplen() throws {
        let file = Self.temporary("snap.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(
            try Self.rewritePackets("tls12-ticket.pcap") { data, _, _ in
                if data.count > 100 { data.removeSubrange(100...) }
            }
        ).write(to: file)
        let (result, _) = try run(["report", "--format", "json", "-q", file.path])
        #expect(result.status == 0)
        let skipped = skippedCounts(result.stdout)
        #expect((skipped["tcp_gaps"] ?? 0) > 0)
        // Every ClientHello was cut: each handshake is counted as lost, none invented.
        #expect(skipped["tls_handshakes_lost_to_gaps"] == 6)
    }

    /// SYNTHETIC: headers whose lengths point past the end of the packet, and a TLS record
    /// longer than the connection.
    @Test func lengthsPastTheEnd() throws {
        var pcap = PcapWriter()
        let client = (Frames.address(1), UInt16(40000))
        let server = (Frames.address(2), UInt16(443))
        var longIHL = Frames.tcp(from: client, to: server, seq: 1, flags: Frames.ack)
        longIHL[14] = 0x4f  // IHL 60 bytes, packet shorter
        pcap.add(Array(longIHL.prefix(40)), at: 1)
        var longOffset = Frames.tcp(from: client, to: server, seq: 1, flags: Frames.ack)
        longOffset[46] = 0xf0  // data offset 60 bytes, packet shorter
        pcap.add(longOffset, at: 2)
        let record: [UInt8] =
            [0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc] + [UInt8](repeating: 0x42, count: 20)
        pcap.add(Frames.tcp(from: client, to: server, seq: 1000, flags: Frames.syn), at: 3)
        pcap.add(
            Frames.tcp(from: client, to: server, seq: 1001, flags: Frames.ack | Frames.psh, payload: record),
            at: 4
        )
        let file = Self.temporary("lengths.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        try pcap.write(to: file)
        let (result, _) = try run(["report", "--format", "json", "-q", file.path])
        #expect(result.status == 0)
        let skipped = skippedCounts(result.stdout)
        #expect(skipped["truncated_headers"] == 1)
        #expect(skipped["malformed_headers"] == 1)
    }

    /// SYNTHETIC: a ClientHello declaring 2^24-1 bytes, followed by a megabyte of records.
    @Test func handshakeLengthOfTwoToTheTwentyFourMinusOne() throws {
        var pcap = PcapWriter()
        let client = (Frames.address(1), UInt16(40000))
        let server = (Frames.address(2), UInt16(443))
        pcap.add(Frames.tcp(from: client, to: server, seq: 1000, flags: Frames.syn), at: 1)
        var seq: UInt32 = 1001
        let first: [UInt8] =
            [0x16, 0x03, 0x01, 0x05, 0xb4, 0x01, 0xff, 0xff, 0xff] + [UInt8](repeating: 0x41, count: 1456)
        pcap.add(Frames.tcp(from: client, to: server, seq: seq, flags: Frames.ack, payload: first), at: 2)
        seq &+= UInt32(first.count)
        let more: [UInt8] = [0x16, 0x03, 0x01, 0x05, 0xb4] + [UInt8](repeating: 0x41, count: 1460)
        for i in 0..<700 {
            pcap.add(
                Frames.tcp(from: client, to: server, seq: seq, flags: Frames.ack, payload: more),
                at: 3 + Double(i) / 1000
            )
            seq &+= UInt32(more.count)
        }
        let file = Self.temporary("huge-handshake.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        try pcap.write(to: file)
        let (result, _) = try run(["report", "--format", "json", "-q", file.path])
        #expect(result.status == 0)
    }

    /// SYNTHETIC: ClientHellos with 16,000 extensions, and with a duplicate extension.
    @Test func endlessAndDuplicateExtensions() throws {
        func clientHello(extensions: [UInt16]) -> [UInt8] {
            var body: [UInt8] =
                [0x03, 0x03] + [UInt8](repeating: 0x11, count: 32) + [0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00]
            let block = extensions.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff), 0, 0] }
            body += [UInt8(block.count >> 8), UInt8(block.count & 0xff)] + block
            let message: [UInt8] =
                [0x01, UInt8(body.count >> 16), UInt8(body.count >> 8 & 0xff), UInt8(body.count & 0xff)] + body
            var records: [UInt8] = []
            var offset = 0
            while offset < message.count {
                let piece = message[offset..<min(message.count, offset + 16_384)]
                records += [0x16, 0x03, 0x01, UInt8(piece.count >> 8), UInt8(piece.count & 0xff)] + piece
                offset += piece.count
            }
            return records
        }
        var pcap = PcapWriter()
        for (n, extensions) in [Array(UInt16(100)..<16_100), [0, 10, 0]].enumerated() {
            let client = (Frames.address(UInt32(1 + n)), UInt16(40000))
            let server = (Frames.address(200), UInt16(443))
            pcap.add(Frames.tcp(from: client, to: server, seq: 1000, flags: Frames.syn), at: Double(1 + n * 10))
            let stream = clientHello(extensions: extensions)
            var seq: UInt32 = 1001
            var offset = 0
            while offset < stream.count {
                let piece = Array(stream[offset..<min(stream.count, offset + 1400)])
                pcap.add(
                    Frames.tcp(from: client, to: server, seq: seq, flags: Frames.ack, payload: piece),
                    at: Double(2 + n * 10) + Double(offset) / 1e6
                )
                seq &+= UInt32(piece.count)
                offset += piece.count
            }
        }
        let file = Self.temporary("extensions.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        try pcap.write(to: file)
        let (result, _) = try run(["handshakes", "--format", "jsonl", "-q", file.path])
        #expect(result.status == 0)
        // The 16,000-extension hello parses; the one with a repeated extension has no
        // ClientHello to report (the message is malformed) and is counted.
        let records = result.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(records.count == 1)
        #expect(records.first?["malformed"] is NSNull)
    }

    /// SYNTHETIC: a million SYNs from different ports and addresses: the flow table stays
    /// bounded (the least recently active flows are finished early).
    @Test func aMillionSYNs() throws {
        var pcap = PcapWriter()
        let server = (Frames.address(0xff_ffff), UInt16(443))
        let template = Frames.tcp(from: (Frames.address(1), 1), to: server, seq: 7, flags: Frames.syn)
        for i in 0..<1_000_000 {
            var frame = template
            let address = Frames.address(UInt32(i >> 16) + 1)
            frame[28] = UInt8(address >> 8 & 0xff)
            frame[29] = UInt8(address & 0xff)
            frame[34] = UInt8(i >> 8 & 0xff)
            frame[35] = UInt8(i & 0xff)
            pcap.add(frame, at: 1 + Double(i) / 1e6)
        }
        let file = Self.temporary("syns.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        try pcap.write(to: file)
        let (result, peak) = try run(["report", "--format", "json", "-q", "--jobs", "1", file.path])
        #expect(result.status == 0)
        #expect(peak > 0 && peak < Self.memoryBoundKiB)
        // Past the flow count or the memory budget, whichever comes first.
        let skipped = skippedCounts(result.stdout)
        #expect((skipped["flows_evicted"] ?? 0) + (skipped["flows_evicted_for_memory"] ?? 0) > 400_000)
    }

    /// SYNTHETIC: a million out-of-order segments in one flow: held bytes stay bounded and
    /// the holes are declared gaps.
    @Test func aMillionOutOfOrderSegments() throws {
        var pcap = PcapWriter()
        let client = (Frames.address(1), UInt16(40000))
        let server = (Frames.address(2), UInt16(443))
        pcap.add(Frames.tcp(from: client, to: server, seq: 0, flags: Frames.syn), at: 1)
        let template = Frames.tcp(from: client, to: server, seq: 0, flags: Frames.ack, payload: [0x16])
        for i in 0..<1_000_000 {
            var frame = template
            let seq = UInt32(2_000_000 - 2 * i)  // descending, each with a hole before it
            frame[38] = UInt8(seq >> 24)
            frame[39] = UInt8(seq >> 16 & 0xff)
            frame[40] = UInt8(seq >> 8 & 0xff)
            frame[41] = UInt8(seq & 0xff)
            pcap.add(frame, at: 2 + Double(i) / 1e6)
        }
        let file = Self.temporary("ooo.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        try pcap.write(to: file)
        let (result, peak) = try run(["report", "--format", "json", "-q", "--jobs", "1", file.path])
        #expect(result.status == 0)
        #expect(peak > 0 && peak < Self.memoryBoundKiB)
        #expect((skippedCounts(result.stdout)["tcp_buffer_limit_gaps"] ?? 0) > 0)
    }

    /// DELIBERATELY MALFORMED: a real capture with every sequence number shifted so both
    /// streams wrap past 2^32 in the handshake: the records are the same.
    @Test func sequenceWrapAround() throws {
        let shifted = try Self.rewritePackets("tls12-ticket.pcap") { data, _, _ in
            guard data.count >= 54, data[23] == 6 else { return }
            for field in [38, 42] {
                var value =
                    UInt32(data[field]) << 24 | UInt32(data[field + 1]) << 16 | UInt32(data[field + 2]) << 8
                    | UInt32(data[field + 3])
                value &+= 0xffff_fe00 &- 0x1000_0000
                if value == 0 && data[47] & 0x10 == 0 && field == 42 { continue }  // no ACK: leave 0
                data[field] = UInt8(value >> 24)
                data[field + 1] = UInt8(value >> 16 & 0xff)
                data[field + 2] = UInt8(value >> 8 & 0xff)
                data[field + 3] = UInt8(value & 0xff)
            }
        }
        let file = Self.temporary("wrap.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(shifted).write(to: file)
        let original = try runProcess(
            Paths.binary.path,
            ["handshakes", "--format", "jsonl", "-q", Paths.captures.appendingPathComponent("tls12-ticket.pcap").path]
        )
        let (wrapped, _) = try run(["handshakes", "--format", "jsonl", "-q", file.path])
        #expect(wrapped.status == 0)
        #expect(wrapped.stdout.split(separator: "\n").count == 6)
        // Sequence numbers do not appear in records: the output is the same apart from TCP
        // timestamps, which were left alone.
        #expect(wrapped.stdout == original.stdout)
    }

    /// DELIBERATELY MALFORMED: a real ClientHello packet repeated with one byte changed.
    /// First copy wins (as in Zeek and Suricata); the conflict is counted.
    @Test func overlappingRetransmissionWithDifferentContent() throws {
        var done = false
        let bytes = try Self.original("tls12-session-id.pcap")
        var out = Array(bytes[0..<24])
        var position = 24
        while position + 16 <= bytes.count {
            let captured = Int(bytes[position + 8]) | Int(bytes[position + 9]) << 8
            let record = Array(bytes[position..<(position + 16 + captured)])
            out += record
            // The first packet carrying a ClientHello (TLS handshake record, type 1).
            if !done, captured > 70, record[16 + 66] == 0x16, record[16 + 71] == 0x01 {
                var copy = record
                copy[16 + 66 + 20] ^= 0xff  // inside the random
                out += copy
                done = true
            }
            position += 16 + captured
        }
        #expect(done)
        let file = Self.temporary("conflict.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(out).write(to: file)
        let original = try runProcess(
            Paths.binary.path,
            [
                "handshakes", "--format", "jsonl", "-q",
                Paths.captures.appendingPathComponent("tls12-session-id.pcap").path,
            ]
        )
        let (result, _) = try run(["handshakes", "--format", "jsonl", "-q", file.path])
        #expect(result.stdout == original.stdout)
        let report = try runProcess(Paths.binary.path, ["report", "--format", "json", "-q", file.path])
        #expect(skippedCounts(report.stdout)["tcp_conflicting_overlaps"] == 1)
    }

    /// A run killed while writing JSON Lines leaves only complete lines, to a file and to a pipe.
    @Test func killedRunLeavesCompleteLines() throws {
        // SYNTHETIC: a recorded capture repeated with fresh ports, about 60,000 connections.
        let bytes = try Self.original("tls12-session-id.pcap")
        var big = Array(bytes[0..<24])
        for round in 0..<10_000 {
            var position = 24
            while position + 16 <= bytes.count {
                let captured = Int(bytes[position + 8]) | Int(bytes[position + 9]) << 8
                var record = Array(bytes[position..<(position + 16 + captured)])
                let seconds =
                    UInt32(record[0]) | UInt32(record[1]) << 8 | UInt32(record[2]) << 16 | UInt32(record[3]) << 24
                let moved = seconds &+ UInt32(round * 2)
                record[0] = UInt8(moved & 0xff)
                record[1] = UInt8(moved >> 8 & 0xff)
                record[2] = UInt8(moved >> 16 & 0xff)
                record[3] = UInt8(moved >> 24)
                if captured >= 54, record[16 + 23] == 6 {
                    record[16 + 29] = UInt8(round & 0xff)
                    record[16 + 28] = UInt8(round >> 8 & 0xff)  // source address
                    record[16 + 33] = UInt8(round & 0xff)
                    record[16 + 32] = UInt8(round >> 8 & 0xff)  // destination address
                }
                big += record
                position += 16 + captured
            }
        }
        let input = Self.temporary("big.pcap")
        let output = Self.temporary("out.jsonl")
        defer {
            try? FileManager.default.removeItem(at: input)
            try? FileManager.default.removeItem(at: output)
        }
        try Data(big).write(to: input)
        for toFile in [true, false] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            let command = "'\(Paths.binary.path)' handshakes --format jsonl -q --jobs 1 '\(input.path)'"
            // To a file (written in batches of whole lines), and through a pipe (a line at a time).
            process.arguments = [
                "-c", toFile ? "exec \(command) -o '\(output.path)'" : "\(command) | cat > '\(output.path)'",
            ]
            try process.run()
            // Kill once a few lines are out (at most 30 s, for slow sanitized builds).
            for _ in 0..<300 {
                Thread.sleep(forTimeInterval: 0.1)
                let written = (try? Data(contentsOf: output)) ?? Data()
                if written.filter({ $0 == 0x0a }).count >= 3 { break }
            }
            // Stopped first, then killed: a stop takes effect between system calls, so the kill
            // finds the writer between two writes, which is where a line split across writes
            // would show. (A SIGKILL landing inside one long write to a file cuts it at a page
            // boundary, in the kernel: no writer can prevent that.)
            _ = try runProcess("pkill", ["-STOP", "-f", "handshakes --format jsonl -q --jobs 1 \(input.path)"])
            Thread.sleep(forTimeInterval: 0.05)
            _ = try runProcess("pkill", ["-KILL", "-f", "handshakes --format jsonl -q --jobs 1 \(input.path)"])
            process.waitUntilExit()
            let text = try String(contentsOf: output, encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.count > 1, "nothing written before the kill")
            #expect(text.isEmpty || text.hasSuffix("\n"), "a partial line was left")
            for line in lines where !line.isEmpty {
                #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil)
            }
        }
    }
}
