import Capture

/// Tunnels, kept out of line so the TCP path stays small: IP in IP, GRE and ERSPAN,
/// VXLAN and Geneve.
extension PacketDecoder {
    @inline(never)
    mutating func ipTunnel(
        _ proto: IPProtocol,
        _ bytes: UnsafeRawBufferPointer,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        if proto == .gre { return gre(bytes, timestamp: timestamp, depth: depth) }
        // IPv4 or IPv6 inside IP (RFC 2003, RFC 2473, RFC 4213)
        guard depth < PacketDecoder.maximumTunnelDepth else {
            return skipped(.tooDeep)
        }
        counters.tunnels.ipInIP += 1
        return network(
            proto == .ipInIP ? .ipv4 : .ipv6,
            bytes,
            at: 0,
            timestamp: timestamp,
            depth: depth + 1
        )
    }

    /// GRE (RFC 2784, key and sequence from RFC 2890), carrying IP, MPLS, Ethernet (0x6558) or ERSPAN.
    mutating func gre(_ bytes: UnsafeRawBufferPointer, timestamp: Int64, depth: Int) -> DecodedPacket {
        guard depth < PacketDecoder.maximumTunnelDepth else {
            return skipped(.tooDeep)
        }
        guard bytes.count >= 4 else {
            return skipped(.truncatedHeader)
        }
        let flags = bytes[0]
        // Version 1 is PPTP's enhanced GRE (RFC 2637 4.1); source routing (RFC 1701) is obsolete.
        guard bytes[1] & 0x07 == 0, flags & 0x40 == 0 else {
            return skipped(.otherTransport)
        }
        counters.tunnels.gre += 1
        let hasSequence = flags & 0x10 != 0
        var offset = 4
        if flags & 0x80 != 0 { offset += 4 }  // checksum and reserved
        if flags & 0x20 != 0 { offset += 4 }  // key
        if hasSequence { offset += 4 }
        guard bytes.count >= offset else {
            return skipped(.truncatedHeader)
        }
        let carried = EtherType(rawValue: bytes.bigEndianUInt16(at: 2))
        switch carried {
        case .ipv4, .ipv6, .mplsUnicast, .mplsMulticast:
            return network(carried, bytes, at: offset, timestamp: timestamp, depth: depth + 1)
        case .transparentEthernet:
            return innerEthernet(bytes, at: offset, timestamp: timestamp, depth: depth)
        case .erspanII:
            // ERSPAN type I has no header and no GRE sequence number; type II has an 8-byte header.
            counters.tunnels.erspan += 1
            return innerEthernet(bytes, at: hasSequence ? offset + 8 : offset, timestamp: timestamp, depth: depth)
        case .erspanIII:
            // ERSPAN type III: a 12-byte header, 8 more when the O flag announces the platform subheader.
            counters.tunnels.erspan += 1
            guard bytes.count >= offset + 12 else {
                return skipped(.truncatedHeader)
            }
            let subheader = bytes[offset + 11] & 1 == 1 ? 8 : 0
            return innerEthernet(bytes, at: offset + 12 + subheader, timestamp: timestamp, depth: depth)
        default:
            return skipped(.otherTransport)
        }
    }

    /// VXLAN (RFC 7348 5) and Geneve (RFC 8926 3.4) payloads; nil when the header does not fit,
    /// so the datagram is treated as ordinary UDP.
    @inline(never)
    mutating func udpTunnel(
        _ port: UInt16,
        _ bytes: UnsafeRawBufferPointer,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket? {
        guard bytes.count >= 8 else { return nil }
        if port == PacketDecoder.genevePort {
            // Version 0, option length in 4-byte words, protocol type as an EtherType.
            guard bytes[0] >> 6 == 0 else { return nil }
            let headerLength = 8 + Int(bytes[0] & 0x3f) * 4
            guard depth < PacketDecoder.maximumTunnelDepth else {
                return skipped(.tooDeep)
            }
            counters.tunnels.geneve += 1
            guard bytes.count >= headerLength else {
                return skipped(.truncatedHeader)
            }
            let proto = EtherType(rawValue: bytes.bigEndianUInt16(at: 2))
            if proto == .transparentEthernet {
                return innerEthernet(bytes, at: headerLength, timestamp: timestamp, depth: depth)
            }
            return network(proto, bytes, at: headerLength, timestamp: timestamp, depth: depth + 1)
        }
        // VXLAN: the I flag marks a valid network identifier; an Ethernet frame follows.
        guard bytes[0] & 0x08 != 0 else { return nil }
        guard depth < PacketDecoder.maximumTunnelDepth else {
            return skipped(.tooDeep)
        }
        counters.tunnels.vxlan += 1
        return innerEthernet(bytes, at: 8, timestamp: timestamp, depth: depth)
    }

    mutating func innerEthernet(
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        follow(ethernet(bytes, at: offset), bytes, timestamp: timestamp, depth: depth + 1)
    }
}
