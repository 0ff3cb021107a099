import Capture
import Foundation
import Handshakes
import Packets
import Reassembly

extension Extraction {
    /// `run` spread over `workers` threads. One reader reads and decodes every packet once:
    /// it follows the TCP and UDP flows whose 4-tuple hashes to worker 0 itself and copies
    /// the others' segments and datagrams, in batches, to the worker that owns them. The
    /// calling thread merges the workers' records in order of first ClientHello and passes
    /// them to `emit`. The records are the same as from `run`: each flow is followed whole
    /// by one worker, and everything that links connections happens after the merge.
    package static func runParallel(
        paths: [String],
        filter expression: String? = nil,
        workers: Int,
        limits: ReassemblyLimits = ReassemblyLimits(),
        options: RecordOptions = RecordOptions(),
        emit: (consuming HandshakeRecord) -> Void
    ) throws(CaptureError) -> ExtractionStatistics {
        if let expression { _ = try PacketFilter(expression: expression) }
        // A worker whose records the merge cannot take yet, because it waits for another
        // worker's, sets them aside in a temporary file instead of waiting: the reader never
        // waits on a worker that waits on the reader.
        let channels = (0..<workers).map { _ in RecordChannel(spillsWhileMergeWaitsElsewhere: true) }
        let queues = (1..<max(workers, 1)).map { _ in
            ForwardingQueue(batchCapacity: ForwardedBatch.capacity(forWorkers: workers))
        }
        for (offset, queue) in queues.enumerated() {
            let channel = channels[offset + 1]
            let thread = Thread { Extraction.follow(queue, limits: limits, options: options, into: channel) }
            thread.stackSize = 8 << 20
            thread.start()
        }
        let reader = Thread {
            channels[0].run { emit throws(CaptureError) in
                let captures = CaptureSet(paths: paths)
                let forwarder = PacketForwarder(queues, pinningIn: captures)
                defer { forwarder.finish() }
                var reading = try FilteredExtraction(
                    HandshakeExtractor(limits: limits, options: options),
                    filter: expression
                )
                reading.forwarder = forwarder
                reading.read(captures, emit: emit)
                reading.extractor.finish(emit: emit)
                return reading.statistics(inputs: captures)
            }
        }
        reader.stackSize = 8 << 20
        reader.start()
        // Merge by first-ClientHello time; ties go to the lower worker.
        var merge = RecordMerge(channels)
        while let record = merge.next() { emit(record) }
        // What every worker found has been passed on; a worker's failure then reaches the caller.
        if let failure = channels.lazy.compactMap(\.failure).first { throw failure }
        var total = channels[0].statistics ?? ExtractionStatistics()
        for channel in channels.dropFirst() {
            total.recordsLostInSpill += channel.recordsLost
            guard let s = channel.statistics else { continue }
            total.reassembly.add(s.reassembly)
            total.connections.add(s.connections)
        }
        total.recordsLostInSpill += channels[0].recordsLost
        return total
    }

    /// A worker of `runParallel`: follows the segments and datagrams the reader hands it.
    /// Before it waits for more, it passes on the records it has, so the merge is not held up.
    static func follow(
        _ queue: ForwardingQueue,
        limits: ReassemblyLimits,
        options: RecordOptions,
        into channel: RecordChannel
    ) {
        var extractor = HandshakeExtractor(limits: limits, options: options)
        var batcher = RecordBatcher(channel)
        while let batch = queue.next(beforeWaiting: { batcher.flush() }) {
            batch.follow(into: &extractor) { batcher.add($0) }
            queue.giveBack(batch)
        }
        extractor.finish { batcher.add($0) }
        batcher.flush()
        channel.finish(extractor.statistics)
    }
}

extension Extraction {
    /// How far into the next worker's files a worker follows the handshakes still open at
    /// the end of its own, in capture time.
    package static let handoffNanos: Int64 = 10_000_000_000

    /// Records a worker ahead of the merge keeps in memory before it spills to a temporary file.
    package static let recordsInMemoryAhead = 1024

    /// Several files (tcpdump's rotated files, given in order) spread over `workers` threads
    /// by file: each worker reads its own contiguous group, then follows the handshakes still
    /// open at the end of it into the following files for up to `handoffNanos` without
    /// starting new flows. A handshake that crosses a file boundary is therefore followed
    /// whole by the earlier worker; when the later one also saw its ClientHello, the merge
    /// keeps one record (same uid). Memory and reading are not duplicated.
    package static func runFileGroups(
        paths: [String],
        filter expression: String? = nil,
        workers: Int,
        limits: ReassemblyLimits = ReassemblyLimits(),
        options: RecordOptions = RecordOptions(),
        recordsInMemory: Int = Extraction.recordsInMemoryAhead,
        emit: (consuming HandshakeRecord) -> Void
    ) throws(CaptureError) -> ExtractionStatistics {
        if let expression { _ = try PacketFilter(expression: expression) }
        let groups = fileGroups(paths, into: workers)
        // The merge reads the first group as it comes; later groups run ahead and spill.
        let channels = groups.indices.map { index in
            index == 0 ? RecordChannel() : RecordChannel(spillsWhenFull: true, capacity: recordsInMemory)
        }
        for (index, group) in groups.enumerated() {
            let channel = channels[index]
            let following = Array(paths.dropFirst(group.upperBound))
            let thread = Thread {
                channel.run { emit throws(CaptureError) in
                    try Extraction.runFileGroup(
                        Array(paths[group]),
                        following: following,
                        filter: expression,
                        limits: limits,
                        options: options,
                        emit: emit
                    )
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        // Merge by first-ClientHello time. A handshake both neighbours saw at their boundary
        // comes twice with the same uid, which holds that time (`connectionUID`): the two
        // meet among the records of one time, so only those uids are kept to compare.
        var uidsAtTime: [String] = []
        var time = Int64.min
        var merge = RecordMerge(channels)
        while let record = merge.next() {
            if record.timestampNanos != time {
                time = record.timestampNanos
                uidsAtTime.removeAll(keepingCapacity: true)
            } else if uidsAtTime.contains(record.uid) {
                continue
            }
            uidsAtTime.append(record.uid)
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
            // Each worker read the whole key log, and the secrets of its own files.
            total.keyLogConnections = max(total.keyLogConnections, s.keyLogConnections)
            for problem in s.keyLogProblems where !total.keyLogProblems.contains(problem) {
                total.keyLogProblems.append(problem)
            }
            total.keyLogMalformedLines = max(total.keyLogMalformedLines, s.keyLogMalformedLines)
            total.keyLogSecretsNotKept = max(total.keyLogSecretsNotKept, s.keyLogSecretsNotKept)
            if index == 0 { total.firstPacketNanos = s.firstPacketNanos }
            total.lastPacketNanos = max(total.lastPacketNanos ?? .min, s.lastPacketNanos ?? .min)
        }
        // A file that could not be opened is named once, by the worker that owned it.
        return total
    }

    /// Contiguous groups of files of about equal total size.
    static func fileGroups(_ paths: [String], into workers: Int) -> [Range<Int>] {
        fileGroups(
            sizes: paths.map { path -> Int64 in
                var info = stat()
                return stat(path, &info) == 0 ? Int64(info.st_size) : 0
            },
            into: workers
        )
    }

    /// Contiguous groups of files, at most `workers`, of about equal total size: a file goes
    /// to the group its middle byte falls in when the bytes of all files are cut in `workers`
    /// equal parts. (Closing a group only once it reached its share left two files of 49% and
    /// 51% in one group, and tcpdump's rotated files, equal but for a smaller last one,
    /// unevenly split.)
    package static func fileGroups(sizes: [Int64], into workers: Int) -> [Range<Int>] {
        guard !sizes.isEmpty else { return [] }
        let parts = Int64(max(workers, 1))
        let total = max(sizes.reduce(0) { $0 + max($1, 0) }, 1)
        var groups: [Range<Int>] = []
        var start = 0
        var group: Int64 = 0
        var before: Int64 = 0
        for (index, size) in sizes.enumerated() {
            let size = max(size, 0)
            // Twice the middle byte's offset, times the parts, over twice the total.
            let owner = min((2 * before + size) * parts / (2 * total), parts - 1)
            if owner > group, index > start {
                groups.append(start..<index)
                start = index
            }
            group = max(group, owner)
            before += size
        }
        groups.append(start..<sizes.count)
        return groups
    }

    /// One worker's files, then the handoff into the following files.
    static func runFileGroup(
        _ own: [String],
        following: [String],
        filter expression: String?,
        limits: ReassemblyLimits,
        options: RecordOptions,
        emit: (consuming HandshakeRecord) -> Void
    ) throws(CaptureError) -> ExtractionStatistics {
        var reading = try FilteredExtraction(HandshakeExtractor(limits: limits, options: options), filter: expression)
        let captures = CaptureSet(paths: own)
        reading.read(captures, emit: emit)
        // Counted at the end of the worker's own files: the next worker counts the rest.
        var statistics = reading.statistics(inputs: captures)
        if !following.isEmpty, reading.extractor.undecidedConnections > 0 {
            reading.extractor.followOpenFlowsOnly()
            let end = reading.extractor.lastTimestampNanos + handoffNanos
            reading.read(CaptureSet(paths: following, countsProgress: false), handoffEndNanos: end, emit: emit)
        }
        reading.extractor.finish(emit: emit)
        let final = reading.extractor.statistics
        statistics.reassembly = final.reassembly
        statistics.connections = final.connections
        return statistics
    }
}
