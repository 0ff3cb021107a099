/// A read position in a byte region, after swift-nio's `ByteBuffer` readers.
///
/// Every read returns nil when too few bytes remain, and then leaves the position where it
/// was. Length-prefixed reads return a cursor cut to the declared length, so parsing inside
/// it can never run past what the length allowed. Valid only inside the
/// `withUnsafeBytes` call that produced its region.
public struct ByteCursor {
    public let region: UnsafeRawBufferPointer
    public private(set) var position: Int
    public let end: Int

    @inline(__always)
    public init(_ region: UnsafeRawBufferPointer) {
        self.region = region
        position = 0
        end = region.count
    }

    @inline(__always)
    init(region: UnsafeRawBufferPointer, position: Int, end: Int) {
        self.region = region
        self.position = position
        self.end = end
    }

    public var remaining: Int { end - position }
    public var isEmpty: Bool { position >= end }

    /// The unread bytes, without consuming them.
    /// Where the unread bytes lie in `region`.
    public var range: Range<Int> { position..<end }

    public var unreadBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: region[position..<end]) }

    @inline(__always)
    public mutating func readUInt8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { position += 1 }
        return region[position]
    }

    @inline(__always)
    public mutating func readUInt16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { position += 2 }
        return UInt16(region[position]) << 8 | UInt16(region[position + 1])
    }

    @inline(__always)
    public mutating func readUInt24() -> Int? {
        guard remaining >= 3 else { return nil }
        defer { position += 3 }
        return Int(region[position]) << 16 | Int(region[position + 1]) << 8 | Int(region[position + 2])
    }

    @inline(__always)
    public mutating func readUInt32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        defer { position += 4 }
        return UInt32(region[position]) << 24 | UInt32(region[position + 1]) << 16
            | UInt32(region[position + 2]) << 8 | UInt32(region[position + 3])
    }

    /// The next `length` bytes as a cursor of their own; nil (position unchanged) if short.
    @inline(__always)
    public mutating func readSlice(length: Int) -> ByteCursor? {
        guard length >= 0, remaining >= length else { return nil }
        defer { position += length }
        return ByteCursor(region: region, position: position, end: position + length)
    }

    /// The next `length` bytes copied out; nil (position unchanged) if short.
    public mutating func readBytes(length: Int) -> [UInt8]? {
        guard let slice = readSlice(length: length) else { return nil }
        return Array(slice.unreadBytes)
    }

    /// Reads a length of `prefixBytes` bytes (1, 2 or 3, big-endian) and then that many bytes.
    /// Nil, with the position unchanged, when either is short.
    @inline(__always)
    public mutating func readLengthPrefixed(prefixBytes: Int) -> ByteCursor? {
        let saved = position
        let length: Int?
        switch prefixBytes {
        case 1: length = readUInt8().map(Int.init)
        case 2: length = readUInt16().map(Int.init)
        default: length = readUInt24()
        }
        guard let length, let slice = readSlice(length: length) else {
            position = saved
            return nil
        }
        return slice
    }

    @inline(__always)
    public func peekUInt8(at offset: Int = 0) -> UInt8? {
        guard remaining > offset else { return nil }
        return region[position + offset]
    }
}
