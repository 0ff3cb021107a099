/// TCP header flags (RFC 9293 3.1).
public struct TCPFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

/// The TCP options of one segment (RFC 9293 3.2, RFC 7323), decoded on demand.
public struct TCPOptions: Sendable, Hashable {
    public var maximumSegmentSize: UInt16?
    public var windowScale: UInt8?
    public var sackPermitted = false
    public var timestampValue: UInt32?
    public var timestampEcho: UInt32?
    /// Option kinds in the order sent, e.g. [2, 4, 8, 1, 3]: part of a host's TCP fingerprint.
    public var layout: [UInt8] = []

    /// Options beyond this many are not recorded in `layout` (40 option bytes hold at most 40).
    static let maximumLayout = 40

    public init() {}

    /// Decodes the option bytes of a TCP header. Stops at end-of-option-list or a malformed option.
    public init(_ bytes: UnsafeRawBufferPointer) {
        var position = 0
        while position < bytes.count {
            let kind = bytes[position]
            if layout.count < TCPOptions.maximumLayout { layout.append(kind) }
            if kind == 0 { break }
            if kind == 1 {
                position += 1
                continue
            }
            guard position + 1 < bytes.count else { break }
            let length = Int(bytes[position + 1])
            guard length >= 2, position + length <= bytes.count else { break }
            switch (kind, length) {
            case (2, 4): maximumSegmentSize = UInt16(bytes[position + 2]) << 8 | UInt16(bytes[position + 3])
            case (3, 3): windowScale = bytes[position + 2]
            case (4, 2): sackPermitted = true
            case (8, 10):
                timestampValue = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: position + 2, as: UInt32.self))
                timestampEcho = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: position + 6, as: UInt32.self))
            default: break
            }
            position += length
        }
    }
}

/// One TCP segment as seen on the wire. `payload` points into the packet (or into the
/// defragmenter's buffer) and is valid only while the packet is being handled.
public struct TCPSegment {
    public var timestampNanos: Int64
    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequence: UInt32
    public var acknowledgment: UInt32
    public var flags: TCPFlags
    public var window: UInt16
    /// IPv4 TTL or IPv6 hop limit.
    public var timeToLive: UInt8
    /// The bytes captured; shorter than `payloadLength` when the snaplen cut the packet.
    public var payload: UnsafeRawBufferPointer
    /// Payload length on the wire, from the IP header.
    public var payloadLength: Int
    /// Raw option bytes; decode with `TCPOptions(segment.optionBytes)` when needed.
    public var optionBytes: UnsafeRawBufferPointer

    public var options: TCPOptions { TCPOptions(optionBytes) }

    public init(
        timestampNanos: Int64,
        source: IPAddress,
        destination: IPAddress,
        sourcePort: UInt16,
        destinationPort: UInt16,
        sequence: UInt32,
        acknowledgment: UInt32,
        flags: TCPFlags,
        window: UInt16,
        timeToLive: UInt8,
        payload: UnsafeRawBufferPointer,
        payloadLength: Int,
        optionBytes: UnsafeRawBufferPointer
    ) {
        self.timestampNanos = timestampNanos
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequence = sequence
        self.acknowledgment = acknowledgment
        self.flags = flags
        self.window = window
        self.timeToLive = timeToLive
        self.payload = payload
        self.payloadLength = payloadLength
        self.optionBytes = optionBytes
    }
}

/// One UDP datagram (RFC 768). Payload validity as for `TCPSegment`.
public struct UDPDatagram {
    public var timestampNanos: Int64
    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var timeToLive: UInt8
    public var payload: UnsafeRawBufferPointer
}

extension TCPOptions {
    /// The TSval of a timestamp option (RFC 7323 3), found without building a `TCPOptions`.
    @inline(__always)
    public static func timestampValue(in bytes: UnsafeRawBufferPointer) -> UInt32? {
        var position = 0
        while position + 1 < bytes.count {
            let kind = bytes[position]
            if kind == 0 { return nil }
            if kind == 1 {
                position += 1
                continue
            }
            let length = Int(bytes[position + 1])
            guard length >= 2, position + length <= bytes.count else { return nil }
            if kind == 8, length == 10 {
                return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: position + 2, as: UInt32.self))
            }
            position += length
        }
        return nil
    }
}
