import Foundation
import Handshakes
import TestSupport
import Testing

@testable import Extraction

/// A worker ahead of the merge (a later group of rotated files) sets its records aside in a
/// temporary file. What comes back must be the same records, in the same order.
@Suite struct RecordChannelTests {
    /// Hands `records` to `channel` as one batch, as a worker's batcher does.
    static func push(_ records: ArraySlice<HandshakeRecord>, to channel: RecordChannel) {
        var batch = RecordBatch(capacity: records.count)
        for record in records { batch.append(record) }
        channel.push(batch)
    }

    /// The channel keeps order across memory and the temporary file while a slow merge
    /// drains it and the worker keeps pushing.
    @Test func channelKeepsOrderWhenItSpills() throws {
        let records = try frontRecordsOfRecordedCaptures()
        let channel = RecordChannel(spillsWhenFull: true, capacity: 4)
        let worker = Thread {
            var start = 0
            var size = 1
            while start < records.count {
                let end = min(start + size, records.count)
                Self.push(records[start..<end], to: channel)
                start = end
                size = size % 7 + 1
            }
            channel.finish(ExtractionStatistics())
        }
        worker.start()
        var received: [HandshakeRecord] = []
        var merge = RecordMerge([channel])
        while let record = merge.next() {
            received.append(record)
            if received.count % 50 == 0 { usleep(500) }
        }
        #expect(channel.framesSpilled > 10)
        #expect(channel.recordsLost == 0)
        #expect(received.count == records.count)
        #expect(received.map(\.uid) == records.map(\.uid))
        #expect(received == records)
    }

    /// The same in a fixed interleaving, on one thread: pushes and pops alternate so that
    /// memory has room again while frames still wait in the file.
    @Test func channelKeepsOrderInEveryInterleaving() throws {
        let records = try frontRecordsOfRecordedCaptures()
        var spilledIn = 0
        for (pushes, pops) in [(1, 1), (2, 3), (3, 2), (1, 5), (4, 1)] {
            let channel = RecordChannel(spillsWhenFull: true, capacity: 4)
            var merge = RecordMerge([channel])
            var received: [HandshakeRecord] = []
            var start = 0
            var size = 1
            var step = 0
            while start < records.count || received.count < records.count {
                for _ in 0..<pushes where start < records.count {
                    let end = min(start + size, records.count)
                    Self.push(records[start..<end], to: channel)
                    start = end
                    size = size % 5 + 1
                }
                if start == records.count { channel.finish(ExtractionStatistics()) }
                // Pop only what was pushed, so no pop waits.
                for _ in 0..<(pops + step % 3) where received.count < start {
                    if let record = merge.next() { received.append(record) }
                }
                step += 1
            }
            #expect(merge.next() == nil)
            if channel.framesSpilled > 5 { spilledIn += 1 }
            #expect(received.map(\.uid) == records.map(\.uid), "pushes \(pushes), pops \(pops)")
        }
        // Where pops keep up with pushes nothing spills; elsewhere it must have.
        #expect(spilledIn >= 4)
    }

    /// Without a usable temporary directory the worker waits for the merge instead: nothing
    /// is lost, and the order holds.
    @Test func channelWaitsWhenNoTemporaryFileCanBeMade() throws {
        let records = try frontRecordsOfRecordedCaptures()
        let channel = RecordChannel(spillsWhenFull: true, capacity: 4, spillDirectory: "/nonexistent-\(getpid())")
        let worker = Thread {
            for start in stride(from: 0, to: records.count, by: 3) {
                Self.push(records[start..<min(start + 3, records.count)], to: channel)
            }
            channel.finish(ExtractionStatistics())
        }
        worker.start()
        var received: [HandshakeRecord] = []
        var merge = RecordMerge([channel])
        while let record = merge.next() { received.append(record) }
        #expect(channel.framesSpilled == 0)
        #expect(channel.recordsLost == 0)
        #expect(received.map(\.uid) == records.map(\.uid))
    }

    /// Rotated files with every later group spilled give the records of one worker.
    @Test func rotatedFilesWithEverythingSpilledGiveTheSameRecords() throws {
        try #require(toolAvailable("editcap"), "editcap (tshark's package) is needed to rotate a capture")
        let whole = Paths.captures.appendingPathComponent("lb-roundrobin.pcap")
        try withRotatedCapture(whole, packetsPerFile: 40) { parts in
            #expect(parts.count > 5)
            let (expected, _) = try extractRecords([whole.path])
            var merged: [HandshakeRecord] = []
            let statistics = try Extraction.runFileGroups(paths: parts, workers: 3, recordsInMemory: 0) {
                merged.append($0)
            }
            #expect(statistics.recordsLostInSpill == 0)
            #expect(merged.map(\.uid) == expected.map(\.uid))
            #expect(merged == expected)
        }
    }

    /// Workers fed by one reader: while the merge waits for one worker (whose records are
    /// all held behind a connection not yet decided), a full channel of another sets its
    /// records aside instead of waiting, since the reader that would unblock the first may
    /// itself wait for the second. The order still holds.
    @Test func fullChannelSpillsWhileTheMergeWaitsForAnother() throws {
        let records = try frontRecordsOfRecordedCaptures()
        #expect(records.count > 40)
        let late = RecordChannel(spillsWhileMergeWaitsElsewhere: true, capacity: 4)
        let busy = RecordChannel(spillsWhileMergeWaitsElsewhere: true, capacity: 4)
        // `busy` gets every record but the first; `late` gets the first, once `busy` is done.
        let busyDone = DispatchSemaphore(value: 0)
        let worker = Thread {
            for start in stride(from: 1, to: records.count, by: 2) {
                Self.push(records[start..<min(start + 2, records.count)], to: busy)
            }
            busy.finish(ExtractionStatistics())
            busyDone.signal()
        }
        let reader = Thread {
            // The reader sends its one record only after the other worker got through all
            // of its own: with waiting instead of spilling, this never happens.
            busyDone.wait()
            Self.push(records[0..<1], to: late)
            late.finish(ExtractionStatistics())
        }
        worker.start()
        reader.start()
        var merge = RecordMerge([late, busy])
        var received: [HandshakeRecord] = []
        while let record = merge.next() { received.append(record) }
        #expect(busy.framesSpilled > 5)
        #expect(busy.recordsLost == 0)
        #expect(late.framesSpilled == 0)
        #expect(received.map(\.uid) == records.map(\.uid))
    }

    /// A channel that spills only while the merge waits elsewhere waits, and keeps its
    /// records in memory, when the merge merely lags.
    @Test func fullChannelWaitsWhileTheMergeIsOnlySlow() throws {
        let records = try frontRecordsOfRecordedCaptures()
        let channel = RecordChannel(spillsWhileMergeWaitsElsewhere: true, capacity: 4)
        let worker = Thread {
            for start in stride(from: 0, to: records.count, by: 2) {
                Self.push(records[start..<min(start + 2, records.count)], to: channel)
            }
            channel.finish(ExtractionStatistics())
        }
        worker.start()
        var merge = RecordMerge([channel])
        var received: [HandshakeRecord] = []
        while let record = merge.next() {
            received.append(record)
            if received.count % 10 == 0 { usleep(300) }
        }
        #expect(channel.framesSpilled == 0)
        #expect(received.map(\.uid) == records.map(\.uid))
    }
}
