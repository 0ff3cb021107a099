import Capture

/// IPv6 (RFC 8200) and its extension headers.
extension PacketDecoder {
    /// IPv6 header (RFC 8200 3) and its extension header chain (4). Fragments go to the defragmenter.
    mutating func ipv6(
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        guard bytes.count >= offset + 40 else {
            return skipped(.truncatedHeader)
        }
        guard bytes[offset] >> 4 == 6 else {
            return skipped(.malformedHeader)
        }
        var payloadLength = Int(bytes.bigEndianUInt16(at: offset + 4))
        var next = IPProtocol(rawValue: bytes[offset + 6])
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
            case _ where next.isGenericExtensionHeader:
                guard capturedEnd >= position + 8 else {
                    return skipped(.truncatedHeader)
                }
                let length = (Int(bytes[position + 1]) + 1) * 8
                next = IPProtocol(rawValue: bytes[position])
                position += length
            case .fragment:
                // Next header, reserved, offset and flags, identification (RFC 8200 4.5).
                guard capturedEnd >= position + 8 else {
                    return skipped(.truncatedHeader)
                }
                let field = bytes.bigEndianUInt16(at: position + 2)
                fragment = (Int(field & 0xfff8), field & 1 != 0, bytes.bigEndianUInt32(at: position + 4))
                next = IPProtocol(rawValue: bytes[position])
                position += 8
            case .authentication:
                // Length in 4-byte units minus 2 (RFC 4302 2.2).
                guard capturedEnd >= position + 8 else {
                    return skipped(.truncatedHeader)
                }
                let length = (Int(bytes[position + 1]) + 2) * 4
                next = IPProtocol(rawValue: bytes[position])
                position += length
            default:
                break extensionLoop
            }
            headers += 1
            guard headers <= PacketDecoder.maximumIPv6ExtensionHeaders else {
                return skipped(.tooDeep)
            }
            guard position <= end else {
                return skipped(.malformedHeader)
            }
            if fragment != nil, fragment!.offset != 0 { break }  // later fragments carry no further headers
        }
        guard position <= capturedEnd else {
            return skipped(.truncatedHeader)
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
            return defragment(
                piece,
                at: fragment.offset,
                isLast: !fragment.more,
                key: key,
                ttl: hopLimit,
                timestamp: timestamp,
                depth: depth
            )
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
}
