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
public struct PacketDecoder: ~Copyable {
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
        let link: LinkOutcome
        switch linkType {
        case .ethernet: link = ethernet(bytes, at: 0)
        case .linuxSLL: link = linuxCooked(bytes, version2: false)
        case .linuxSLL2: link = linuxCooked(bytes, version2: true)
        case .raw, .rawBSD, .rawOpenBSD: link = rawIP(bytes)
        case .ipv4: link = .network(.ipv4, at: 0)
        case .ipv6: link = .network(.ipv6, at: 0)
        case .null: link = loopback(bytes, networkOrder: false)
        case .loop: link = loopback(bytes, networkOrder: true)
        case .ppp, .pppHDLC: link = ppp(bytes)
        case .ciscoHDLC: link = ciscoHDLC(bytes)
        default:
            counters.unsupportedLinkTypes[linkType.rawValue, default: 0] += 1
            return .skipped
        }
        return follow(link, bytes, timestamp: packet.timestampNanos, depth: 0)
    }

    /// The network layer a link layer or shim found, or the count of why there is none.
    @inline(__always)
    mutating func follow(
        _ link: LinkOutcome,
        _ bytes: UnsafeRawBufferPointer,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        switch link {
        case let .network(etherType, offset): network(etherType, bytes, at: offset, timestamp: timestamp, depth: depth)
        case .truncated: skipped(.truncatedHeader)
        case .tooDeep: skipped(.tooDeep)
        case .notIP: skipped(.notIP)
        }
    }

    /// The network layer named by an EtherType, after unwrapping MPLS and PPPoE shims.
    @inline(__always)
    mutating func network(
        _ etherType: EtherType,
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        switch etherType {
        case .ipv4: return ipv4(bytes, at: offset, timestamp: timestamp, depth: depth)
        case .ipv6: return ipv6(bytes, at: offset, timestamp: timestamp, depth: depth)
        case .mplsUnicast, .mplsMulticast, .pppoeSession:
            switch shims(etherType, bytes, at: offset) {
            case let .network(.ipv4, inner): return ipv4(bytes, at: inner, timestamp: timestamp, depth: depth)
            case let .network(.ipv6, inner): return ipv6(bytes, at: inner, timestamp: timestamp, depth: depth)
            case .network: return skipped(.notIP)
            case .truncated: return skipped(.truncatedHeader)
            case .tooDeep: return skipped(.tooDeep)
            case .notIP: return skipped(.notIP)
            }
        default: return skipped(.notIP)
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
