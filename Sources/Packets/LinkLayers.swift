import Capture

/// Link layers: Ethernet II and 802.3 with VLAN tags, raw IP, BSD loopback, PPP. Each returns
/// (EtherType, offset of the network header); -1 when cut short, -2 when nested too deep.
extension PacketDecoder {
    /// Ethernet II with any stack of 802.1Q/802.1ad tags, and 802.3 with LLC/SNAP.
    @inline(__always)
    func ethernet(_ bytes: UnsafeRawBufferPointer, at start: Int) -> (Int, Int) {
        guard bytes.count >= start + 14 else { return (-1, 0) }
        var type = Int(bytes.bigEndianUInt16(at: start + 12))
        var offset = start + 14
        var depth = 0
        while type == EtherType.vlan || type == EtherType.serviceVLAN || type == EtherType.legacyServiceVLAN
            || type == EtherType.legacyServiceVLAN2
        {
            depth += 1
            guard depth <= PacketDecoder.maximumVLANDepth else { return (-2, 0) }
            guard bytes.count >= offset + 4 else { return (-1, 0) }
            type = Int(bytes.bigEndianUInt16(at: offset + 2))
            offset += 4
        }
        if type < 0x0600 {
            // 802.3 length field: IP only behind LLC/SNAP (AA AA 03, OUI 00 00 00).
            guard bytes.count >= offset + 8, bytes[offset] == 0xaa, bytes[offset + 1] == 0xaa,
                bytes[offset + 2] == 0x03,
                bytes[offset + 3] == 0, bytes[offset + 4] == 0, bytes[offset + 5] == 0
            else { return (0, offset) }
            return (Int(bytes.bigEndianUInt16(at: offset + 6)), offset + 8)
        }
        return (type, offset)
    }

    func rawIP(_ bytes: UnsafeRawBufferPointer) -> (Int, Int) {
        guard let first = bytes.first else { return (-1, 0) }
        switch first >> 4 {
        case 4: return (EtherType.ipv4, 0)
        case 6: return (EtherType.ipv6, 0)
        default: return (0, 0)
        }
    }

    /// BSD loopback: a 4-byte address family, in the capturing host's byte order (NULL)
    /// or network order (LOOP). AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30.
    func loopback(_ bytes: UnsafeRawBufferPointer, networkOrder: Bool) -> (Int, Int) {
        guard bytes.count >= 4 else { return (-1, 0) }
        var family = bytes.loadUnaligned(as: UInt32.self)
        if networkOrder { family = UInt32(bigEndian: family) } else if family > 0xffff { family = family.byteSwapped }
        switch family {
        case 2: return (EtherType.ipv4, 4)
        case 10, 24, 28, 30: return (EtherType.ipv6, 4)
        default: return (0, 4)
        }
    }

    /// PPP (RFC 1661), optionally with HDLC address and control bytes (FF 03) and a
    /// compressed one-byte protocol field.
    func ppp(_ bytes: UnsafeRawBufferPointer) -> (Int, Int) {
        var offset = 0
        if bytes.count >= 2, bytes[0] == 0xff, bytes[1] == 0x03 { offset = 2 }
        guard bytes.count > offset else { return (-1, 0) }
        let proto: Int
        if bytes[offset] & 1 == 1 {
            proto = Int(bytes[offset])
            offset += 1
        } else {
            guard bytes.count >= offset + 2 else { return (-1, 0) }
            proto = Int(bytes.bigEndianUInt16(at: offset))
            offset += 2
        }
        switch proto {
        case PPPProtocol.ipv4: return (EtherType.ipv4, offset)
        case PPPProtocol.ipv6: return (EtherType.ipv6, offset)
        default: return (0, offset)
        }
    }
}
