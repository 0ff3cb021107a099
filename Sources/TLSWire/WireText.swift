/// Text from the wire (server names, ALPN protocol names, certificate attributes) as a
/// String that keeps every byte: valid UTF-8 as it is; each byte that is not part of valid
/// UTF-8, and each backslash, as `\xHH` (lower-case hex), the convention of Zeek's logs.
/// The mapping is one to one, so two different byte strings never give the same text and
/// the bytes can be recovered from it. RFC 6066 3 and RFC 7301 3.1 leave these fields
/// opaque; a real name holds neither a backslash nor invalid UTF-8, so it reads unchanged.
public enum WireText {
    /// The text for `bytes`. Allocates only the String itself.
    public static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String where Bytes.Index == Int {
        // ASCII without a backslash (names and protocols, nearly always): taken as it is,
        // by String's contiguous ASCII path (the generic validation costs ten times more).
        let plain =
            bytes.withContiguousStorageIfAvailable { isPlainASCII(UnsafeRawBufferPointer($0)) }
            ?? bytes.allSatisfy { $0 < 0x80 && $0 != UInt8(ascii: "\\") }
        if plain { return String(decoding: bytes, as: UTF8.self) }
        if !bytes.contains(UInt8(ascii: "\\")), let text = String(validating: bytes, as: UTF8.self) { return text }
        var scalars = String.UnicodeScalarView()
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var position = bytes.startIndex
        while true {
            switch parser.parseScalar(from: &iterator) {
            case let .valid(encoded):
                let scalar = Unicode.UTF8.decode(encoded)
                if scalar == "\\" { appendEscaped(0x5c, to: &scalars) } else { scalars.append(scalar) }
                position += encoded.count
            case let .error(length):
                for byte in bytes[position..<(position + length)] { appendEscaped(byte, to: &scalars) }
                position += length
            case .emptyInput:
                return String(scalars)
            }
        }
    }

    /// True when every byte is ASCII and none is a backslash; eight bytes at a time (a
    /// crafted 16 KB server name is read in 2,000 steps, not 16,000).
    package static func isPlainASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let highBits: UInt64 = 0x8080_8080_8080_8080
        let ones: UInt64 = 0x0101_0101_0101_0101
        let backslashes: UInt64 = 0x5c5c_5c5c_5c5c_5c5c
        var offset = 0
        while offset + 8 <= bytes.count {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            // A byte of 0x80 or more, or one that equals a backslash (a zero byte after the XOR).
            let matched = word ^ backslashes
            if (word | ((matched &- ones) & ~matched)) & highBits != 0 { return false }
            offset += 8
        }
        while offset < bytes.count {
            if bytes[offset] >= 0x80 || bytes[offset] == UInt8(ascii: "\\") { return false }
            offset += 1
        }
        return true
    }

    /// Every byte of `bytes` as `\xHH`.
    public static func escaped<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { appendEscaped(byte, to: &scalars) }
        return String(scalars)
    }

    private static func appendEscaped(_ byte: UInt8, to scalars: inout String.UnicodeScalarView) {
        let hex: [Unicode.Scalar] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
        scalars.append("\\")
        scalars.append("x")
        scalars.append(hex[Int(byte >> 4)])
        scalars.append(hex[Int(byte & 0xf)])
    }

    /// The bytes `text` stands for: the inverse of `decode`.
    public static func bytes(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        func nibble(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x30...0x39: byte - 0x30
            case 0x61...0x66: byte - 0x61 + 10
            default: nil
            }
        }
        while index < utf8.count {
            if utf8[index] == 0x5c, index + 3 < utf8.count, utf8[index + 1] == UInt8(ascii: "x"),
                let high = nibble(utf8[index + 2]), let low = nibble(utf8[index + 3])
            {
                out.append(high << 4 | low)
                index += 4
            } else {
                out.append(utf8[index])
                index += 1
            }
        }
        return out
    }
}
