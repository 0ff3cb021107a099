import Capture

/// Link layers: Ethernet II and 802.3 with VLAN tags, Linux cooked capture, raw IP, BSD
/// loopback, PPP, Cisco HDLC. Each says where the network header starts and what it is.
extension PacketDecoder {
    /// Ethernet II with any stack of 802.1Q/802.1ad tags, and 802.3 with LLC/SNAP.
    @inline(__always)
    func ethernet(_ bytes: UnsafeRawBufferPointer, at start: Int) -> LinkOutcome {
        guard bytes.count >= start + 14 else { return .truncated }
        var type = EtherType(rawValue: bytes.bigEndianUInt16(at: start + 12))
        var offset = start + 14
        var depth = 0
        while type.isVLANTag {
            depth += 1
            guard depth <= PacketDecoder.maximumVLANDepth else { return .tooDeep }
            guard bytes.count >= offset + 4 else { return .truncated }
            type = EtherType(rawValue: bytes.bigEndianUInt16(at: offset + 2))
            offset += 4
        }
        if type.isLength {
            // 802.3 length field: IP only behind LLC/SNAP (AA AA 03, OUI 00 00 00).
            guard bytes.count >= offset + 8, bytes[offset] == 0xaa, bytes[offset + 1] == 0xaa,
                bytes[offset + 2] == 0x03,
                bytes[offset + 3] == 0, bytes[offset + 4] == 0, bytes[offset + 5] == 0
            else { return .notIP }
            return .network(EtherType(rawValue: bytes.bigEndianUInt16(at: offset + 6)), at: offset + 8)
        }
        return .network(type, at: offset)
    }

    /// Linux cooked capture: SLL's 16-byte header ends with the protocol (an EtherType);
    /// SLL2's 20-byte header starts with it.
    func linuxCooked(_ bytes: UnsafeRawBufferPointer, version2: Bool) -> LinkOutcome {
        let headerLength = version2 ? 20 : 16
        guard bytes.count >= headerLength else { return .truncated }
        return .network(EtherType(rawValue: bytes.bigEndianUInt16(at: version2 ? 0 : 14)), at: headerLength)
    }

    func rawIP(_ bytes: UnsafeRawBufferPointer) -> LinkOutcome {
        guard let first = bytes.first else { return .truncated }
        return ipByVersion(first, at: 0)
    }

    /// IPv4 or IPv6 by the version nibble of `first`, for layers that carry no type.
    @inline(__always)
    func ipByVersion(_ first: UInt8, at offset: Int) -> LinkOutcome {
        switch first >> 4 {
        case 4: .network(.ipv4, at: offset)
        case 6: .network(.ipv6, at: offset)
        default: .notIP
        }
    }

    /// BSD loopback: a 4-byte address family, in the capturing host's byte order (NULL)
    /// or network order (LOOP). AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30.
    func loopback(_ bytes: UnsafeRawBufferPointer, networkOrder: Bool) -> LinkOutcome {
        guard bytes.count >= 4 else { return .truncated }
        var family = bytes.loadUnaligned(as: UInt32.self)
        if networkOrder { family = UInt32(bigEndian: family) } else if family > 0xffff { family = family.byteSwapped }
        switch family {
        case 2: return .network(.ipv4, at: 4)
        case 10, 24, 28, 30: return .network(.ipv6, at: 4)
        default: return .notIP
        }
    }

    /// Cisco HDLC: an address byte (0x0F unicast, 0x8F broadcast), a control byte (0) and
    /// an EtherType; SLARP and CDP frames carry no IP.
    func ciscoHDLC(_ bytes: UnsafeRawBufferPointer) -> LinkOutcome {
        guard bytes.count >= 4 else { return .truncated }
        return .network(EtherType(rawValue: bytes.bigEndianUInt16(at: 2)), at: 4)
    }

    /// PPP (RFC 1661), optionally with HDLC address and control bytes (FF 03) and a
    /// compressed one-byte protocol field.
    func ppp(_ bytes: UnsafeRawBufferPointer) -> LinkOutcome {
        var offset = 0
        if bytes.count >= 2, bytes[0] == 0xff, bytes[1] == 0x03 { offset = 2 }
        guard bytes.count > offset else { return .truncated }
        let proto: PPPProtocol
        if bytes[offset] & 1 == 1 {
            proto = PPPProtocol(rawValue: UInt16(bytes[offset]))
            offset += 1
        } else {
            guard bytes.count >= offset + 2 else { return .truncated }
            proto = PPPProtocol(rawValue: bytes.bigEndianUInt16(at: offset))
            offset += 2
        }
        switch proto {
        case .ipv4: return .network(.ipv4, at: offset)
        case .ipv6: return .network(.ipv6, at: offset)
        default: return .notIP
        }
    }
}
