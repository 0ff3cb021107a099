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

    public private(set) var counters = DecodeCounters()
    private let defragmenter = Defragmenter()

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
        case .ipv4: (network, offset) = (0x0800, 0)
        case .ipv6: (network, offset) = (0x86dd, 0)
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
    private mutating func network(
        _ etherType: Int,
        _ bytes: UnsafeRawBufferPointer,
        at start: Int,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        var network = etherType
        var offset = start
        if network == 0x8847 || network == 0x8848 || network == 0x8864 {
            (network, offset) = shims(network, bytes, at: start)
        }
        switch network {
        case 0x0800: return ipv4(bytes, at: offset, timestamp: timestamp, depth: depth)
        case 0x86dd: return ipv6(bytes, at: offset, timestamp: timestamp, depth: depth)
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

    // MARK: link layers. Each returns (EtherType, offset of the network header), -1 when cut short.

    /// Ethernet II with any stack of 802.1Q/802.1ad tags, and 802.3 with LLC/SNAP.
    @inline(__always)
    private func ethernet(_ bytes: UnsafeRawBufferPointer, at start: Int) -> (Int, Int) {
        guard bytes.count >= start + 14 else { return (-1, 0) }
        var type = Int(bytes.bigEndianUInt16(at: start + 12))
        var offset = start + 14
        var depth = 0
        while type == 0x8100 || type == 0x88a8 || type == 0x9100 || type == 0x9200 {
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

    private func rawIP(_ bytes: UnsafeRawBufferPointer) -> (Int, Int) {
        guard let first = bytes.first else { return (-1, 0) }
        switch first >> 4 {
        case 4: return (0x0800, 0)
        case 6: return (0x86dd, 0)
        default: return (0, 0)
        }
    }

    /// BSD loopback: a 4-byte address family, in the capturing host's byte order (NULL)
    /// or network order (LOOP). AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30.
    private func loopback(_ bytes: UnsafeRawBufferPointer, networkOrder: Bool) -> (Int, Int) {
        guard bytes.count >= 4 else { return (-1, 0) }
        var family = bytes.loadUnaligned(as: UInt32.self)
        if networkOrder { family = UInt32(bigEndian: family) } else if family > 0xffff { family = family.byteSwapped }
        switch family {
        case 2: return (0x0800, 4)
        case 10, 24, 28, 30: return (0x86dd, 4)
        default: return (0, 4)
        }
    }

    /// PPP (RFC 1661), optionally with HDLC address and control bytes (FF 03) and a
    /// compressed one-byte protocol field.
    private func ppp(_ bytes: UnsafeRawBufferPointer) -> (Int, Int) {
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
        case 0x21: return (0x0800, offset)
        case 0x57: return (0x86dd, offset)
        default: return (0, offset)
        }
    }

    /// MPLS label stacks (RFC 3032 2.1) and PPPoE sessions (RFC 2516 4) between the link and
    /// network layers. Returns the EtherType and offset of what they carry.
    @inline(never)
    private mutating func shims(_ etherType: Int, _ bytes: UnsafeRawBufferPointer, at start: Int) -> (Int, Int) {
        var type = etherType
        var offset = start
        for _ in 0..<PacketDecoder.maximumTunnelDepth {
            switch type {
            case 0x8847, 0x8848:
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
                case 4: return (0x0800, offset)
                case 6: return (0x86dd, offset)
                case 0:
                    // Pseudowire control word (RFC 4385 3), then an Ethernet frame (RFC 4448 4.4).
                    (type, offset) = ethernet(bytes, at: offset + 4)
                    guard type >= 0 else { return (type, 0) }
                default: return (0, offset)
                }
            case 0x8864:
                // PPPoE session stage: version and type 0x11, code 0, session ID, length (RFC 2516 4),
                // then the PPP protocol field (RFC 1661 2).
                counters.tunnels.pppoe += 1
                guard bytes.count >= offset + 8 else { return (-1, 0) }
                guard bytes[offset] == 0x11, bytes[offset + 1] == 0 else { return (0, offset) }
                let proto = bytes.bigEndianUInt16(at: offset + 6)
                offset += 8
                switch proto {
                case 0x0021: return (0x0800, offset)
                case 0x0057: return (0x86dd, offset)
                case 0x0281, 0x0283: type = 0x8847  // MPLS over PPP (RFC 3032 4.3)
                default: return (0, offset)
                }
            default:
                return (type, offset)
            }
        }
        return (-2, 0)
    }

    // MARK: IP

    /// IPv4 header (RFC 791 3.1). Options are skipped by IHL; fragments go to the defragmenter.
    @inline(__always)
    private mutating func ipv4(
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        guard bytes.count >= offset + 20 else {
            counters.truncatedHeaders += 1
            return .skipped
        }
        let versionIHL = bytes[offset]
        let headerLength = Int(versionIHL & 0x0f) * 4
        guard versionIHL >> 4 == 4, headerLength >= 20 else {
            counters.malformedHeaders += 1
            return .skipped
        }
        guard bytes.count >= offset + headerLength else {
            counters.truncatedHeaders += 1
            return .skipped
        }
        var totalLength = Int(bytes.bigEndianUInt16(at: offset + 2))
        // A zero total length is what TCP segmentation offload leaves in captures taken on the sender.
        if totalLength == 0 { totalLength = bytes.count - offset }
        guard totalLength >= headerLength else {
            counters.malformedHeaders += 1
            return .skipped
        }
        let fragmentField = bytes.bigEndianUInt16(at: offset + 6)
        let ttl = bytes[offset + 8]
        let proto = bytes[offset + 9]
        let source = IPAddress(ipv4At: offset + 12, in: bytes)
        let destination = IPAddress(ipv4At: offset + 16, in: bytes)
        let payloadStart = offset + headerLength
        let wireLength = totalLength - headerLength
        let capturedEnd = min(bytes.count, offset + totalLength)
        let moreFragments = fragmentField & 0x2000 != 0
        let fragmentOffset = Int(fragmentField & 0x1fff) * 8
        if moreFragments || fragmentOffset != 0 {
            counters.ipFragments += 1
            let key = Defragmenter.Key(
                source: source,
                destination: destination,
                identification: UInt32(bytes.bigEndianUInt16(at: offset + 4)),
                proto: proto
            )
            let fragment = UnsafeRawBufferPointer(rebasing: bytes[payloadStart..<capturedEnd])
            guard capturedEnd - payloadStart == wireLength else {
                counters.droppedFragments += 1
                return .skipped
            }
            let outcome = defragmenter.add(
                fragment,
                at: fragmentOffset,
                isLast: !moreFragments,
                key: key,
                timestamp: timestamp
            )
            counters.droppedFragments += defragmenter.takeDiscarded()
            switch outcome {
            case .incomplete: return .skipped
            case .dropped:
                counters.droppedFragments += 1
                return .skipped
            case let .complete(datagram):
                counters.reassembledDatagrams += 1
                return transport(
                    proto,
                    datagram,
                    wireLength: datagram.count,
                    source: source,
                    destination: destination,
                    ttl: ttl,
                    timestamp: timestamp,
                    depth: depth
                )
            }
        }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[payloadStart..<max(payloadStart, capturedEnd)])
        return transport(
            proto,
            payload,
            wireLength: wireLength,
            source: source,
            destination: destination,
            ttl: ttl,
            timestamp: timestamp,
            depth: depth
        )
    }

    /// IPv6 header (RFC 8200 3) and its extension header chain (4). Fragments go to the defragmenter.
    private mutating func ipv6(
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        guard bytes.count >= offset + 40 else {
            counters.truncatedHeaders += 1
            return .skipped
        }
        guard bytes[offset] >> 4 == 6 else {
            counters.malformedHeaders += 1
            return .skipped
        }
        var payloadLength = Int(bytes.bigEndianUInt16(at: offset + 4))
        var next = bytes[offset + 6]
        let hopLimit = bytes[offset + 7]
        let source = IPAddress(ipv6At: offset + 8, in: bytes)
        let destination = IPAddress(ipv6At: offset + 24, in: bytes)
        // Zero means a jumbogram (RFC 2675) or an offloaded segment: take what was captured.
        if payloadLength == 0 { payloadLength = bytes.count - offset - 40 }
        let end = offset + 40 + payloadLength
        let capturedEnd = min(bytes.count, end)
        var position = offset + 40
        var fragment: (offset: Int, more: Bool, id: UInt32)?
        var headers = 0
        extensionLoop: while true {
            switch next {
            case 0, 43, 60, 135, 139, 140:  // hop-by-hop, routing, destination options, mobility, HIP, shim6
                guard capturedEnd >= position + 8 else {
                    counters.truncatedHeaders += 1
                    return .skipped
                }
                let length = (Int(bytes[position + 1]) + 1) * 8
                next = bytes[position]
                position += length
            case 44:  // fragment header: next, reserved, offset/flags, identification
                guard capturedEnd >= position + 8 else {
                    counters.truncatedHeaders += 1
                    return .skipped
                }
                let field = bytes.bigEndianUInt16(at: position + 2)
                fragment = (Int(field & 0xfff8), field & 1 != 0, bytes.bigEndianUInt32(at: position + 4))
                next = bytes[position]
                position += 8
            case 51:  // authentication header: length in 4-byte units minus 2 (RFC 4302 2.2)
                guard capturedEnd >= position + 8 else {
                    counters.truncatedHeaders += 1
                    return .skipped
                }
                let length = (Int(bytes[position + 1]) + 2) * 4
                next = bytes[position]
                position += length
            default:
                break extensionLoop
            }
            headers += 1
            guard headers <= PacketDecoder.maximumIPv6ExtensionHeaders else {
                counters.tooDeep += 1
                return .skipped
            }
            guard position <= end else {
                counters.malformedHeaders += 1
                return .skipped
            }
            if fragment != nil, fragment!.offset != 0 { break }  // later fragments carry no further headers
        }
        guard position <= capturedEnd else {
            counters.truncatedHeaders += 1
            return .skipped
        }
        if let fragment, fragment.more || fragment.offset != 0 {
            counters.ipFragments += 1
            guard capturedEnd == end else {
                counters.droppedFragments += 1
                return .skipped
            }
            let key = Defragmenter.Key(
                source: source,
                destination: destination,
                identification: fragment.id,
                proto: next
            )
            let piece = UnsafeRawBufferPointer(rebasing: bytes[position..<end])
            let outcome = defragmenter.add(
                piece,
                at: fragment.offset,
                isLast: !fragment.more,
                key: key,
                timestamp: timestamp
            )
            counters.droppedFragments += defragmenter.takeDiscarded()
            switch outcome {
            case .incomplete: return .skipped
            case .dropped:
                counters.droppedFragments += 1
                return .skipped
            case let .complete(datagram):
                counters.reassembledDatagrams += 1
                return transport(
                    key.proto,
                    datagram,
                    wireLength: datagram.count,
                    source: source,
                    destination: destination,
                    ttl: hopLimit,
                    timestamp: timestamp,
                    depth: depth
                )
            }
        }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[position..<capturedEnd])
        return transport(
            next,
            payload,
            wireLength: end - position,
            source: source,
            destination: destination,
            ttl: hopLimit,
            timestamp: timestamp,
            depth: depth
        )
    }

    // MARK: transport

    @inline(__always)
    private mutating func transport(
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
        case 6:
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
        case 17:
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
        case 4, 41, 47:
            return ipTunnel(proto, bytes, timestamp: timestamp, depth: depth)
        default:
            counters.otherTransport += 1
            return .skipped
        }
    }

    // MARK: tunnels (kept out of line: the TCP path stays small)

    @inline(never)
    private mutating func ipTunnel(
        _ proto: UInt8,
        _ bytes: UnsafeRawBufferPointer,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        if proto == 47 { return gre(bytes, timestamp: timestamp, depth: depth) }
        // IPv4 or IPv6 inside IP (RFC 2003, RFC 2473, RFC 4213)
        guard depth < PacketDecoder.maximumTunnelDepth else {
            counters.tooDeep += 1
            return .skipped
        }
        counters.tunnels.ipInIP += 1
        return network(proto == 4 ? 0x0800 : 0x86dd, bytes, at: 0, timestamp: timestamp, depth: depth + 1)
    }

    /// GRE (RFC 2784, key and sequence from RFC 2890), carrying IP, MPLS, Ethernet (0x6558) or ERSPAN.
    private mutating func gre(_ bytes: UnsafeRawBufferPointer, timestamp: Int64, depth: Int) -> DecodedPacket {
        guard depth < PacketDecoder.maximumTunnelDepth else {
            counters.tooDeep += 1
            return .skipped
        }
        guard bytes.count >= 4 else {
            counters.truncatedHeaders += 1
            return .skipped
        }
        let flags = bytes[0]
        // Version 1 is PPTP's enhanced GRE (RFC 2637 4.1); source routing (RFC 1701) is obsolete.
        guard bytes[1] & 0x07 == 0, flags & 0x40 == 0 else {
            counters.otherTransport += 1
            return .skipped
        }
        counters.tunnels.gre += 1
        let hasSequence = flags & 0x10 != 0
        var offset = 4
        if flags & 0x80 != 0 { offset += 4 }  // checksum and reserved
        if flags & 0x20 != 0 { offset += 4 }  // key
        if hasSequence { offset += 4 }
        guard bytes.count >= offset else {
            counters.truncatedHeaders += 1
            return .skipped
        }
        switch bytes.bigEndianUInt16(at: 2) {
        case 0x0800: return network(0x0800, bytes, at: offset, timestamp: timestamp, depth: depth + 1)
        case 0x86dd: return network(0x86dd, bytes, at: offset, timestamp: timestamp, depth: depth + 1)
        case 0x8847: return network(0x8847, bytes, at: offset, timestamp: timestamp, depth: depth + 1)
        case 0x8848: return network(0x8848, bytes, at: offset, timestamp: timestamp, depth: depth + 1)
        case 0x6558:
            return innerEthernet(bytes, at: offset, timestamp: timestamp, depth: depth)
        case 0x88be:
            // ERSPAN type I has no header and no GRE sequence number; type II has an 8-byte header.
            counters.tunnels.erspan += 1
            return innerEthernet(bytes, at: hasSequence ? offset + 8 : offset, timestamp: timestamp, depth: depth)
        case 0x22eb:
            // ERSPAN type III: a 12-byte header, 8 more when the O flag announces the platform subheader.
            counters.tunnels.erspan += 1
            guard bytes.count >= offset + 12 else {
                counters.truncatedHeaders += 1
                return .skipped
            }
            let subheader = bytes[offset + 11] & 1 == 1 ? 8 : 0
            return innerEthernet(bytes, at: offset + 12 + subheader, timestamp: timestamp, depth: depth)
        default:
            counters.otherTransport += 1
            return .skipped
        }
    }

    /// VXLAN (RFC 7348 5) and Geneve (RFC 8926 3.4) payloads; nil when the header does not fit,
    /// so the datagram is treated as ordinary UDP.
    @inline(never)
    private mutating func udpTunnel(
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
                counters.tooDeep += 1
                return .skipped
            }
            counters.tunnels.geneve += 1
            guard bytes.count >= headerLength else {
                counters.truncatedHeaders += 1
                return .skipped
            }
            let proto = Int(bytes.bigEndianUInt16(at: 2))
            if proto == 0x6558 { return innerEthernet(bytes, at: headerLength, timestamp: timestamp, depth: depth) }
            return network(proto, bytes, at: headerLength, timestamp: timestamp, depth: depth + 1)
        }
        // VXLAN: the I flag marks a valid network identifier; an Ethernet frame follows.
        guard bytes[0] & 0x08 != 0 else { return nil }
        guard depth < PacketDecoder.maximumTunnelDepth else {
            counters.tooDeep += 1
            return .skipped
        }
        counters.tunnels.vxlan += 1
        return innerEthernet(bytes, at: 8, timestamp: timestamp, depth: depth)
    }

    private mutating func innerEthernet(
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        let (network, inner) = ethernet(bytes, at: offset)
        return self.network(network, bytes, at: inner, timestamp: timestamp, depth: depth + 1)
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
