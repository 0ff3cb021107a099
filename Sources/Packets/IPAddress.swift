/// An IPv4 or IPv6 address, stored as 128 bits (IPv4 in its IPv4-mapped form) plus the family,
/// so it can key a flow table without allocation.
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public var isIPv6: Bool

    public init(high: UInt64, low: UInt64, isIPv6: Bool) {
        self.high = high
        self.low = low
        self.isIPv6 = isIPv6
    }

    /// From four bytes in network order.
    @inline(__always)
    public init(ipv4 networkOrder: UInt32) {
        high = 0
        low = 0xffff_0000_0000 | UInt64(UInt32(bigEndian: networkOrder))
        isIPv6 = false
    }

    /// Reads 4 or 16 bytes at `offset`.
    @inline(__always)
    init(ipv4At offset: Int, in bytes: UnsafeRawBufferPointer) {
        self.init(ipv4: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    init(ipv6At offset: Int, in bytes: UnsafeRawBufferPointer) {
        high = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
        isIPv6 = true
    }

    public var ipv4Value: UInt32 { UInt32(truncatingIfNeeded: low) }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.isIPv6 != b.isIPv6 { return !a.isIPv6 }
        return (a.high, a.low) < (b.high, b.low)
    }

    /// Dotted quad, or RFC 5952 text for IPv6 (lowercase, longest zero run as "::").
    /// "192.0.2.1:443", or "[2001:db8::1]:443" (RFC 3986 3.2.2: brackets around IPv6).
    public func endpoint(port: UInt16) -> String { isIPv6 ? "[\(description)]:\(port)" : "\(description):\(port)" }

    public var description: String {
        if !isIPv6 {
            // Dotted quad written digit by digit: at most 15 bytes, a small string (no allocation).
            return String(unsafeUninitializedCapacity: 15) { writeDottedQuad(into: $0) }
        }
        var groups = [UInt16](repeating: 0, count: 8)
        for i in 0..<4 {
            groups[i] = UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64(i)))
            groups[4 + i] = UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64(i)))
        }
        // RFC 5952 4.2.2/4.2.3: compress the longest run of two or more zero groups, the first on a tie.
        var bestStart = -1
        var bestLength = 1
        var i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLength {
                    bestStart = i
                    bestLength = j - i
                }
                i = j
            } else {
                i += 1
            }
        }
        var text = ""
        i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(groups[i], radix: 16)
            i += 1
        }
        // RFC 5952 5: IPv4-mapped addresses keep the dotted form.
        if high == 0, low >> 32 == 0xffff {
            let v = ipv4Value
            return "::ffff:\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        }
        return text
    }

    /// The text of `description` lent as UTF-8 bytes: an IPv4 address from the stack, with no
    /// String built (output formats write it straight into their buffers).
    public func withText<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        guard !isIPv6 else {
            var text = description
            return text.withUTF8(body)
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 15) { buffer in
            body(UnsafeBufferPointer(rebasing: buffer[0..<writeDottedQuad(into: buffer)]))
        }
    }

    /// "192.0.2.1" into `buffer` (at least 15 bytes); returns how many bytes it wrote.
    private func writeDottedQuad(into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let v = ipv4Value
        var written = 0
        buffer.writeDecimal(UInt8(truncatingIfNeeded: v >> 24), at: &written)
        for shift: UInt32 in stride(from: 16, through: 0, by: -8) {
            buffer[written] = UInt8(ascii: ".")
            written += 1
            buffer.writeDecimal(UInt8(truncatingIfNeeded: v >> shift), at: &written)
        }
        return written
    }

    /// Parses dotted-quad IPv4 or IPv6 text (with "::" and an embedded IPv4 tail). Nil if invalid.
    public init?(_ text: some StringProtocol) {
        if !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var value: UInt32 = 0
            for part in parts {
                guard !part.isEmpty, part.count <= 3, let byte = UInt8(part) else { return nil }
                value = value << 8 | UInt32(byte)
            }
            self.init(ipv4: value.bigEndian)
            return
        }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        let whole = String(text)
        var halves = [whole]
        if let gap = whole.firstRange(of: "::") {
            halves = [String(whole[..<gap.lowerBound]), String(whole[gap.upperBound...])]
            guard !halves[1].contains("::") else { return nil }
        }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains("."), let v4 = IPAddress(piece) {
                    out.append(UInt16(v4.ipv4Value >> 16))
                    out.append(UInt16(v4.ipv4Value & 0xffff))
                } else {
                    guard piece.count >= 1, piece.count <= 4, let g = UInt16(piece, radix: 16) else { return nil }
                    out.append(g)
                }
            }
            return out
        }
        guard let h = groups(String(halves[0])) else { return nil }
        head = h
        if halves.count == 2 {
            guard let t = groups(String(halves[1])), head.count + t.count <= 7 else { return nil }
            tail = t
        } else if head.count != 8 {
            return nil
        }
        let all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<4 { high = high << 16 | UInt64(all[i]) }
        for i in 4..<8 { low = low << 16 | UInt64(all[i]) }
        self.init(high: high, low: low, isIPv6: true)
    }
}

extension UnsafeMutableBufferPointer<UInt8> {
    /// Writes `value` in decimal (one to three digits) at `position` and moves it past them:
    /// text built in a string's own storage (`String(unsafeUninitializedCapacity:)`).
    @inline(__always)
    public func writeDecimal(_ value: UInt8, at position: inout Int) {
        if value >= 100 {
            self[position] = UInt8(ascii: "0") + value / 100
            position += 1
        }
        if value >= 10 {
            self[position] = UInt8(ascii: "0") + value / 10 % 10
            position += 1
        }
        self[position] = UInt8(ascii: "0") + value % 10
        position += 1
    }
}
