/// Several capture files read as one capture, in timestamp order (tcpdump's rotated files,
/// or captures from several sensors). Inputs that cannot be opened are recorded, not thrown:
/// the run reports what could be read and names what could not.
public final class CaptureSet {
    public let readers: [CaptureFileReader]
    /// Inputs that could not be opened at all, with their error.
    public let failedInputs: [InputStats]
    private var heads: [CapturedPacket?]
    private var lastReturned = -1

    public init(paths: [String]) {
        var readers: [CaptureFileReader] = []
        var failed: [InputStats] = []
        for (index, path) in paths.enumerated() {
            do {
                readers.append(try CaptureFileReader(path: path, inputIndex: index))
            } catch {
                var stats = InputStats(name: path)
                stats.error = error
                failed.append(stats)
            }
        }
        self.readers = readers
        self.failedInputs = failed
        heads = readers.count > 1 ? readers.map { $0.next() } : []
    }

    /// The next packet across all inputs, earliest timestamp first (ties keep input order).
    /// Its bytes are valid until the next call.
    @inline(__always)
    public func next() -> CapturedPacket? {
        if readers.count == 1 { return readers[0].next() }
        if lastReturned >= 0 { heads[lastReturned] = readers[lastReturned].next() }
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

    /// Per-input statistics, in the order the inputs were named.
    public var inputStats: [InputStats] {
        var all = readers.map(\.stats) + failedInputs
        let order = Dictionary(uniqueKeysWithValues: (readers.map(\.name) + failedInputs.map(\.name)).enumerated().map { ($1, $0) })
        all.sort { (order[$0.name] ?? 0) < (order[$1.name] ?? 0) }
        return all
    }

    public var bytesRead: Int64 { readers.reduce(0) { $0 + $1.bytesRead } }
    public var totalBytes: Int64? {
        var total: Int64 = 0
        for reader in readers {
            guard let size = reader.totalBytes else { return nil }
            total += size
        }
        return total
    }
}
