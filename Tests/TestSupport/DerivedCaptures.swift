import Capture
import Foundation
import Packets

/// Captures DERIVED from recorded ones for the reordering and sequence-space tests: the
/// packets of a real capture, moved the way a capture point can move them, or with a
/// handshake packet shown as another attempt would have sent it. Nothing else is made up.
/// Written as pcapng (nanoseconds, one interface per link type).
package enum CaptureDerivation: Sendable, CustomStringConvertible {
    /// In each direction of each TCP connection, each pair of consecutive data segments
    /// less than half a second apart trades places (the positions keep their times, so the
    /// file stays in time order): what two NIC queues or two merged taps do. A SYN that
    /// carries data (TCP Fast Open) keeps its place: moved behind later bytes, it would make
    /// the connection begin mid-stream, where tlsreuse, like Zeek and Suricata, begins it.
    case swappedSegments
    /// Every TCP packet sent by the connection's responder (or originator) is stamped
    /// `nanos` later, and the file is put back in time order: two directions captured by
    /// two points whose clocks disagree, joined by timestamp.
    case delayed(responder: Bool, nanos: Int64)
    /// Before each connection's first SYN-ACK, a copy of it whose initial sequence number is
    /// 2^31 away: a second sequence space the client never acknowledges, as a SYN proxy or an
    /// answer to an earlier SYN shows. Data was not sent in it.
    case secondSynAck
    /// Each SYN without data carries an initial sequence number 2^31 away from the one the
    /// server acknowledged: the capture shows an earlier attempt and missed the retried SYN.
    case synOfAnotherAttempt

    package var description: String {
        switch self {
        case .swappedSegments: return "swapped segments"
        case .secondSynAck: return "second SYN-ACK"
        case .synOfAnotherAttempt: return "SYN of another attempt"
        case let .delayed(responder, nanos):
            return "\(responder ? "responder" : "originator") delayed \(nanos / 1_000_000) ms"
        }
    }
}

/// One packet of a capture, copied out of the reader.
private struct CopiedPacket {
    var timestampNanos: Int64
    var linkType: UInt32
    var bytes: [UInt8]
    var originalLength: Int
    /// For a TCP packet: its connection (endpoints in a fixed order) and whether it was
    /// sent by the low endpoint; whether it carries data; whether it is a SYN without ACK.
    var connection: String?
    var fromLow = false
    var carriesData = false
    var opensConnection = false
    var isSynAck = false
    /// Where the TCP header starts in `bytes`, when it lies there (not reassembled from fragments).
    var tcpHeaderOffset: Int?
}

extension CopiedPacket {
    /// Adds `delta` to the TCP sequence number and updates the checksum (RFC 1624 eqn. 3).
    mutating func shiftSequence(by delta: UInt32) {
        guard let offset = tcpHeaderOffset, offset + 20 <= bytes.count else { return }
        func word(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        let old = UInt32(word(offset + 4)) << 16 | UInt32(word(offset + 6))
        let new = old &+ delta
        var sum = UInt32(~word(offset + 16))
        sum += UInt32(~word(offset + 4)) + UInt32(~word(offset + 6))
        sum += new >> 16 + new & 0xffff
        while sum > 0xffff { sum = (sum & 0xffff) + sum >> 16 }
        let checksum = ~UInt16(sum)
        for (at, value) in [
            (offset + 4, UInt16(new >> 16)), (offset + 6, UInt16(new & 0xffff)), (offset + 16, checksum),
        ] {
            bytes[at] = UInt8(value >> 8)
            bytes[at + 1] = UInt8(value & 0xff)
        }
    }
}

/// Writes `derivation` of the capture at `source` to `destination`.
package func deriveCapture(_ source: URL, _ derivation: CaptureDerivation, to destination: URL) throws {
    let reader = try CaptureFileReader(path: source.path)
    var decoder = PacketDecoder()
    var packets: [CopiedPacket] = []
    while let packet = reader.next() {
        var copied = CopiedPacket(
            timestampNanos: packet.timestampNanos,
            linkType: packet.linkType.rawValue,
            bytes: Array(packet.bytes),
            originalLength: packet.originalLength
        )
        if case let .tcp(segment) = decoder.decode(packet) {
            let a = "\(segment.source)|\(segment.sourcePort)"
            let b = "\(segment.destination)|\(segment.destinationPort)"
            copied.fromLow = a < b
            copied.connection = copied.fromLow ? a + "-" + b : b + "-" + a
            copied.carriesData = segment.payloadLength > 0
            copied.opensConnection = segment.flags.contains(.syn) && !segment.flags.contains(.ack)
            copied.isSynAck = segment.flags.contains([.syn, .ack])
            if let options = segment.optionBytes.baseAddress, let base = packet.bytes.baseAddress {
                let offset = options - base - 20
                if offset >= 0, offset + 20 <= packet.bytes.count { copied.tcpHeaderOffset = offset }
            }
        }
        packets.append(copied)
    }
    // In capture-time order, as a reader presents them (dumpcap writes each interface's
    // packets in chunks).
    packets = packets.enumerated().sorted {
        ($0.element.timestampNanos, $0.offset) < ($1.element.timestampNanos, $1.offset)
    }
    .map(\.element)
    // Which side opened each connection: the sender of its first SYN, else of its first packet.
    var originatorIsLow: [String: Bool] = [:]
    for packet in packets where packet.opensConnection {
        if let connection = packet.connection, originatorIsLow[connection] == nil {
            originatorIsLow[connection] = packet.fromLow
        }
    }
    for packet in packets {
        if let connection = packet.connection, originatorIsLow[connection] == nil {
            originatorIsLow[connection] = packet.fromLow
        }
    }
    switch derivation {
    case .swappedSegments:
        var waiting: [String: Int] = [:]
        for index in packets.indices where packets[index].carriesData && !packets[index].opensConnection {
            guard let connection = packets[index].connection else { continue }
            let direction = connection + (packets[index].fromLow ? ">" : "<")
            // Networks reorder within milliseconds; segments further apart than half of
            // reassembly's reorder wait (1 s) are not swapped: past it a hole is a loss, by design.
            if let earlier = waiting[direction],
                packets[index].timestampNanos - packets[earlier].timestampNanos > 500_000_000
            {
                waiting[direction] = index
            } else if let earlier = waiting.removeValue(forKey: direction) {
                let moved = packets[earlier]
                // Each position keeps its time; the packets trade places.
                packets[earlier].timestampNanos = packets[index].timestampNanos
                packets[index].timestampNanos = moved.timestampNanos
                packets.swapAt(earlier, index)
            } else {
                waiting[direction] = index
            }
        }
    case let .delayed(responder, nanos):
        for index in packets.indices {
            guard let connection = packets[index].connection, let low = originatorIsLow[connection] else { continue }
            let fromOriginator = packets[index].fromLow == low
            if fromOriginator != responder { packets[index].timestampNanos += nanos }
        }
        packets = packets.enumerated().sorted {
            ($0.element.timestampNanos, $0.offset) < ($1.element.timestampNanos, $1.offset)
        }
        .map(\.element)
    case .secondSynAck:
        var shown: Set<String> = []
        var derived: [CopiedPacket] = []
        for packet in packets {
            if packet.isSynAck, let connection = packet.connection, shown.insert(connection).inserted {
                var other = packet
                other.shiftSequence(by: 1 << 31)
                derived.append(other)
            }
            derived.append(packet)
        }
        packets = derived
    case .synOfAnotherAttempt:
        for index in packets.indices where packets[index].opensConnection && !packets[index].carriesData {
            packets[index].shiftSequence(by: 1 << 31)
        }
    }
    var writer = PcapngWriter()
    // The key log a pcapng carried (Decryption Secrets Blocks) goes first, as editcap puts it.
    for secrets in reader.takeSecrets() { writer.addTLSSecrets(secrets) }
    var interfaces: [UInt32: UInt32] = [:]
    for packet in packets {
        let interface: UInt32
        if let known = interfaces[packet.linkType] {
            interface = known
        } else {
            interface = UInt32(interfaces.count)
            interfaces[packet.linkType] = interface
            writer.addInterface(linkType: UInt16(truncatingIfNeeded: packet.linkType))
        }
        writer.add(
            packet.bytes,
            units: UInt64(packet.timestampNanos),
            interface: interface,
            originalLength: packet.originalLength
        )
    }
    try Data(writer.bytes).write(to: destination)
}
