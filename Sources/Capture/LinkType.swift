/// A LINKTYPE_ value from a capture file header or pcapng interface block
/// (https://www.tcpdump.org/linktypes.html). Open: unknown values survive and are counted.
public struct LinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let null = LinkType(rawValue: 0)  // BSD loopback, host-order family
    public static let ethernet = LinkType(rawValue: 1)
    public static let ppp = LinkType(rawValue: 9)
    public static let rawOpenBSD = LinkType(rawValue: 12)  // DLT_RAW on some systems
    public static let rawBSD = LinkType(rawValue: 14)
    public static let pppHDLC = LinkType(rawValue: 50)
    public static let ciscoHDLC = LinkType(rawValue: 104)  // Cisco HDLC framing
    public static let raw = LinkType(rawValue: 101)
    public static let loop = LinkType(rawValue: 108)  // OpenBSD loopback, network-order family
    public static let linuxSLL = LinkType(rawValue: 113)
    public static let ipv4 = LinkType(rawValue: 228)
    public static let ipv6 = LinkType(rawValue: 229)
    public static let linuxSLL2 = LinkType(rawValue: 276)

    public var description: String {
        switch self {
        case .null: "NULL"
        case .ethernet: "EN10MB"
        case .ppp: "PPP"
        case .pppHDLC: "PPP_HDLC"
        case .ciscoHDLC: "C_HDLC"
        case .raw, .rawBSD, .rawOpenBSD: "RAW"
        case .loop: "LOOP"
        case .linuxSLL: "LINUX_SLL"
        case .linuxSLL2: "LINUX_SLL2"
        case .ipv4: "IPV4"
        case .ipv6: "IPV6"
        default: "LINKTYPE_\(rawValue)"
        }
    }
}

/// One packet as read from a capture. The bytes belong to the reader and stay valid only
/// until the next read from the same reader: copy what must outlive that.
public struct CapturedPacket {
    /// Capture time, nanoseconds since the Unix epoch.
    public var timestampNanos: Int64
    public var linkType: LinkType
    /// Length on the wire; `bytes.count` is smaller when the snaplen cut the packet.
    public var originalLength: Int
    public var bytes: UnsafeRawBufferPointer
    /// Which of the inputs this packet came from (index into the input list).
    public var inputIndex: Int

    public init(
        timestampNanos: Int64,
        linkType: LinkType,
        originalLength: Int,
        bytes: UnsafeRawBufferPointer,
        inputIndex: Int = 0
    ) {
        self.timestampNanos = timestampNanos
        self.linkType = linkType
        self.originalLength = originalLength
        self.bytes = bytes
        self.inputIndex = inputIndex
    }
}
