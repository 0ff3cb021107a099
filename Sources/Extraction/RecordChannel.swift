import Capture
import Foundation
import Handshakes
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
        writer.scalar("records", &count, .count, .captured)
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
