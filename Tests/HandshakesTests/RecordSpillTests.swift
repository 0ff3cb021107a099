import Foundation
import TestSupport
import Testing

@testable import Handshakes

/// The binary form a worker ahead of the merge writes its records in (`RecordSpillWriter`):
/// what is read back must be the same records.
@Suite struct RecordSpillTests {
    @Test func spilledRecordsReadBackEqual() throws {
        let records = try frontRecordsOfRecordedCaptures()
        // The fields the later stages and the rarer paths fill are really exercised.
        #expect(records.count > 200)
        #expect(records.contains { $0.resumes != nil } && records.contains { $0.backend != nil })
        #expect(
            records.contains { $0.certificate != nil } && records.contains { $0.serverTraits?.synAckOptions != nil }
        )
        #expect(records.contains { !$0.pskIdentities.isEmpty } && records.contains { $0.sessionAge != nil })
        #expect(records.contains { $0.transport == .quic } && records.contains { $0.starttls != nil })
        // Addresses and byte strings spill as bytes (`SpillsAsBytes`): both families, and
        // session IDs and ticket digests of every length the captures hold.
        #expect(records.contains { $0.client.isIPv6 } && records.contains { !$0.server.isIPv6 })
        #expect(
            records.contains { $0.clientSessionID.count == 32 } && records.contains { $0.clientSessionID.count == 0 }
        )
        #expect(records.contains { $0.offeredTicketDigest != nil } && records.contains { $0.serverSessionID != nil })

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
        let record = try #require(
            try frontRecordsOfRecordedCaptures().first { $0.certificate != nil && $0.serverTraits != nil }
        )
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
}
