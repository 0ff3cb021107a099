import Capture

/// TCP and UDP headers, and the tunnels they lead to.
extension PacketDecoder {
    @inline(__always)
    mutating func transport(
        _ proto: IPProtocol,
        _ bytes: UnsafeRawBufferPointer,
        wireLength: Int,
        source: IPAddress,
        destination: IPAddress,
        ttl: UInt8,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        switch proto {
        case .tcp:
            // TCP header (RFC 9293 3.1)
            guard bytes.count >= 20 else {
                return skipped(.truncatedHeader)
            }
            let headerLength = Int(bytes[12] >> 4) * 4
            guard headerLength >= 20, headerLength <= wireLength else {
                return skipped(.malformedHeader)
            }
            guard bytes.count >= headerLength else {
                return skipped(.truncatedHeader)
            }
            counters.tcpSegments += 1
            return .tcp(
                TCPSegment(
                    timestampNanos: timestamp,
                    source: source,
                    destination: destination,
                    sourcePort: bytes.bigEndianUInt16(at: 0),
                    destinationPort: bytes.bigEndianUInt16(at: 2),
                    sequence: bytes.bigEndianUInt32(at: 4),
                    acknowledgment: bytes.bigEndianUInt32(at: 8),
                    flags: TCPFlags(rawValue: bytes[13]),
                    window: bytes.bigEndianUInt16(at: 14),
                    timeToLive: ttl,
                    payload: UnsafeRawBufferPointer(rebasing: bytes[headerLength...]),
                    payloadLength: wireLength - headerLength,
                    optionBytes: UnsafeRawBufferPointer(rebasing: bytes[20..<headerLength])
                )
            )
        case .udp:
            // UDP header (RFC 768)
            guard bytes.count >= 8 else {
                return skipped(.truncatedHeader)
            }
            let length = Int(bytes.bigEndianUInt16(at: 4))
            let end = length >= 8 ? min(length, bytes.count) : bytes.count
            let destinationPort = bytes.bigEndianUInt16(at: 2)
            if destinationPort == PacketDecoder.vxlanPorts.0 || destinationPort == PacketDecoder.vxlanPorts.1
                || destinationPort == PacketDecoder.genevePort,
                let inner = udpTunnel(
                    destinationPort,
                    UnsafeRawBufferPointer(rebasing: bytes[8..<end]),
                    timestamp: timestamp,
                    depth: depth
                )
            {
                return inner
            }
            counters.udpDatagrams += 1
            return .udp(
                UDPDatagram(
                    timestampNanos: timestamp,
                    source: source,
                    destination: destination,
                    sourcePort: bytes.bigEndianUInt16(at: 0),
                    destinationPort: bytes.bigEndianUInt16(at: 2),
                    timeToLive: ttl,
                    payload: UnsafeRawBufferPointer(rebasing: bytes[8..<end])
                )
            )
        case .ipInIP, .ipv6InIP, .gre:
            return ipTunnel(proto, bytes, timestamp: timestamp, depth: depth)
        default:
            return skipped(.otherTransport)
        }
    }
}
