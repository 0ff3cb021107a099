import Capture

/// Shims between the link and network layers: MPLS label stacks and PPPoE sessions.
extension PacketDecoder {
    /// MPLS label stacks (RFC 3032 2.1) and PPPoE sessions (RFC 2516 4) between the link and
    /// network layers: where what they carry starts, and what it is.
    @inline(never)
    mutating func shims(_ etherType: EtherType, _ bytes: UnsafeRawBufferPointer, at start: Int) -> LinkOutcome {
        var type = etherType
        var offset = start
        for _ in 0..<PacketDecoder.maximumTunnelDepth {
            switch type {
            case .mplsUnicast, .mplsMulticast:
                counters.tunnels.mpls += 1
                var labels = 0
                while true {
                    guard bytes.count >= offset + 4 else { return .truncated }
                    let bottomOfStack = bytes[offset + 2] & 1 == 1
                    offset += 4
                    labels += 1
                    if bottomOfStack { break }
                    guard labels < PacketDecoder.maximumMPLSLabels else { return .tooDeep }
                }
                // No protocol field: the first nibble tells (RFC 4385 2).
                guard bytes.count > offset else { return .truncated }
                guard bytes[offset] >> 4 == 0 else { return ipByVersion(bytes[offset], at: offset) }
                // Pseudowire control word (RFC 4385 3), then an Ethernet frame (RFC 4448 4.4).
                let inner = ethernet(bytes, at: offset + 4)
                guard case let .network(innerType, at: innerOffset) = inner else { return inner }
                (type, offset) = (innerType, innerOffset)
            case .pppoeSession:
                // PPPoE session stage: version and type 0x11, code 0, session ID, length (RFC 2516 4),
                // then the PPP protocol field (RFC 1661 2).
                counters.tunnels.pppoe += 1
                guard bytes.count >= offset + 8 else { return .truncated }
                guard bytes[offset] == 0x11, bytes[offset + 1] == 0 else { return .notIP }
                let proto = PPPProtocol(rawValue: bytes.bigEndianUInt16(at: offset + 6))
                offset += 8
                switch proto {
                case .ipv4: return .network(.ipv4, at: offset)
                case .ipv6: return .network(.ipv6, at: offset)
                case .mplsUnicast, .mplsMulticast: type = .mplsUnicast
                default: return .notIP
                }
            default:
                return .network(type, at: offset)
            }
        }
        return .tooDeep
    }
}
