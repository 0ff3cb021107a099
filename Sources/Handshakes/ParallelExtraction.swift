import Capture
import Foundation
import Packets
import Reassembly

/// Records from one worker to the merging thread. Memory holds at most `capacity` records.
/// When it is full, a worker whose records the merge needs soon (workers sharing one file's
/// flows) waits; a worker far ahead of the merge (a later group of rotated files) writes
/// its records to a temporary file instead and goes on, so both cores stay busy and memory
/// stays flat whatever the files hold.
final class RecordChannel: @unchecked Sendable {
    /// Records a channel holds in memory before its worker waits or spills.
    static let capacity = 4096
    /// Records a worker hands over at a time; also the records of one spilled frame.
    static let batchSize = 256

    private let condition = NSCondition()
    private let capacity: Int
    /// Batches in memory, oldest first; records are moved out of them (left nil) as they go.
    private var batches: [RecordBatch] = []
    /// The next record of `batches[0]`.
    private var head = 0
    private var recordsInMemory = 0
    private var finished = false
    /// Frames written to `spill` and not yet read back; while any wait, later batches follow
    /// them there, so records keep their order.
    private var spilledFrames = 0
    private var spill: RecordSpillFile?
    /// Whether a full channel spills: set for a worker ahead of the merge, cleared when the
    /// temporary file cannot be made, written or read.
    private var spills: Bool
    /// Frames spilled over the channel's life (for tests and diagnostics).
    private(set) var framesSpilled = 0
    /// Records in frames written and not yet read back.
    private var spilledRecordsWaiting = 0
    /// Records that could not be read back from the temporary file (it was damaged or
    /// became unreadable): counted, not silently dropped.
    private(set) var recordsLost = 0
    /// The worker's side: its batch encoded outside the lock.
    private var writer = RecordSpillWriter()
    /// The merge's side: certificates shared again as they are read back.
    private var certificates = SpilledCertificates()
    /// The worker's statistics, set when it finishes.
    private(set) var statistics: ExtractionStatistics?
    /// Why the worker stopped early, when it did; the merge passes it on.
    private(set) var failure: CaptureError?

    /// Where the temporary file goes; TMPDIR when nil.
    private let spillDirectory: String?

    /// - Parameter spillsWhenFull: write to a temporary file instead of waiting.
    init(spillsWhenFull: Bool = false, capacity: Int = RecordChannel.capacity, spillDirectory: String? = nil) {
        spills = spillsWhenFull
        self.capacity = capacity
        self.spillDirectory = spillDirectory
    }

    func push(_ batch: consuming RecordBatch) {
        condition.lock()
        if spills, spilledFrames > 0 || recordsInMemory >= capacity {
            condition.unlock()
            if pushToSpill(batch) { return }
            condition.lock()
        }
        while recordsInMemory >= max(capacity, 1) || spilledFrames > 0 { condition.wait() }
        recordsInMemory += batch.count
        batches.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    /// False when no temporary file could be made or written: the worker waits from then on.
    private func pushToSpill(_ batch: RecordBatch) -> Bool {
        writer.reset()
        var count = batch.count
        writer.scalar("records", &count, .count)
        for record in batch.records { record?.spill(into: &writer) }
        condition.lock()
        defer { condition.unlock() }
        if spill == nil { spill = RecordSpillFile(directory: spillDirectory) }
        guard let spill, spill.append(writer.bytes) else {
            spills = false
            return false
        }
        spilledFrames += 1
        framesSpilled += 1
        spilledRecordsWaiting += batch.count
        condition.broadcast()
        return true
    }

    func finish(_ statistics: ExtractionStatistics, failure: CaptureError? = nil) {
        condition.lock()
        self.statistics = statistics
        self.failure = failure
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The time of the next record, waiting for one; nil when the worker has finished and
    /// nothing is left.
    func nextTimestamp() -> Int64? {
        condition.lock()
        defer { condition.unlock() }
        while recordsInMemory == 0 {
            if spilledFrames > 0 {
                refillFromSpill()
            } else if finished {
                return nil
            } else {
                condition.wait()
            }
        }
        return batches[0].times[head]
    }

    /// Moves the oldest spilled frame into memory. Called with the lock held and memory empty.
    private func refillFromSpill() {
        spilledFrames -= 1
        defer { condition.broadcast() }
        guard let frame = spill?.next() else {
            // Unreadable from here on: the worker waits instead of spilling again.
            recordsLost += spilledRecordsWaiting
            spilledRecordsWaiting = 0
            spilledFrames = 0
            spills = false
            return
        }
        var reader = RecordSpillReader(frame, certificates: certificates)
        var count = 0
        reader.scalar("records", &count, .count)
        spilledRecordsWaiting -= count
        var batch = RecordBatch(capacity: min(max(count, 0), RecordChannel.batchSize))
        for _ in 0..<count {
            guard let record = HandshakeRecord(spilled: &reader) else { break }
            batch.append(record)
        }
        certificates = reader.certificates
        recordsLost += count - batch.count
        if !batch.isEmpty {
            recordsInMemory += batch.count
            batches.append(batch)
        }
    }

    /// Moves the next record out; call after `nextTimestamp` returned a time.
    func pop() -> HandshakeRecord {
        condition.lock()
        defer { condition.unlock() }
        let record = batches[0].take(head)
        head += 1
        recordsInMemory -= 1
        if head == batches[0].count {
            batches.removeFirst()
            head = 0
        }
        condition.broadcast()
        return record
    }
}

/// Records on their way to the merge, with their times beside them: reading a time does
/// not copy the record.
struct RecordBatch {
    private(set) var records: [HandshakeRecord?] = []
    private(set) var times: [Int64] = []

    init(capacity: Int) {
        records.reserveCapacity(capacity)
        times.reserveCapacity(capacity)
    }

    var count: Int { records.count }
    var isEmpty: Bool { records.isEmpty }

    mutating func append(_ record: HandshakeRecord) {
        times.append(record.timestampNanos)
        records.append(record)
    }

    /// Moves the record at `index` out, leaving nil.
    mutating func take(_ index: Int) -> HandshakeRecord { records[index].take()! }
}

/// A worker's records, handed to its channel a batch at a time.
extension RecordChannel {
    /// Runs one worker's extraction, its records batched into this channel; what it counted
    /// and, when it stopped early, why, arrive with `finish` for the merge.
    func run(
        _ extract: (_ emit: (consuming HandshakeRecord) -> Void) throws(CaptureError) -> ExtractionStatistics
    ) {
        var batcher = RecordBatcher(self)
        var statistics = ExtractionStatistics()
        var failure: CaptureError?
        do throws(CaptureError) {
            statistics = try extract { batcher.add($0) }
        } catch {
            failure = error
        }
        batcher.flush()
        finish(statistics, failure: failure)
    }
}

struct RecordBatcher {
    let channel: RecordChannel
    private var batch = RecordBatch(capacity: RecordChannel.batchSize)

    init(_ channel: RecordChannel) { self.channel = channel }

    mutating func add(_ record: HandshakeRecord) {
        batch.append(record)
        if batch.count == RecordChannel.batchSize { flush() }
    }

    mutating func flush() {
        guard !batch.isEmpty else { return }
        var full = RecordBatch(capacity: RecordChannel.batchSize)
        swap(&full, &batch)
        channel.push(full)
    }
}

extension Extraction {
    /// `run` spread over `workers` threads. Every worker reads and decodes all inputs but
    /// follows only its share of TCP flows (by a hash of the flow's 4-tuple); the calling
    /// thread merges the workers' records in order of first ClientHello and passes them to
    /// `emit`. The records are the same as from `run`: each flow is followed whole by one
    /// worker, and everything that links connections happens after the merge.
    public static func runParallel(
        paths: [String],
        filter expression: String? = nil,
        workers: Int,
        limits: ReassemblyLimits = ReassemblyLimits(),
        emit: (consuming HandshakeRecord) -> Void
    ) throws(CaptureError) -> ExtractionStatistics {
        if let expression { _ = try PacketFilter(expression: expression) }
        let channels = (0..<workers).map { _ in RecordChannel() }
        var threads: [Thread] = []
        for index in 0..<workers {
            let channel = channels[index]
            let thread = Thread {
                channel.run { emit throws(CaptureError) in
                    var statistics = try Extraction.runShard(
                        paths: paths,
                        filter: expression,
                        shard: index,
                        of: workers,
                        limits: limits,
                        emit: emit
                    )
                    // Packet-level counts are the same in every worker: keep them from the first.
                    if index != 0 {
                        statistics.decode = DecodeCounters()
                        statistics.inputs = []
                        statistics.filteredOut = 0
                    }
                    return statistics
                }
            }
            thread.stackSize = 8 << 20
            threads.append(thread)
            thread.start()
        }
        // Merge by first-ClientHello time; ties go to the lower worker.
        while true {
            guard let best = earliestChannel(channels) else { break }
            emit(channels[best].pop())
        }
        // What every worker found has been passed on; a worker's failure then reaches the caller.
        if let failure = channels.lazy.compactMap(\.failure).first { throw failure }
        var total = channels[0].statistics ?? ExtractionStatistics()
        for channel in channels.dropFirst() {
            guard let s = channel.statistics else { continue }
            total.reassembly.add(s.reassembly)
            total.connections.add(s.connections)
        }
        return total
    }

    /// One worker's share: the flows whose 4-tuple hashes to `shard`.
    static func runShard(
        paths: [String],
        filter expression: String?,
        shard: Int,
        of workers: Int,
        limits: ReassemblyLimits,
        emit: (consuming HandshakeRecord) -> Void
    ) throws(CaptureError) -> ExtractionStatistics {
        let filter = try expression.map { (e: String) throws(CaptureError) in try PacketFilter(expression: e) }
        // Every worker reads the files; the first one's reads are the progress.
        let captures = CaptureSet(paths: paths, countsProgress: shard == 0)
        var extractor = HandshakeExtractor(limits: limits, shard: (shard, workers))
        var filteredOut = 0
        while let packet = captures.next() {
            if let filter, !filter.matches(packet) {
                filteredOut += 1
                continue
            }
            extractor.process(packet, emit: emit)
        }
        extractor.finish(emit: emit)
        var statistics = extractor.statistics
        statistics.inputs = captures.inputStats
        statistics.filteredOut = filteredOut
        statistics.filterInapplicable = filter?.inapplicable ?? [:]
        return statistics
    }
}

extension Extraction {
    /// How far into the next worker's files a worker follows the handshakes still open at
    /// the end of its own, in capture time.
    public static let handoffNanos: Int64 = 10_000_000_000

    /// Records a worker ahead of the merge keeps in memory before it spills to a temporary file.
    public static let recordsInMemoryAhead = 1024

    /// Several files (tcpdump's rotated files, given in order) spread over `workers` threads
    /// by file: each worker reads its own contiguous group, then follows the handshakes still
    /// open at the end of it into the following files for up to `handoffNanos` without
    /// starting new flows. A handshake that crosses a file boundary is therefore followed
    /// whole by the earlier worker; when the later one also saw its ClientHello, the merge
    /// keeps one record (same uid). Memory and reading are not duplicated.
    public static func runSegmented(
        paths: [String],
        filter expression: String? = nil,
        workers: Int,
        limits: ReassemblyLimits = ReassemblyLimits(),
        recordsInMemory: Int = Extraction.recordsInMemoryAhead,
        emit: (consuming HandshakeRecord) -> Void
    ) throws(CaptureError) -> ExtractionStatistics {
        if let expression { _ = try PacketFilter(expression: expression) }
        let groups = segments(paths, into: workers)
        // The merge reads the first group as it comes; later groups run ahead and spill.
        let channels = groups.indices.map { index in
            index == 0 ? RecordChannel() : RecordChannel(spillsWhenFull: true, capacity: recordsInMemory)
        }
        for (index, group) in groups.enumerated() {
            let channel = channels[index]
            let following = Array(paths.dropFirst(group.upperBound))
            let thread = Thread {
                channel.run { emit throws(CaptureError) in
                    try Extraction.runSegment(
                        Array(paths[group]),
                        following: following,
                        filter: expression,
                        limits: limits,
                        emit: emit
                    )
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        // Merge by first-ClientHello time; a uid seen within the last minute is a handshake
        // both neighbours saw at their boundary.
        var recent: [String: Int64] = [:]
        var pruned: Int64?
        while true {
            guard let best = earliestChannel(channels) else { break }
            let record = channels[best].pop()
            if recent[record.uid] != nil { continue }
            recent[record.uid] = record.timestampNanos
            if record.timestampNanos - (pruned ?? record.timestampNanos) > 60_000_000_000 || pruned == nil {
                pruned = record.timestampNanos
                recent = recent.filter { record.timestampNanos - $0.value < 60_000_000_000 }
            }
            emit(record)
        }
        if let failure = channels.lazy.compactMap(\.failure).first { throw failure }
        var total = ExtractionStatistics()
        for (index, channel) in channels.enumerated() {
            total.recordsLostInSpill += channel.recordsLost
            guard let s = channel.statistics else { continue }
            total.decode.add(s.decode)
            total.reassembly.add(s.reassembly)
            total.connections.add(s.connections)
            total.inputs += s.inputs
            total.filteredOut += s.filteredOut
            total.filterInapplicable.merge(s.filterInapplicable) { a, _ in a }
            if index == 0 { total.firstPacketNanos = s.firstPacketNanos }
            total.lastPacketNanos = max(total.lastPacketNanos ?? .min, s.lastPacketNanos ?? .min)
        }
        // A file that could not be opened is named once, by the worker that owned it.
        return total
    }

    /// Contiguous groups of files of about equal total size.
    static func segments(_ paths: [String], into workers: Int) -> [Range<Int>] {
        let sizes = paths.map { path -> Int64 in
            var info = stat()
            return stat(path, &info) == 0 ? Int64(info.st_size) : 0
        }
        let total = max(sizes.reduce(0, +), 1)
        var groups: [Range<Int>] = []
        var start = 0
        var accumulated: Int64 = 0
        for (index, size) in sizes.enumerated() {
            accumulated += size
            let share = Int64(groups.count + 1) * total / Int64(workers)
            if accumulated >= share, groups.count < workers - 1, index + 1 < paths.count {
                groups.append(start..<(index + 1))
                start = index + 1
            }
        }
        groups.append(start..<paths.count)
        return groups
    }

    /// One worker's files, then the handoff into the following files.
    static func runSegment(
        _ own: [String],
        following: [String],
        filter expression: String?,
        limits: ReassemblyLimits,
        emit: (consuming HandshakeRecord) -> Void
    ) throws(CaptureError) -> ExtractionStatistics {
        let filter = try expression.map { (e: String) throws(CaptureError) in try PacketFilter(expression: e) }
        var extractor = HandshakeExtractor(limits: limits)
        var filteredOut = 0
        let captures = CaptureSet(paths: own)
        while let packet = captures.next() {
            if let filter, !filter.matches(packet) {
                filteredOut += 1
                continue
            }
            extractor.process(packet, emit: emit)
        }
        // Counted at the end of the worker's own files: the next worker counts the rest.
        var statistics = extractor.statistics
        statistics.inputs = captures.inputStats
        statistics.filteredOut = filteredOut
        statistics.filterInapplicable = filter?.inapplicable ?? [:]
        if !following.isEmpty, extractor.undecidedConnections > 0 {
            extractor.followOpenFlowsOnly()
            let boundary = extractor.lastTimestampNanos
            let next = CaptureSet(paths: following, countsProgress: false)
            while extractor.undecidedConnections > 0, let packet = next.next(),
                packet.timestampNanos - boundary <= handoffNanos
            {
                if let filter, !filter.matches(packet) { continue }
                extractor.process(packet, emit: emit)
            }
        }
        extractor.finish(emit: emit)
        let final = extractor.statistics
        statistics.reassembly = final.reassembly
        statistics.connections = final.connections
        return statistics
    }
}

/// The channel whose next record has the earliest first-ClientHello time (ties: the lower
/// worker), waiting for workers that have not decided; nil when all are finished.
func earliestChannel(_ channels: [RecordChannel]) -> Int? {
    var best: Int?
    var bestTime = Int64.max
    for (index, channel) in channels.enumerated() {
        if let time = channel.nextTimestamp(), time < bestTime {
            best = index
            bestTime = time
        }
    }
    return best
}
