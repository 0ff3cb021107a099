import Capture
import Foundation
import Handshakes
import Packets
import Reassembly

/// Records from one worker to the merging thread. Memory holds at most `capacity` records.
/// When it is full, a worker whose records the merge needs soon (workers sharing one file's
/// flows) waits, unless the merge itself waits for another worker; a worker far ahead of the
/// merge (a later group of rotated files) writes its records to a temporary file instead and
/// goes on, so both cores stay busy and memory stays flat whatever the files hold.
final class RecordChannel: @unchecked Sendable {
    /// Records a channel holds in memory before its worker waits or spills.
    static let capacity = 4096
    /// Records a worker hands over at a time; also the records of one spilled frame.
    static let batchSize = 256

    private let condition = NSCondition()
    private let capacity: Int
    /// Batches in memory, oldest first; the merge takes them whole.
    private var batches: [RecordBatch] = []
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

    /// Whether a full channel spills while the merge waits for another channel's next record
    /// (workers fed by one reader: waiting there could wait for the reader, which may wait
    /// for this worker). Cleared, like `spills`, when the temporary file fails.
    private var spillsWhileMergeWaitsElsewhere: Bool
    /// Set by the merge while it waits for another channel.
    private var mergeWaitsElsewhere = false

    /// - Parameters:
    ///   - spillsWhenFull: write to a temporary file instead of waiting.
    ///   - spillsWhileMergeWaitsElsewhere: do so only while the merge waits for another channel.
    init(
        spillsWhenFull: Bool = false,
        spillsWhileMergeWaitsElsewhere: Bool = false,
        capacity: Int = RecordChannel.capacity,
        spillDirectory: String? = nil
    ) {
        spills = spillsWhenFull
        self.spillsWhileMergeWaitsElsewhere = spillsWhileMergeWaitsElsewhere
        self.capacity = capacity
        self.spillDirectory = spillDirectory
    }

    func push(_ batch: consuming RecordBatch) {
        condition.lock()
        while recordsInMemory >= max(capacity, 1) || spilledFrames > 0 {
            if spills || (spillsWhileMergeWaitsElsewhere && mergeWaitsElsewhere) {
                condition.unlock()
                if pushToSpill(batch) { return }
                condition.lock()
                continue
            }
            condition.wait()
        }
        recordsInMemory += batch.count
        batches.append(batch)
        condition.broadcast()
        condition.unlock()
    }

    /// The merge waits for another channel's next record (true) or has it (false).
    func mergeWaits(elsewhere: Bool) {
        condition.lock()
        mergeWaitsElsewhere = elsewhere
        condition.broadcast()
        condition.unlock()
    }

    /// False when no temporary file could be made or written: the worker waits from then on.
    private func pushToSpill(_ batch: RecordBatch) -> Bool {
        writer.reset()
        var count = batch.count
        writer.scalar("records", &count, .count, .captured)
        for record in batch.records { record?.spill(into: &writer) }
        condition.lock()
        defer { condition.unlock() }
        if spill == nil { spill = RecordSpillFile(directory: spillDirectory) }
        guard let spill, spill.append(writer.bytes) else {
            spills = false
            spillsWhileMergeWaitsElsewhere = false
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

    /// The oldest batch, moved out, waiting for one; nil when the worker has finished and
    /// nothing is left.
    func takeBatch() -> RecordBatch? {
        condition.lock()
        defer { condition.unlock() }
        while batches.isEmpty {
            if spilledFrames > 0 {
                refillFromSpill()
            } else if finished {
                return nil
            } else {
                condition.wait()
            }
        }
        let batch = batches.removeFirst()
        recordsInMemory -= batch.count
        condition.broadcast()
        return batch
    }

    /// Whether `takeBatch` would answer at once.
    var hasBatchOrFinished: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !batches.isEmpty || spilledFrames > 0 || finished
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
            spillsWhileMergeWaitsElsewhere = false
            return
        }
        var reader = RecordSpillReader(frame, certificates: certificates)
        var count = 0
        reader.scalar("records", &count, .count, .captured)
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

/// The workers' records in order of first-ClientHello time (ties: the lower worker),
/// taken from each channel a batch at a time, waiting for workers that have not decided.
struct RecordMerge {
    private let channels: [RecordChannel]
    /// Each channel's batch being merged, and its next record; nil once the channel is done.
    private var batches: [RecordBatch?]
    private var heads: [Int]

    init(_ channels: [RecordChannel]) {
        self.channels = channels
        batches = Array(repeating: RecordBatch(capacity: 0), count: channels.count)
        heads = Array(repeating: 0, count: channels.count)
    }

    /// The next record in order; nil when every worker has finished.
    mutating func next() -> HandshakeRecord? {
        var best = -1
        var bestTime = Int64.max
        for index in channels.indices {
            guard let count = batches[index]?.count else { continue }
            if heads[index] == count, !refill(index) { continue }
            let time = batches[index]!.times[heads[index]]
            if time < bestTime {
                best = index
                bestTime = time
            }
        }
        guard best >= 0 else { return nil }
        let record = batches[best]!.take(heads[best])
        heads[best] += 1
        return record
    }

    /// The channel's next batch, waiting for it; false when the channel is done.
    private mutating func refill(_ index: Int) -> Bool {
        let channel = channels[index]
        // While the merge waits for this channel, the others know it.
        let waits = channels.count > 1 && !channel.hasBatchOrFinished
        if waits { for other in channels where other !== channel { other.mergeWaits(elsewhere: true) } }
        defer { if waits { for other in channels where other !== channel { other.mergeWaits(elsewhere: false) } } }
        batches[index] = nil
        heads[index] = 0
        guard let batch = channel.takeBatch() else { return false }
        batches[index] = batch
        return true
    }
}
