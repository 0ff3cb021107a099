import Capture

/// IPv4 (RFC 791).
extension PacketDecoder {
    /// IPv4 header (RFC 791 3.1). Options are skipped by IHL; fragments go to the defragmenter.
    @inline(__always)
    mutating func ipv4(
        _ bytes: UnsafeRawBufferPointer,
        at offset: Int,
        timestamp: Int64,
        depth: Int
    ) -> DecodedPacket {
        guard bytes.count >= offset + 20 else {
            return skipped(.truncatedHeader)
        }
        let versionIHL = bytes[offset]
        let headerLength = Int(versionIHL & 0x0f) * 4
        guard versionIHL >> 4 == 4, headerLength >= 20 else {
            return skipped(.malformedHeader)
        }
        guard bytes.count >= offset + headerLength else {
            return skipped(.truncatedHeader)
        }
        var totalLength = Int(bytes.bigEndianUInt16(at: offset + 2))
        // A zero total length is what TCP segmentation offload leaves in captures taken on the sender.
        if totalLength == 0 { totalLength = bytes.count - offset }
        guard totalLength >= headerLength else {
            return skipped(.malformedHeader)
        }
        let fragmentField = bytes.bigEndianUInt16(at: offset + 6)
        let ttl = bytes[offset + 8]
        let proto = IPProtocol(rawValue: bytes[offset + 9])
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
            return defragment(
                fragment,
                at: fragmentOffset,
                isLast: !moreFragments,
                key: key,
                ttl: ttl,
                timestamp: timestamp,
                depth: depth
            )
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
}
