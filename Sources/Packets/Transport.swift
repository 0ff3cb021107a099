import Capture

/// TCP and UDP headers, and the tunnels they lead to.
extension PacketDecoder {
    @inline(__always)
    mutating func transport(
        _ proto: UInt8,
        _ bytes: UnsafeRawBufferPointer,
        wireLength: Int,
        source: IPAddress,
        destination: IPAddress,
        ttl: UInt8,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        switch proto {
        case IPProtocol.tcp:
            // TCP header (RFC 9293 3.1)
            guard bytes.count >= 20 else {
                counters.truncatedHeaders += 1
                return .skipped
            }
            let headerLength = Int(bytes[12] >> 4) * 4
            guard headerLength >= 20, headerLength <= wireLength else {
                counters.malformedHeaders += 1
                return .skipped
            }
            guard bytes.count >= headerLength else {
                counters.truncatedHeaders += 1
                return .skipped
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
        case IPProtocol.udp:
            // UDP header (RFC 768)
            guard bytes.count >= 8 else {
                counters.truncatedHeaders += 1
                return .skipped
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
        case IPProtocol.ipInIP, IPProtocol.ipv6InIP, IPProtocol.gre:
            return ipTunnel(proto, bytes, timestamp: timestamp, depth: depth)
        default:
            counters.otherTransport += 1
            return .skipped
        }
    }
}
