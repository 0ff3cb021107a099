import Capture
import Foundation
import Handshakes
import Packets

/// Decoded segments and datagrams that the reader hands to one worker, copied into one
/// buffer. Each entry is a 16-byte header (kind, size), the decoded struct, then its option
/// and payload bytes, with the struct's pointers aimed at those copies. The buffer never
/// moves, so they stay valid until the worker has followed the batch and gives it back.
final class ForwardedBatch {
    /// Bytes of a batch: about a thousand handshake packets. A larger entry (a packet near
    /// the 256 KiB snaplen, a reassembled 64 KiB datagram) gets a batch of its own size.
    static let standardCapacity = 256 << 10
    /// Bytes of batches in flight to all workers together (with many workers each batch is
    /// smaller, down to `smallestCapacity`, so 16 MiB at `--jobs 64`): outside the memory
    /// budget's parts, in its fixed share.
    static let allWorkersInFlight = 8 << 20
    static let smallestCapacity = 64 << 10

    /// The batch size for `workers` workers (one of them the reader).
    static func capacity(forWorkers workers: Int) -> Int {
        let perBatch = allWorkersInFlight / (ForwardingQueue.batchesInFlight * max(workers - 1, 1))
        return min(max(perBatch, smallestCapacity), standardCapacity)
    }
    static let headerBytes = 16

    enum Kind: UInt32 {
        case tcp = 1
        case udp = 2
        case keyLog = 3
    }

    let base: UnsafeMutableRawPointer
    let capacity: Int
    /// Bytes written (the reader keeps its own cursor while it fills the batch).
    var used = 0
    /// Key log texts the input carries (pcapng), in order with the packets: a `keyLog`
    /// entry names one by index.
    private(set) var keyLogs: [(text: [UInt8], source: String)] = []
    /// The reader's buffers that entries point into (bytes not copied), held until the
    /// worker has followed the batch, and their bytes.
    private(set) var pins: [ReadBuffer] = []
    private(set) var pinnedBytes = 0
    /// Bytes of read buffers one batch holds at most; past it the batch is handed over.
    static let maximumPinnedBytes = 2 << 20
    /// Payloads shorter than this are copied: a pointer into a buffer held costs more.
    static let pinnedPayloadAtLeast = 512

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    func reset() {
        used = 0
        keyLogs.removeAll(keepingCapacity: true)
        pins.removeAll(keepingCapacity: true)
        pinnedBytes = 0
    }

    /// Holds `buffer` for entries that point into it.
    func pin(_ buffer: ReadBuffer) {
        pins.append(buffer)
        pinnedBytes += buffer.capacity
    }

    /// What an entry takes: header, struct and bytes, rounded up to 16.
    @inline(__always)
    static func entryBytes(structBytes: Int, extra: Int) -> Int { (headerBytes + structBytes + extra + 15) & ~15 }

    @inline(__always)
    static func entryBytes(_ segment: TCPSegment) -> Int {
        entryBytes(
            structBytes: MemoryLayout<TCPSegment>.stride,
            extra: segment.optionBytes.count + segment.payload.count
        )
    }

    @inline(__always)
    static func entryBytes(_ datagram: UDPDatagram) -> Int {
        entryBytes(structBytes: MemoryLayout<UDPDatagram>.stride, extra: datagram.payload.count)
    }

    /// Copies `bytes` to `destination`; the copy's buffer (empty buffers keep a valid start).
    @inline(__always)
    private static func copy(
        _ bytes: UnsafeRawBufferPointer,
        to destination: UnsafeMutableRawPointer
    )
        -> UnsafeRawBufferPointer
    {
        if let start = bytes.baseAddress, bytes.count > 0 {
            destination.copyMemory(from: start, byteCount: bytes.count)
        }
        return UnsafeRawBufferPointer(start: destination, count: bytes.count)
    }

    /// Writes an entry's header at `entry`; returns where its struct goes.
    @inline(__always)
    private static func header(
        _ kind: Kind,
        size: Int,
        index: Int = 0,
        at entry: UnsafeMutableRawPointer
    )
        -> UnsafeMutableRawPointer
    {
        entry.storeBytes(of: kind.rawValue, as: UInt32.self)
        entry.storeBytes(of: UInt32(truncatingIfNeeded: size), toByteOffset: 4, as: UInt32.self)
        entry.storeBytes(of: UInt64(truncatingIfNeeded: index), toByteOffset: 8, as: UInt64.self)
        return entry + headerBytes
    }

    /// Writes `value` at `cursor`, then copies of `first` and `second` after it, and lets
    /// `aim` point the stored value at those copies; returns where the next entry goes.
    /// Room is checked by the caller (`entryBytes`, which counts the same bytes).
    @inline(__always)
    private static func writeEntry<Value>(
        _ kind: Kind,
        _ value: Value,
        copying first: UnsafeRawBufferPointer,
        _ second: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        at cursor: UnsafeMutableRawPointer,
        aim: (inout Value, UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void
    ) -> UnsafeMutableRawPointer {
        let size = entryBytes(structBytes: MemoryLayout<Value>.stride, extra: first.count + second.count)
        let body = header(kind, size: size, at: cursor)
        let bytes = body + MemoryLayout<Value>.stride
        var copied = value
        aim(&copied, copy(first, to: bytes), copy(second, to: bytes + first.count))
        body.storeBytes(of: copied, as: Value.self)
        return cursor + size
    }

    /// Writes `segment` at `cursor` with its options and payload copied after it.
    @inline(__always)
    static func write(_ segment: TCPSegment, at cursor: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        writeEntry(.tcp, segment, copying: segment.optionBytes, segment.payload, at: cursor) {
            $0.optionBytes = $1
            $0.payload = $2
        }
    }

    /// What an entry whose bytes stay where they are (in a pinned buffer) takes.
    static let pinnedEntryBytes = entryBytes(structBytes: MemoryLayout<TCPSegment>.stride, extra: 0)

    /// Writes `segment` at `cursor` with its pointers as they are: its bytes are in a
    /// buffer the batch holds.
    @inline(__always)
    static func writePinned(_ segment: TCPSegment, at cursor: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        header(.tcp, size: pinnedEntryBytes, at: cursor).storeBytes(of: segment, as: TCPSegment.self)
        return cursor + pinnedEntryBytes
    }

    /// Writes `datagram` at `cursor` with its payload copied after it.
    @inline(__always)
    static func write(_ datagram: UDPDatagram, at cursor: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        writeEntry(.udp, datagram, copying: datagram.payload, at: cursor) { entry, payload, _ in entry.payload = payload
        }
    }

    /// False when there is no room.
    func append(keyLog text: [UInt8], source: String) -> Bool {
        guard Self.headerBytes <= capacity - used else { return false }
        _ = Self.header(.keyLog, size: Self.headerBytes, index: keyLogs.count, at: base + used)
        used += Self.headerBytes
        keyLogs.append((text, source))
        return true
    }

    /// One entry, its pointers into this batch.
    enum Entry {
        case tcp(TCPSegment)
        case udp(UDPDatagram)
        case keyLog(text: [UInt8], source: String)
    }

    /// Every entry in order.
    @inline(__always)
    func forEachEntry(_ body: (Entry) -> Void) {
        var position = 0
        while position < used {
            let entry = base + position
            let size = Int(entry.load(fromByteOffset: 4, as: UInt32.self))
            switch Kind(rawValue: entry.load(as: UInt32.self)) {
            case .tcp: body(.tcp((entry + Self.headerBytes).load(as: TCPSegment.self)))
            case .udp: body(.udp((entry + Self.headerBytes).load(as: UDPDatagram.self)))
            case .keyLog:
                let keyLog = keyLogs[Int(entry.load(fromByteOffset: 8, as: UInt64.self))]
                body(.keyLog(text: keyLog.text, source: keyLog.source))
            case nil: preconditionFailure("forwarded batch holds an unknown entry")
            }
            position += size
        }
    }

    /// Follows every entry in order.
    @inline(__always)
    func follow(into extractor: inout HandshakeExtractor, emit: (consuming HandshakeRecord) -> Void) {
        forEachEntry { entry in
            switch entry {
            case let .tcp(segment): extractor.follow(segment, emit: emit)
            case let .udp(datagram): extractor.follow(datagram, emit: emit)
            case let .keyLog(text, source): extractor.addKeyLog([text], source: source)
            }
        }
    }
}

/// Batches from the reader to one worker, at most `batchesInFlight` of them at once (memory
/// stays flat: 1 MiB per worker; with more than nine workers, smaller batches, at most 16 MiB
/// for the 63 others `--jobs 64` allows); the worker gives each back to be filled again.
final class ForwardingQueue: @unchecked Sendable {
    static let batchesInFlight = 4

    /// Bytes of each batch (`ForwardedBatch.capacity(forWorkers:)`).
    let batchCapacity: Int
    private let condition = NSCondition()
    private var ready: [ForwardedBatch] = []
    private var spare: [ForwardedBatch] = []
    private var allocated = 0
    private var closed = false

    init(batchCapacity: Int = ForwardedBatch.standardCapacity) { self.batchCapacity = batchCapacity }

    /// An empty batch with room for `bytes`, waiting while every batch is in flight.
    func emptyBatch(room bytes: Int) -> ForwardedBatch {
        condition.lock()
        defer { condition.unlock() }
        while allocated >= Self.batchesInFlight, spare.isEmpty { condition.wait() }
        if let batch = spare.popLast() {
            if batch.capacity >= bytes {
                batch.reset()
                return batch
            }
            allocated -= 1
        }
        allocated += 1
        return ForwardedBatch(capacity: max(batchCapacity, bytes))
    }

    func push(_ batch: ForwardedBatch) {
        condition.lock()
        ready.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    /// No more batches: the worker finishes once it has followed those queued.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next batch, waiting for it (after `beforeWaiting`); nil once closed and empty.
    func next(beforeWaiting: () -> Void) -> ForwardedBatch? {
        condition.lock()
        if ready.isEmpty, !closed {
            condition.unlock()
            beforeWaiting()
            condition.lock()
        }
        defer { condition.unlock() }
        while ready.isEmpty {
            if closed { return nil }
            condition.wait()
        }
        return ready.removeFirst()
    }

    /// A followed batch, to be filled again (one of its own size is let go).
    func giveBack(_ batch: ForwardedBatch) {
        // The reader may reuse the buffers it held as soon as they are let go.
        batch.reset()
        condition.lock()
        if batch.capacity == batchCapacity {
            spare.append(batch)
        } else {
            allocated -= 1
        }
        condition.broadcast()
        condition.unlock()
    }
}

/// The reader's side of `Extraction.runParallel`: decodes each packet once, follows the
/// flows that fall to worker 0 itself and copies the others' segments and datagrams into
/// their batches. The batches being filled are written through raw cursors, so a packet
/// costs no reference counting.
final class PacketForwarder {
    /// Worker `w`'s queue is `queues[w - 1]`.
    private let queues: [ForwardingQueue]
    private var filling: [ForwardedBatch?]
    private let choice: WorkerChoice
    /// Where worker `w`'s batch is written next (`cursors[w - 1]`), and where it ends; both nil
    /// before its first batch.
    private let cursors: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let ends: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// The read buffer the batch for `w` last pinned (its address), so a run of packets from
    /// one buffer pins it once.
    private let lastPinned: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// Where pinned bytes come from; nil: every entry is copied.
    private let captures: CaptureSet?

    init(_ queues: [ForwardingQueue], pinningIn captures: CaptureSet? = nil) {
        self.queues = queues
        self.captures = captures
        lastPinned = .allocate(capacity: max(queues.count, 1))
        lastPinned.initialize(repeating: nil, count: max(queues.count, 1))
        filling = Array(repeating: nil, count: queues.count)
        choice = WorkerChoice(among: queues.count + 1, firstShare: Self.readerShare(among: queues.count + 1))
        cursors = .allocate(capacity: max(queues.count, 1))
        cursors.initialize(repeating: nil, count: max(queues.count, 1))
        ends = .allocate(capacity: max(queues.count, 1))
        ends.initialize(repeating: nil, count: max(queues.count, 1))
    }

    deinit {
        cursors.deallocate()
        ends.deallocate()
        lastPinned.deallocate()
    }

    /// The share of flows the reader follows itself: a little less than the others', as it
    /// also reads and decodes every packet. Measured with two workers (interleaved runs):
    /// 0.45 beat 0.5 on both dense captures, 0.4 and 0.35 were slower on `dense.pcap`.
    static func readerShare(among workers: Int) -> Double { 0.9 / Double(max(workers, 1)) }

    @inline(__always)
    func process(
        _ packet: CapturedPacket,
        extractor: inout HandshakeExtractor,
        emit: (consuming HandshakeRecord) -> Void
    ) {
        switch extractor.decode(packet) {
        case let .tcp(segment):
            let worker = choice.worker(for: segment)
            guard worker > 0 else { return extractor.follow(segment, emit: emit) }
            if segment.payload.count >= ForwardedBatch.pinnedPayloadAtLeast, forwardPinned(segment, to: worker - 1) {
                return
            }
            let cursor = room(ForwardedBatch.entryBytes(segment), for: worker - 1)
            cursors[worker - 1] = ForwardedBatch.write(segment, at: cursor)
        case let .udp(datagram):
            let worker = choice.worker(for: datagram)
            guard worker > 0 else { return extractor.follow(datagram, emit: emit) }
            let cursor = room(ForwardedBatch.entryBytes(datagram), for: worker - 1)
            cursors[worker - 1] = ForwardedBatch.write(datagram, at: cursor)
        case .skipped:
            break
        }
    }

    /// Forwards a segment whose bytes stay in the reader's buffer, which the batch holds;
    /// false when they are not in it (reordered, reassembled): they are copied instead.
    @inline(__always)
    private func forwardPinned(_ segment: TCPSegment, to index: Int) -> Bool {
        guard let buffer = captures?.pin(segment.payload),
            segment.optionBytes.isEmpty || captures?.pin(segment.optionBytes) === buffer
        else { return false }
        let cursor = room(ForwardedBatch.pinnedEntryBytes, for: index)
        let address = Unmanaged.passUnretained(buffer).toOpaque()
        if lastPinned[index] != address {
            lastPinned[index] = address
            let batch = filling[index]!
            batch.pin(buffer)
            // A batch that holds enough buffers goes after this entry.
            if batch.pinnedBytes > ForwardedBatch.maximumPinnedBytes {
                ends[index] = cursor + ForwardedBatch.pinnedEntryBytes
            }
        }
        cursors[index] = ForwardedBatch.writePinned(segment, at: cursor)
        return true
    }

    /// Where an entry of `bytes` goes in the batch for `index`, handing over a full one.
    @inline(__always)
    private func room(_ bytes: Int, for index: Int) -> UnsafeMutableRawPointer {
        if let cursor = cursors[index], let end = ends[index], bytes <= end - cursor { return cursor }
        return newBatch(for: index, room: bytes)
    }

    /// Key log text found in the input: every worker opens its connections with it.
    func forward(keyLog text: [UInt8], source: String) {
        for index in queues.indices {
            if let batch = filling[index], let cursor = cursors[index] {
                batch.used = cursor - batch.base
                if batch.append(keyLog: text, source: source) {
                    cursors[index] = batch.base + batch.used
                    continue
                }
            }
            _ = newBatch(for: index, room: ForwardedBatch.headerBytes)
            let batch = filling[index]!
            _ = batch.append(keyLog: text, source: source)
            cursors[index] = batch.base + batch.used
        }
    }

    /// Hands over the batch being filled for `index` and starts a new one; its start.
    private func newBatch(for index: Int, room bytes: Int) -> UnsafeMutableRawPointer {
        handOver(index)
        let batch = queues[index].emptyBatch(room: bytes)
        filling[index] = batch
        cursors[index] = batch.base
        ends[index] = batch.base + batch.capacity
        lastPinned[index] = nil
        return batch.base
    }

    private func handOver(_ index: Int) {
        guard let full = filling[index], let cursor = cursors[index] else { return }
        full.used = cursor - full.base
        filling[index] = nil
        cursors[index] = nil
        ends[index] = nil
        lastPinned[index] = nil
        if full.used > 0 { queues[index].push(full) } else { queues[index].giveBack(full) }
    }

    /// Hands over what is left and tells the workers that no more comes.
    func finish() {
        for index in queues.indices {
            handOver(index)
            queues[index].close()
        }
    }
}
