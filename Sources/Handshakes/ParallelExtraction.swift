import Capture
import Foundation
import Packets
import Reassembly

/// Records from one worker to the merging thread: a bounded queue (the worker waits when it
/// is full, so memory stays bounded whatever the pace of either side).
final class RecordChannel: @unchecked Sendable {
    static let capacity = 4096
    private let condition = NSCondition()
    private var queue: [HandshakeRecord] = []
    private var head = 0
    private var finished = false
    /// The worker's statistics, set when it finishes.
    private(set) var statistics: ExtractionStatistics?

    func push(_ batch: [HandshakeRecord]) {
        condition.lock()
        while queue.count - head >= RecordChannel.capacity { condition.wait() }
        if head > 0, head * 2 >= queue.count {
            queue.removeFirst(head)
            head = 0
        }
        queue.append(contentsOf: batch)
        condition.broadcast()
        condition.unlock()
    }

    func finish(_ statistics: ExtractionStatistics) {
        condition.lock()
        self.statistics = statistics
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The time of the next record, waiting for one; nil when the worker has finished and
    /// nothing is left.
    func nextTimestamp() -> Int64? {
        condition.lock()
        defer { condition.unlock() }
        while head == queue.count && !finished { condition.wait() }
        return head < queue.count ? queue[head].timestampNanos : nil
    }

    func pop() -> HandshakeRecord {
        condition.lock()
        defer { condition.unlock() }
        let record = queue[head]
        head += 1
        condition.broadcast()
        return record
    }
}

extension Extraction {
    /// `run` spread over `workers` threads. Every worker reads and decodes all inputs but
    /// follows only its share of TCP flows (by a hash of the flow's 4-tuple); the calling
    /// thread merges the workers' records in order of first ClientHello and passes them to
    /// `emit`. The records are the same as from `run`: each flow is followed whole by one
    /// worker, and everything that links connections happens after the merge.
    public static func runParallel(paths: [String], filter expression: String? = nil, workers: Int,
                                   limits: ReassemblyLimits = ReassemblyLimits(),
                                   emit: (HandshakeRecord) -> Void) throws(CaptureError) -> ExtractionStatistics {
        if let expression { _ = try PacketFilter(expression: expression) }
        let channels = (0..<workers).map { _ in RecordChannel() }
        var threads: [Thread] = []
        for index in 0..<workers {
            let channel = channels[index]
            let thread = Thread {
                var batch: [HandshakeRecord] = []
                batch.reserveCapacity(256)
                var statistics = (try? Extraction.runShard(paths: paths, filter: expression, shard: index, of: workers, limits: limits) { record in
                    batch.append(record)
                    if batch.count == 256 {
                        channel.push(batch)
                        batch.removeAll(keepingCapacity: true)
                    }
                }) ?? ExtractionStatistics()
                if !batch.isEmpty { channel.push(batch) }
                // Packet-level counts are the same in every worker: keep them from the first.
                if index != 0 {
                    statistics.decode = DecodeCounters()
                    statistics.inputs = []
                    statistics.filteredOut = 0
                }
                channel.finish(statistics)
            }
            thread.stackSize = 8 << 20
            threads.append(thread)
            thread.start()
        }
        // Merge by first-ClientHello time; ties go to the lower worker.
        while true {
            var best = -1
            var bestTime = Int64.max
            for (index, channel) in channels.enumerated() {
                if let time = channel.nextTimestamp(), time < bestTime {
                    best = index
                    bestTime = time
                }
            }
            guard best >= 0 else { break }
            emit(channels[best].pop())
        }
        var total = channels[0].statistics ?? ExtractionStatistics()
        for channel in channels.dropFirst() {
            guard let s = channel.statistics else { continue }
            total.reassembly.add(s.reassembly)
            total.connections.add(s.connections)
        }
        return total
    }

    /// One worker's share: the flows whose 4-tuple hashes to `shard`.
    static func runShard(paths: [String], filter expression: String?, shard: Int, of workers: Int,
                         limits: ReassemblyLimits, emit: (HandshakeRecord) -> Void) throws(CaptureError) -> ExtractionStatistics {
        let filter = try expression.map { (e: String) throws(CaptureError) in try PacketFilter(expression: e) }
        let captures = CaptureSet(paths: paths)
        var extractor = HandshakeExtractor(limits: limits, shard: (shard, workers))
        var filteredOut = 0
        while let packet = captures.next() {
            if let filter, !filter.matches(packet) { filteredOut += 1; continue }
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
