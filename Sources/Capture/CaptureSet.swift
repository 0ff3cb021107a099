import HeapModule

/// Several capture files read as one capture, in timestamp order (tcpdump's rotated files,
/// or captures from several sensors). Inputs that cannot be opened are recorded, not thrown:
/// the run reports what could be read and names what could not.
package final class CaptureSet {
    package let readers: [CaptureFileReader]
    /// Inputs that could not be opened at all, with their error.
    package let failedInputs: [InputStats]
    private var heads: [CapturedPacket?]
    private var lastReturned = -1
    private let windows: [ReorderWindow]
    /// The reader of a single input, which `readers` keeps alive: used for every packet
    /// without the retain and release an array element (or an `unowned(unsafe)` one) costs.
    private let onlyReader: Unmanaged<CaptureFileReader>?

    /// `countsProgress`: reads count towards `ReadProgress.shared` (false for a second
    /// reader of the same files).
    package init(paths: [String], countsProgress: Bool = true) {
        var readers: [CaptureFileReader] = []
        var failed: [InputStats] = []
        for (index, path) in paths.enumerated() {
            do {
                readers.append(try CaptureFileReader(path: path, inputIndex: index, countsProgress: countsProgress))
            } catch {
                var stats = InputStats(name: path)
                stats.error = error
                failed.append(stats)
            }
        }
        self.readers = readers
        self.failedInputs = failed
        windows = readers.map { _ in ReorderWindow() }
        onlyReader = readers.count == 1 ? Unmanaged.passUnretained(readers[0]) : nil
        heads = []
        if readers.count > 1 { heads = readers.indices.map { pull($0) } }
    }

    @inline(__always)
    private func pull(_ index: Int) -> CapturedPacket? {
        let reader = readers[index]
        if reader.hasSeveralInterfaces || !windows[index].isEmpty { return windows[index].next(from: reader) }
        return reader.next()
    }

    /// For one pipe or FIFO input: `next()` gives nil after 250 ms without a packet, with
    /// `isWaiting` set, so a live pipe's reader can release what it holds and ask again.
    package func returnWhenWaiting() {
        if readers.count == 1 { readers[0].returnsWhenWaiting = true }
    }

    /// Whether an input read TLS secrets (pcapng Decryption Secrets Blocks) not yet taken.
    @inline(__always)
    package var hasPendingSecrets: Bool {
        if let onlyReader { return onlyReader._withUnsafeGuaranteedRef { $0.hasPendingSecrets } }
        for reader in readers where reader.hasPendingSecrets { return true }
        return false
    }

    /// The TLS key log text the inputs' Decryption Secrets Blocks held since the last call,
    /// each with the input it came from.
    package func takeSecrets() -> [(input: String, text: [UInt8])] {
        readers.flatMap { reader in reader.takeSecrets().map { (reader.name, $0) } }
    }

    /// Whether the last `next()` gave nil because the input had no bytes yet, not its end.
    package var isWaiting: Bool { readers.count == 1 && readers[0].isWaiting }

    /// The next packet across all inputs, earliest timestamp first (ties keep input order).
    /// Its bytes are valid until the next call.
    @inline(__always)
    package func next() -> CapturedPacket? {
        if let onlyReader {
            return onlyReader._withUnsafeGuaranteedRef { reader in
                reader.hasSeveralInterfaces ? pull(0) : reader.next()
            }
        }
        if lastReturned >= 0 { heads[lastReturned] = pull(lastReturned) }
        var best = -1
        var bestTime = Int64.max
        for index in heads.indices {
            if let head = heads[index], head.timestampNanos < bestTime {
                best = index
                bestTime = head.timestampNanos
            }
        }
        lastReturned = best
        return best >= 0 ? heads[best] : nil
    }

    /// The read buffer holding `bytes` of the packet `next()` returned last, for a worker to
    /// keep alive while it follows them in place; nil when they must be copied.
    package func pin(_ bytes: UnsafeRawBufferPointer) -> ReadBuffer? {
        if let onlyReader { return onlyReader._withUnsafeGuaranteedRef { $0.pin(bytes) } }
        return lastReturned >= 0 ? readers[lastReturned].pin(bytes) : nil
    }

    /// Per-input statistics, in the order the inputs were named.
    package var inputStats: [InputStats] {
        var all = readers.map(\.stats) + failedInputs
        let order = Dictionary(
            uniqueKeysWithValues: (readers.map(\.name) + failedInputs.map(\.name)).enumerated().map { ($1, $0) }
        )
        all.sort { (order[$0.name] ?? 0) < (order[$1.name] ?? 0) }
        return all
    }

    package var bytesRead: Int64 { readers.reduce(0) { $0 + $1.bytesRead } }
    package var totalBytes: Int64? {
        var total: Int64 = 0
        for reader in readers {
            guard let size = reader.totalBytes else { return nil }
            total += size
        }
        return total
    }
}

/// Restores timestamp order for a file whose packets are not written in it, such as a
/// pcapng from dumpcap on several interfaces (each interface's packets arrive in chunks).
/// Packets are copied and held for up to `windowNanos` of capture time or
/// `maximumBytes`; a packet delayed longer than that is released late, in file order.
final class ReorderWindow {
    static let windowNanos: Int64 = 2_000_000_000
    static let maximumBytes = 32 * 1024 * 1024

    private struct Held: Comparable {
        var packet: CapturedPacket
        var order: Int
        var storage: UnsafeMutableRawBufferPointer

        static func < (a: Held, b: Held) -> Bool {
            (a.packet.timestampNanos, a.order) < (b.packet.timestampNanos, b.order)
        }
        static func == (a: Held, b: Held) -> Bool {
            (a.packet.timestampNanos, a.order) == (b.packet.timestampNanos, b.order)
        }
    }

    private var heap = Heap<Held>()
    private var heldBytes = 0
    private var newest: Int64 = .min
    private var arrivals = 0
    private var released: UnsafeMutableRawBufferPointer?
    private var releasedCount = 0
    private var exhausted = false

    deinit {
        released?.deallocate()
        for held in heap.unordered { held.storage.deallocate() }
    }

    var isEmpty: Bool { heap.isEmpty && released == nil }

    func next(from reader: CaptureFileReader) -> CapturedPacket? {
        if let released { released.deallocate() }
        released = nil
        while !exhausted,
            heap.isEmpty
                || (newest &- heap.min!.packet.timestampNanos < ReorderWindow.windowNanos
                    && heldBytes < ReorderWindow.maximumBytes)
        {
            guard let packet = reader.next() else {
                exhausted = true
                break
            }
            let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(packet.bytes.count, 1), alignment: 8)
            if packet.bytes.count > 0 { storage.copyMemory(from: packet.bytes) }
            var copy = packet
            copy.bytes = UnsafeRawBufferPointer(start: storage.baseAddress, count: packet.bytes.count)
            newest = max(newest, packet.timestampNanos)
            heap.insert(Held(packet: copy, order: arrivals, storage: storage))
            arrivals += 1
            heldBytes += packet.bytes.count
        }
        guard let first = heap.popMin() else { return nil }
        heldBytes -= first.packet.bytes.count
        if first.order != releasedCount { reader.noteReordered() }
        releasedCount += 1
        released = first.storage
        return first.packet
    }
}
