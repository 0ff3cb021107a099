import Foundation
import Resumption
import TestSupport
import Testing

@testable import Handshakes

/// A worker ahead of the merge (a later group of rotated files) sets its records aside in a
/// temporary file. What comes back must be the same records, in the same order.
@Suite struct RecordSpillTests {
    /// Every record of every recorded capture, with the balancer legs paired and sessions
    /// linked, so the fields later stages fill are set too.
    static func linkedRecords() throws -> [HandshakeRecord] {
        var all: [HandshakeRecord] = []
        for capture in Paths.recordedCaptures {
            all += try frontRecords(capture)
        }
        return all
    }

    /// Hands `records` to `channel` as one batch, as a worker's batcher does.
    static func push(_ records: ArraySlice<HandshakeRecord>, to channel: RecordChannel) {
        var batch = RecordBatch(capacity: records.count)
        for record in records { batch.append(record) }
        channel.push(batch)
    }

    @Test func spilledRecordsReadBackEqual() throws {
        let records = try Self.linkedRecords()
        // The fields the later stages and the rarer paths fill are really exercised.
        #expect(records.count > 200)
        #expect(records.contains { $0.resumes != nil } && records.contains { $0.backend != nil })
        #expect(
            records.contains { $0.certificate != nil } && records.contains { $0.serverTraits?.synAckOptions != nil }
        )
        #expect(records.contains { !$0.pskIdentities.isEmpty } && records.contains { $0.sessionAge != nil })
        #expect(records.contains { $0.transport == .quic } && records.contains { $0.starttls != nil })

        var writer = RecordSpillWriter()
        for record in records { record.spill(into: &writer) }
        var reader = RecordSpillReader(writer.bytes)
        var back: [HandshakeRecord] = []
        while !reader.isAtEnd, let record = HandshakeRecord(spilled: &reader) { back.append(record) }
        #expect(back.count == records.count)
        for (original, copy) in zip(records, back) where original != copy {
            Issue.record("record \(original.uid) read back different")
        }
        // Records of one leaf certificate share one summary again, as the extractor made them.
        let byLeaf = Dictionary(grouping: back.filter { $0.certificate != nil }) {
            $0.certificateFingerprints.first ?? ""
        }
        #expect(byLeaf.values.contains { $0.count > 1 })
        for group in byLeaf.values { #expect(group.allSatisfy { $0.certificate === group[0].certificate }) }
    }

    /// Damaged bytes end the reading with nil (the channel counts the records as lost); they
    /// never crash or read outside the buffer. Hand-made damage: truncation at every point and
    /// flipped bytes of a real record.
    @Test func damagedSpillBytesAreRefused() throws {
        let record = try #require(try Self.linkedRecords().first { $0.certificate != nil && $0.serverTraits != nil })
        var writer = RecordSpillWriter()
        record.spill(into: &writer)
        let bytes = writer.bytes
        for cut in 0..<bytes.count {
            var reader = RecordSpillReader(Array(bytes[..<cut]))
            #expect(HandshakeRecord(spilled: &reader) == nil, "cut at \(cut)")
        }
        for index in bytes.indices {
            var damaged = bytes
            damaged[index] = 0xff
            var reader = RecordSpillReader(damaged)
            _ = HandshakeRecord(spilled: &reader)
        }
    }

    /// The channel keeps order across memory and the temporary file while a slow merge
    /// drains it and the worker keeps pushing.
    @Test func channelKeepsOrderWhenItSpills() throws {
        let records = try Self.linkedRecords()
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
        while channel.nextTimestamp() != nil {
            received.append(channel.pop())
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
        let records = try Self.linkedRecords()
        var spilledIn = 0
        for (pushes, pops) in [(1, 1), (2, 3), (3, 2), (1, 5), (4, 1)] {
            let channel = RecordChannel(spillsWhenFull: true, capacity: 4)
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
                    _ = channel.nextTimestamp()
                    received.append(channel.pop())
                }
                step += 1
            }
            #expect(channel.nextTimestamp() == nil)
            if channel.framesSpilled > 5 { spilledIn += 1 }
            #expect(received.map(\.uid) == records.map(\.uid), "pushes \(pushes), pops \(pops)")
        }
        // Where pops keep up with pushes nothing spills; elsewhere it must have.
        #expect(spilledIn >= 4)
    }

    /// Without a usable temporary directory the worker waits for the merge instead: nothing
    /// is lost, and the order holds.
    @Test func channelWaitsWhenNoTemporaryFileCanBeMade() throws {
        let records = try Self.linkedRecords()
        let channel = RecordChannel(spillsWhenFull: true, capacity: 4, spillDirectory: "/nonexistent-\(getpid())")
        let worker = Thread {
            for start in stride(from: 0, to: records.count, by: 3) {
                Self.push(records[start..<min(start + 3, records.count)], to: channel)
            }
            channel.finish(ExtractionStatistics())
        }
        worker.start()
        var received: [HandshakeRecord] = []
        while channel.nextTimestamp() != nil { received.append(channel.pop()) }
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
            let statistics = try Extraction.runSegmented(paths: parts, workers: 3, recordsInMemory: 0) {
                merged.append($0)
            }
            #expect(statistics.recordsLostInSpill == 0)
            #expect(merged.map(\.uid) == expected.map(\.uid))
            #expect(merged == expected)
        }
    }
}
