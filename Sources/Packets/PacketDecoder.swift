import Capture

/// The outcome of decoding one packet down to its transport header.
public enum DecodedPacket {
    case tcp(TCPSegment)
    case udp(UDPDatagram)
    /// Counted in `DecodeCounters`; nothing to pass on.
    case skipped
}

/// Decodes link → IP → TCP/UDP headers, one function per layer, with a table from link type to
/// decoder as in tcpdump. Holds the IP fragment table, so one decoder serves one packet stream.
public struct PacketDecoder {
    /// VLAN tags followed in one frame (802.1Q, 802.1ad, QinQ); real stacks hold two.
    static let maximumVLANDepth = 8
    /// IPv6 extension headers followed before giving up (RFC 8200 4.1 lists six kinds).
    static let maximumIPv6ExtensionHeaders = 16
    /// Tunnels unwrapped one inside another (GRE in VXLAN, MPLS over PPPoE); real networks nest two or three.
    static let maximumTunnelDepth = 6
    /// MPLS labels followed in one stack (RFC 3032 2.1); real stacks hold up to about five.
    static let maximumMPLSLabels = 8
    /// UDP destination ports of VXLAN: IANA's (RFC 7348 5) and the Linux kernel's default.
    static let vxlanPorts: (UInt16, UInt16) = (4789, 8472)
    /// UDP destination port of Geneve (RFC 8926 3.3).
    static let genevePort: UInt16 = 6081

    public internal(set) var counters = DecodeCounters()
    let defragmenter = Defragmenter()

    public init() {}

    /// Decodes one packet. The returned segment's payload is valid while `packet` is.
    @inline(__always)
    public mutating func decode(_ packet: CapturedPacket) -> DecodedPacket {
        counters.packets += 1
        let bytes = packet.bytes
        let linkType = packet.linkType
        let network: Int
        let offset: Int
        switch linkType {
        case .ethernet: (network, offset) = ethernet(bytes, at: 0)
        case .linuxSLL: (network, offset) = bytes.count >= 16 ? (Int(bytes.bigEndianUInt16(at: 14)), 16) : (-1, 0)
        case .linuxSLL2: (network, offset) = bytes.count >= 20 ? (Int(bytes.bigEndianUInt16(at: 0)), 20) : (-1, 0)
        case .raw, .rawBSD, .rawOpenBSD: (network, offset) = rawIP(bytes)
        case .ipv4: (network, offset) = (EtherType.ipv4, 0)
        case .ipv6: (network, offset) = (EtherType.ipv6, 0)
        case .null: (network, offset) = loopback(bytes, networkOrder: false)
        case .loop: (network, offset) = loopback(bytes, networkOrder: true)
        case .ppp, .pppHDLC: (network, offset) = ppp(bytes)
        default:
            counters.unsupportedLinkTypes[linkType.rawValue, default: 0] += 1
            return .skipped
        }
        return self.network(network, bytes, at: offset, timestamp: packet.timestampNanos, depth: 0)
    }

    /// The network layer named by an EtherType, after unwrapping MPLS and PPPoE shims.
    @inline(__always)
    mutating func network(
        _ etherType: Int,
        _ bytes: UnsafeRawBufferPointer,
        at start: Int,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        var network = etherType
        var offset = start
        if network == EtherType.mplsUnicast || network == EtherType.mplsMulticast || network == EtherType.pppoeSession {
            (network, offset) = shims(network, bytes, at: start)
        }
        switch network {
        case EtherType.ipv4: return ipv4(bytes, at: offset, timestamp: timestamp, depth: depth)
        case EtherType.ipv6: return ipv6(bytes, at: offset, timestamp: timestamp, depth: depth)
        case -1:
            counters.truncatedHeaders += 1
            return .skipped
        case -2:
            counters.tooDeep += 1
            return .skipped
        default:
            counters.nonIPFrames += 1
            return .skipped
        }
    }

    /// Fragments still waiting for their datagram to complete.
    public var pendingFragmentedDatagrams: Int { defragmenter.pendingCount }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func bigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    func bigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}
