import Capture

/// Shims between the link and network layers: MPLS label stacks and PPPoE sessions.
extension PacketDecoder {
    /// MPLS label stacks (RFC 3032 2.1) and PPPoE sessions (RFC 2516 4) between the link and
    /// network layers. Returns the EtherType and offset of what they carry.
    @inline(never)
    mutating func shims(_ etherType: Int, _ bytes: UnsafeRawBufferPointer, at start: Int) -> (Int, Int) {
        var type = etherType
        var offset = start
        for _ in 0..<PacketDecoder.maximumTunnelDepth {
            switch type {
            case EtherType.mplsUnicast, EtherType.mplsMulticast:
                counters.tunnels.mpls += 1
                var labels = 0
                while true {
                    guard bytes.count >= offset + 4 else { return (-1, 0) }
                    let bottomOfStack = bytes[offset + 2] & 1 == 1
                    offset += 4
                    labels += 1
                    if bottomOfStack { break }
                    guard labels < PacketDecoder.maximumMPLSLabels else { return (-2, 0) }
                }
                // No protocol field: the first nibble tells (RFC 4385 2).
                guard bytes.count > offset else { return (-1, 0) }
                switch bytes[offset] >> 4 {
                case 4: return (EtherType.ipv4, offset)
                case 6: return (EtherType.ipv6, offset)
                case 0:
                    // Pseudowire control word (RFC 4385 3), then an Ethernet frame (RFC 4448 4.4).
                    (type, offset) = ethernet(bytes, at: offset + 4)
                    guard type >= 0 else { return (type, 0) }
                default: return (0, offset)
                }
            case EtherType.pppoeSession:
                // PPPoE session stage: version and type 0x11, code 0, session ID, length (RFC 2516 4),
                // then the PPP protocol field (RFC 1661 2).
                counters.tunnels.pppoe += 1
                guard bytes.count >= offset + 8 else { return (-1, 0) }
                guard bytes[offset] == 0x11, bytes[offset + 1] == 0 else { return (0, offset) }
                let proto = Int(bytes.bigEndianUInt16(at: offset + 6))
                offset += 8
                switch proto {
                case PPPProtocol.ipv4: return (EtherType.ipv4, offset)
                case PPPProtocol.ipv6: return (EtherType.ipv6, offset)
                case PPPProtocol.mplsUnicast, PPPProtocol.mplsMulticast: type = EtherType.mplsUnicast
                default: return (0, offset)
                }
            default:
                return (type, offset)
            }
        }
        return (-2, 0)
    }
}
