/// Packets held back for a while before they are parsed: in a live capture followed by a key
/// log, a client writes a connection's secrets only as it makes the handshake, so the
/// server's encrypted records can arrive before the key log names them. One ring of bytes,
/// allocated once; a packet that does not fit pushes the oldest ones out early.
package struct PacketDelayLine: ~Copyable {
    /// Per packet: capture time, length on the wire, bytes kept (three 8-byte words).
    private static let headerBytes = 24

    private let storage: UnsafeMutableRawBufferPointer
    /// Where the oldest packet starts, and where the next one goes. Unwrapped, the packets
    /// lie in head..<tail; wrapped, in head..<wrapAt and then 0..<tail.
    private var head = 0
    private var tail = 0
    private var wrapAt = 0
    private var wrapped = false
    package private(set) var count = 0

    package init(capacityBytes: Int) {
        storage = .allocate(byteCount: max(capacityBytes, 1 << 16), alignment: 8)
    }

    deinit { storage.deallocate() }

    package var isEmpty: Bool { count == 0 }

    /// The capture time of the oldest packet held.
    package var oldestTimestampNanos: Int64? {
        isEmpty ? nil : storage.load(fromByteOffset: head, as: Int64.self)
    }

    private static func footprint(_ length: Int) -> Int { headerBytes + (length + 7) & ~7 }

    /// Holds a copy of `packet`; false when there is no room until older packets are taken
    /// (`takeOldest`), or none at all for a packet this large.
    package mutating func append(_ packet: CapturedPacket) -> Bool {
        let size = Self.footprint(packet.bytes.count)
        let at: Int
        if isEmpty {
            head = 0
            tail = 0
            wrapped = false
        }
        if wrapped {
            guard tail + size <= head else { return false }
            at = tail
        } else if tail + size <= storage.count {
            at = tail
        } else {
            // The end of the storage goes unused until the oldest packets before it are taken.
            guard size <= head else { return false }
            wrapAt = tail
            wrapped = true
            at = 0
        }
        storage.storeBytes(of: packet.timestampNanos, toByteOffset: at, as: Int64.self)
        storage.storeBytes(of: Int64(packet.originalLength), toByteOffset: at + 8, as: Int64.self)
        storage.storeBytes(of: Int64(packet.bytes.count), toByteOffset: at + 16, as: Int64.self)
        if let base = packet.bytes.baseAddress, !packet.bytes.isEmpty {
            (storage.baseAddress! + at + Self.headerBytes).copyMemory(from: base, byteCount: packet.bytes.count)
        }
        tail = at + size
        count += 1
        return true
    }

    /// Hands the oldest packet to `body` (its bytes valid only during the call) and lets it go.
    package mutating func takeOldest(linkType: LinkType, _ body: (CapturedPacket) -> Void) {
        guard !isEmpty else { return }
        let timestamp = storage.load(fromByteOffset: head, as: Int64.self)
        let originalLength = Int(storage.load(fromByteOffset: head + 8, as: Int64.self))
        let length = Int(storage.load(fromByteOffset: head + 16, as: Int64.self))
        let bytes = head + Self.headerBytes
        body(
            CapturedPacket(
                timestampNanos: timestamp,
                linkType: linkType,
                originalLength: originalLength,
                bytes: UnsafeRawBufferPointer(rebasing: storage[bytes..<(bytes + length)])
            )
        )
        head += Self.footprint(length)
        count -= 1
        if wrapped, head == wrapAt {
            head = 0
            wrapped = false
        }
    }
}
