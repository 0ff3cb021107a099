import Foundation

/// Writes classic pcap files (microsecond, little-endian) for the tests that build
/// SYNTHETIC or DELIBERATELY MALFORMED captures. Real traffic comes from captures/.
package struct PcapWriter {
    package private(set) var bytes: [UInt8] = []

    package init(linkType: UInt32 = 1, snapLength: UInt32 = 262_144) {
        bytes.reserveCapacity(1 << 20)
        append32(0xa1b2_c3d4)
        append16(2)
        append16(4)
        append32(0)
        append32(0)
        append32(snapLength)
        append32(linkType)
    }

    package mutating func add(_ frame: [UInt8], at seconds: Double, originalLength: Int? = nil) {
        append32(UInt32(seconds))
        append32(UInt32((seconds - Double(UInt32(seconds))) * 1_000_000))
        append32(UInt32(frame.count))
        append32(UInt32(originalLength ?? frame.count))
        bytes += frame
    }

    package func write(to url: URL) throws { try Data(bytes).write(to: url) }

    private mutating func append32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    private mutating func append16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
}

/// Ethernet + IPv4 + TCP frames, checksums left zero (tlsreuse does not check them).
package enum Frames {
    package static let syn: UInt8 = 0x02, ack: UInt8 = 0x10, psh: UInt8 = 0x08, fin: UInt8 = 0x01, synAck: UInt8 = 0x12

    package static func tcp(
        from source: (address: UInt32, port: UInt16),
        to destination: (address: UInt32, port: UInt16),
        seq: UInt32,
        ack: UInt32 = 0,
        flags: UInt8,
        payload: [UInt8] = []
    ) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: 54)
        frame[12] = 0x08  // IPv4
        frame[14] = 0x45
        let total = 40 + payload.count
        frame[16] = UInt8(total >> 8)
        frame[17] = UInt8(total & 0xff)
        frame[22] = 64
        frame[23] = 6
        for i in 0..<4 {
            frame[26 + i] = UInt8(truncatingIfNeeded: source.address >> (24 - 8 * UInt32(i)))
            frame[30 + i] = UInt8(truncatingIfNeeded: destination.address >> (24 - 8 * UInt32(i)))
        }
        frame[34] = UInt8(source.port >> 8)
        frame[35] = UInt8(source.port & 0xff)
        frame[36] = UInt8(destination.port >> 8)
        frame[37] = UInt8(destination.port & 0xff)
        for i in 0..<4 {
            frame[38 + i] = UInt8(truncatingIfNeeded: seq >> (24 - 8 * UInt32(i)))
            frame[42 + i] = UInt8(truncatingIfNeeded: ack >> (24 - 8 * UInt32(i)))
        }
        frame[46] = 0x50
        frame[47] = flags
        frame[48] = 0xff
        frame[49] = 0xff
        return frame + payload
    }

    /// 10.0.0.0/8 address number n.
    package static func address(_ n: UInt32) -> UInt32 { 0x0a00_0000 | (n & 0x00ff_ffff) }
}

/// A run of the tlsreuse binary with its peak resident memory (from /usr/bin/time).
package func runMeasured(_ arguments: [String]) throws -> (result: ProcessResult, peakKiB: Int) {
    let report = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-time-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: report) }
    let result = try runProcess("/usr/bin/time", ["-f", "%M", "-o", report.path, Paths.binary.path] + arguments)
    let peak =
        Int((try? String(contentsOf: report, encoding: .utf8))?.split(separator: "\n").last.map(String.init) ?? "")
        ?? -1
    return (result, peak)
}

/// The "skipped" counts of a JSON report.
package func skippedCounts(_ json: String) -> [String: Int] {
    guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
        let capture = object["capture"] as? [String: Any], let skipped = capture["skipped"] as? [String: Int]
    else { return [:] }
    return skipped
}

/// Writes pcapng files (little-endian, one section) for SYNTHETIC and DELIBERATELY MALFORMED
/// captures: the tests about timestamps a classic pcap cannot hold.
package struct PcapngWriter {
    package private(set) var bytes: [UInt8] = []

    package init() {
        // Section Header Block: byte-order magic, version 1.0, section length unknown.
        block(0x0a0d_0d0a, le32(0x1a2b_3c4d) + le16(1) + le16(0) + le64(UInt64.max))
    }

    /// An Interface Description Block (Ethernet unless told) with nanosecond resolution
    /// (if_tsresol 9) and, when given, an if_tsoffset in seconds.
    package mutating func addInterface(linkType: UInt16 = 1, offsetSeconds: Int64? = nil) {
        var options = le16(9) + le16(1) + [9, 0, 0, 0]
        if let offsetSeconds { options += le16(14) + le16(8) + le64(UInt64(bitPattern: offsetSeconds)) }
        options += le16(0) + le16(0)
        block(1, le16(linkType) + le16(0) + le32(262_144) + options)
    }

    /// An Enhanced Packet Block at `units` nanoseconds (plus the interface's offset).
    package mutating func add(_ frame: [UInt8], units: UInt64, interface: UInt32 = 0, originalLength: Int? = nil) {
        var body =
            le32(interface) + le32(UInt32(truncatingIfNeeded: units >> 32)) + le32(UInt32(truncatingIfNeeded: units))
            + le32(UInt32(frame.count)) + le32(UInt32(originalLength ?? frame.count)) + frame
        while body.count % 4 != 0 { body.append(0) }
        block(6, body)
    }

    /// A Decryption Secrets Block holding TLS key log text (secrets type "TLSK").
    package mutating func addTLSSecrets(_ text: [UInt8]) {
        var body = le32(0x544c_534b) + le32(UInt32(text.count)) + text
        while body.count % 4 != 0 { body.append(0) }
        block(10, body)
    }

    private mutating func block(_ type: UInt32, _ body: [UInt8]) {
        let length = UInt32(12 + body.count)
        bytes += le32(type) + le32(length) + body + le32(length)
    }

    private func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    private func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
    private func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
}
