import Packets
import Reassembly
import Testing

/// What the collecting consumer saw of one flow.
struct CollectedFlow {
    var start: FlowStart
    var bytes: [[UInt8]] = [[], []]
    var events: [String] = []
    var reason: FlowEndReason?
}

struct Collected {
    var flows: [CollectedFlow] = []
}

/// A consumer that keeps every byte and gap, and can decide after `decideAfter` bytes.
struct Collector: StreamConsumer {
    typealias Sink = Collected
    var flow: CollectedFlow

    init(start: FlowStart) { flow = CollectedFlow(start: start) }

    mutating func receive(
        _ bytes: UnsafeRawBufferPointer,
        from direction: FlowDirection,
        at timestampNanos: Int64,
        sink: inout Collected
    ) -> StreamInterest {
        flow.bytes[direction.rawValue] += bytes
        flow.events.append("\(direction.rawValue):+\(bytes.count)")
        if let limit = Collector.decideAfterBytes, flow.bytes[0].count + flow.bytes[1].count >= limit { return [] }
        return .both
    }

    mutating func skip(_ count: Int, from direction: FlowDirection, sink: inout Collected) -> StreamInterest {
        flow.events.append("\(direction.rawValue):gap\(count)")
        return .both
    }

    mutating func observe(_ segment: TCPSegment, from direction: FlowDirection) {}

    mutating func finish(_ reason: FlowEndReason, at timestampNanos: Int64, sink: inout Collected) {
        flow.reason = reason
        sink.flows.append(flow)
    }

    nonisolated(unsafe) static var decideAfterBytes: Int?
}

/// SYNTHETIC SEGMENTS, built here to exercise one reassembly rule each (not captured traffic).
struct Wire: ~Copyable {
    var table: FlowTable<Collector>
    var sink = Collected()
    let client = IPAddress("10.0.0.1")!
    let server = IPAddress("10.0.0.2")!
    var time: Int64 = 1_000_000_000

    init(limits: ReassemblyLimits = ReassemblyLimits()) { table = FlowTable(limits: limits) }

    mutating func send(
        fromClient: Bool = true,
        seq: UInt32,
        ack: UInt32 = 0,
        flags: TCPFlags = [.ack],
        _ payload: [UInt8] = [],
        wireLength: Int? = nil,
        clientPort: UInt16 = 40000,
        advance: Int64 = 1000
    ) {
        time += advance
        let options: [UInt8] = []
        payload.withUnsafeBytes { bytes in
            options.withUnsafeBytes { optionBytes in
                let segment = TCPSegment(
                    timestampNanos: time,
                    source: fromClient ? client : server,
                    destination: fromClient ? server : client,
                    sourcePort: fromClient ? clientPort : 443,
                    destinationPort: fromClient ? 443 : clientPort,
                    sequence: seq,
                    acknowledgment: ack,
                    flags: flags,
                    window: 65535,
                    timeToLive: 64,
                    payload: bytes,
                    payloadLength: wireLength ?? payload.count,
                    optionBytes: optionBytes
                )
                table.handle(segment, sink: &sink)
            }
        }
    }

    mutating func end() { table.finishAll(sink: &sink) }
}

func text(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite(.serialized) struct FlowTableTests {
    init() { Collector.decideAfterBytes = nil }

    @Test func inOrderWithHandshake() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(fromClient: false, seq: 500, ack: 101, flags: [.syn, .ack])
        w.send(seq: 101, ack: 501, text("hello "))
        w.send(seq: 107, ack: 501, text("world"))
        w.send(fromClient: false, seq: 501, ack: 112, text("ok"))
        w.end()
        #expect(w.sink.flows.count == 1)
        let flow = w.sink.flows[0]
        #expect(flow.start.sawSYN && flow.start.originator.address == w.client)
        #expect(flow.bytes[0] == text("hello world") && flow.bytes[1] == text("ok"))
        #expect(flow.reason == .endOfInput)
    }

    @Test func outOfOrderIsHeldAndReordered() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 107, text("world"))
        w.send(seq: 101, text("hello "))
        w.end()
        #expect(w.sink.flows[0].bytes[0] == text("hello world"))
        #expect(w.table.counters.outOfOrderSegments == 1)
    }

    @Test func retransmissionsAndPartialOverlapsAreTrimmed() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, text("abcdef"))
        w.send(seq: 101, text("abcdef"))
        w.send(seq: 104, text("defghi"))
        w.end()
        #expect(w.sink.flows[0].bytes[0] == text("abcdefghi"))
        #expect(w.table.counters.retransmittedBytes == 9)
    }

    /// Policy: the first copy of a byte wins (as in Zeek and Suricata); differing copies are counted.
    @Test func overlappingCopiesFirstWinsAndConflictsAreCounted() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 105, text("XXXX"))
        w.send(seq: 103, text("YYYYYYY"))
        w.send(seq: 101, text("ab"))
        w.end()
        #expect(w.sink.flows[0].bytes[0] == text("abYYXXXXY"))
        #expect(w.table.counters.conflictingOverlaps == 1)
    }

    @Test func sequenceNumbersWrapAround() {
        var w = Wire()
        w.send(seq: 0xffff_fff9, flags: [.syn])
        w.send(seq: 0xffff_fffa, text("012345"))
        w.send(seq: 0x0000_0004, text("89"))
        w.send(seq: 0x0000_0000, text("6701"))
        w.end()
        #expect(w.sink.flows[0].bytes[0] == text("012345" + "6701" + "89"))
    }

    @Test func holeAcknowledgedByThePeerIsAGap() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, text("aaaa"))
        w.send(seq: 109, text("cccc"))
        w.send(fromClient: false, seq: 900, ack: 113, flags: [.ack])
        #expect(w.sink.flows.isEmpty)
        w.end()
        let flow = w.sink.flows[0]
        #expect(flow.events == ["0:+4", "0:gap4", "0:+4"])
        #expect(w.table.counters.gaps == 1 && w.table.counters.gapBytes == 4)
    }

    /// The client's bytes 105-108 arrive, and the server acknowledges up to 109 before bytes
    /// 101-104 are shown.
    static func holeTheServerAcknowledged() -> Wire {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(fromClient: false, seq: 900, ack: 101, flags: [.syn, .ack])
        w.send(seq: 105, ack: 901, text("bbbb"))
        w.send(fromClient: false, seq: 901, ack: 109, flags: [.ack])
        return w
    }

    /// A capture point that shows a segment after the peer's acknowledgment of it (two taps
    /// merged, NIC queues): the hole waits for it and fills, no gap.
    @Test func acknowledgedHoleFilledLateIsNoGap() {
        var w = Self.holeTheServerAcknowledged()
        w.send(seq: 101, ack: 901, text("aaaa"), advance: 5_000_000)
        #expect(w.sink.flows.isEmpty)
        w.end()
        #expect(w.sink.flows[0].events == ["0:+4", "0:+4"])
        #expect(w.sink.flows[0].bytes[0] == text("aaaabbbb"))
        #expect(w.table.counters.gaps == 0 && w.table.counters.reorderWaitsExpired == 0)
    }

    /// An acknowledged hole still missing after `maximumReorderWaitNanos` of capture time is a
    /// gap, declared by the next packet of the flow and counted.
    @Test func acknowledgedHoleMissingPastTheWaitIsAGap() {
        var w = Self.holeTheServerAcknowledged()
        #expect(w.table.counters.gaps == 0)
        w.send(
            fromClient: false,
            seq: 901,
            ack: 109,
            flags: [.ack],
            advance: ReassemblyLimits().maximumReorderWaitNanos + 1
        )
        #expect(w.table.counters.gaps == 1 && w.table.counters.reorderWaitsExpired == 1)
        w.end()
        #expect(w.sink.flows[0].events == ["0:gap4", "0:+4"])
    }

    /// Bytes that acknowledge peer bytes the capture shows later (the responder's packets
    /// stamped late) reach the consumer after those peer bytes, as the endpoints saw them.
    @Test func bytesWaitForThePeerBytesTheyAcknowledge() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, ack: 901, text("hello"))
        w.send(seq: 106, ack: 904, text("next"))
        w.send(fromClient: false, seq: 900, ack: 101, flags: [.syn, .ack])
        w.send(fromClient: false, seq: 901, ack: 106, text("hi!"))
        w.end()
        #expect(w.sink.flows[0].events == ["0:+5", "1:+3", "0:+4"])
        #expect(w.table.counters.gaps == 0)
    }

    /// The originator's packets stamped late: the SYN-ACK opens the flow and names the
    /// client's first byte; the late SYN is the same connection and the server's reply waits
    /// for the client bytes it acknowledges.
    @Test func synAckFirstNamesTheOriginatorsStart() {
        var w = Wire()
        w.send(fromClient: false, seq: 900, ack: 101, flags: [.syn, .ack])
        w.send(fromClient: false, seq: 901, ack: 106, text("hi!"))
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, ack: 901, text("hello"))
        w.end()
        #expect(w.sink.flows.count == 1)
        #expect(w.sink.flows[0].events == ["0:+5", "1:+3"])
        #expect(w.table.counters.portReuses == 0 && w.table.counters.gaps == 0)
    }

    /// The same with TCP Fast Open: the late SYN carries the client's first bytes, which the
    /// SYN-ACK's acknowledgment already covers. The server's reply waits for the SYN, and the
    /// SYN's bytes are the stream's first.
    @Test func lateFastOpenSYNCarriesTheFirstBytes() {
        var w = Wire()
        w.send(fromClient: false, seq: 900, ack: 106, flags: [.syn, .ack])
        w.send(fromClient: false, seq: 901, ack: 106, text("hi!"))
        w.send(seq: 106, ack: 904, text("more"))
        w.send(seq: 100, flags: [.syn], text("hello"))
        w.end()
        #expect(w.sink.flows.count == 1)
        #expect(w.sink.flows[0].events == ["0:+5", "1:+3", "0:+4"])
        #expect(w.table.counters.portReuses == 0 && w.table.counters.gaps == 0)
    }

    /// A close (RST) that arrives before the reordered bytes it follows waits for them.
    @Test func closeWaitsForReorderedBytes() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, ack: 901, text("hello"))
        w.send(seq: 106, ack: 904, text("bye"))
        w.send(seq: 109, flags: [.rst])
        #expect(w.sink.flows.isEmpty)
        w.send(fromClient: false, seq: 900, ack: 101, flags: [.syn, .ack])
        w.send(fromClient: false, seq: 901, ack: 106, text("hi!"))
        #expect(w.sink.flows.count == 1)
        #expect(w.sink.flows[0].events == ["0:+5", "1:+3", "0:+3"])
        #expect(w.sink.flows[0].reason == .closed)
    }

    @Test func snaplenCutSegmentIsAGap() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, text("abc"), wireLength: 10)
        w.send(seq: 111, text("z"))
        w.end()
        #expect(w.sink.flows[0].events == ["0:+3", "0:gap7", "0:+1"])
    }

    /// Found by fuzz/FuzzReassembly: a snaplen-cut retransmission whose overlap with delivered
    /// bytes is longer than what the capture kept of it.
    @Test func snaplenCutRetransmissionOverlappingMoreThanItHolds() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, text("abcdefgh"))
        w.send(seq: 101, text("ab"), wireLength: 10)
        w.send(seq: 111, text("z"))
        w.end()
        #expect(w.sink.flows[0].events == ["0:+8", "0:gap2", "0:+1"])
        #expect(w.table.counters.retransmittedBytes == 8)
    }

    @Test func captureStartingMidStream() {
        var w = Wire()
        w.send(seq: 5000, text("middle"))
        w.send(fromClient: false, seq: 9000, text("reply"))
        w.end()
        #expect(w.sink.flows.count == 1)
        #expect(!w.sink.flows[0].start.sawSYN)
        #expect(w.table.counters.flowsWithoutSYN == 1)
    }

    @Test func newSYNOnAClosedTupleIsANewConnection() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, text("one"))
        w.send(seq: 104, flags: [.fin, .ack])
        w.send(fromClient: false, seq: 700, flags: [.fin, .ack])
        w.send(seq: 5000, flags: [.syn])
        w.send(seq: 5001, text("two"))
        w.end()
        #expect(w.sink.flows.map(\.reason) == [.closed, .endOfInput])
        #expect(w.sink.flows.map(\.bytes[0]) == [text("one"), text("two")])
    }

    @Test func reusedTupleWhileOpenReplacesTheFlow() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, text("one"))
        w.send(seq: 100, flags: [.syn])  // retransmitted SYN: same connection
        w.send(seq: 8000, flags: [.syn])
        w.send(seq: 8001, text("two"))
        w.end()
        #expect(w.sink.flows.map(\.reason) == [.replaced, .endOfInput])
        #expect(w.table.counters.portReuses == 1)
    }

    /// A SYN captured after its own SYN-ACK (reordering, common with `tcpdump -i any`).
    @Test func synAfterSynAckIsTheSameConnection() {
        var w = Wire()
        w.send(fromClient: false, seq: 500, ack: 101, flags: [.syn, .ack])
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, text("data"))
        w.end()
        #expect(w.sink.flows.count == 1)
        #expect(w.sink.flows[0].start.originator.address == w.client)
        #expect(w.sink.flows[0].bytes[0] == text("data"))
    }

    /// Two SYN-ACKs with different initial sequence numbers (a SYN proxy's and the server's,
    /// or answers to two SYNs): the space the client acknowledges is followed.
    @Test func secondSynAckSpaceIsTakenWhenTheClientAcknowledgesIt() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(fromClient: false, seq: 500, ack: 101, flags: [.syn, .ack])
        w.send(fromClient: false, seq: 7000, ack: 101, flags: [.syn, .ack])
        w.send(seq: 101, ack: 7001)
        w.send(seq: 101, ack: 7001, text("hello"))
        w.send(fromClient: false, seq: 7001, ack: 106, text("ok"))
        w.end()
        #expect(w.sink.flows.count == 1)
        #expect(w.sink.flows[0].events == ["0:+5", "1:+2"])
        #expect(w.table.counters.sequenceSpacesAdopted == 1)
        #expect(w.table.counters.gaps == 0 && w.table.counters.outOfOrderSegments == 0)
    }

    /// The same, with the client acknowledging the first SYN-ACK: the second changes nothing,
    /// and data sent in its space is not followed (no hole opens for it).
    @Test func synAckTheClientDidNotAcknowledgeChangesNothing() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(fromClient: false, seq: 500, ack: 101, flags: [.syn, .ack])
        w.send(fromClient: false, seq: 1 << 30, ack: 101, flags: [.syn, .ack])
        w.send(fromClient: false, seq: 1 << 30 + 1, ack: 101, text("injected"))
        w.send(seq: 101, ack: 501, text("hello"))
        w.send(fromClient: false, seq: 501, ack: 106, text("ok"))
        w.end()
        #expect(w.sink.flows[0].events == ["0:+5", "1:+2"])
        #expect(w.table.counters.sequenceSpacesAdopted == 0 && w.table.counters.gaps == 0)
        #expect(w.table.counters.outOfWindowSegments == 1)
    }

    /// A SYN-ACK that acknowledges another SYN than the one captured (the client retried
    /// with a new initial sequence number that the capture missed): the client's next segment
    /// sits where the SYN-ACK said, and that space is followed.
    @Test func synAckAcknowledgingAnotherSYN() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(fromClient: false, seq: 500, ack: 1 << 30 + 1, flags: [.syn, .ack])
        w.send(seq: 1 << 30 + 1, ack: 501)
        w.send(seq: 1 << 30 + 1, ack: 501, text("hello"))
        w.send(fromClient: false, seq: 501, ack: 1 << 30 + 6, text("ok"))
        w.end()
        #expect(w.sink.flows.count == 1)
        #expect(w.sink.flows[0].events == ["0:+5", "1:+2"])
        #expect(w.table.counters.sequenceSpacesAdopted == 1 && w.table.counters.outOfWindowSegments == 0)
    }

    /// Data alone never moves a stream to another space: without a SYN-ACK naming it, bytes
    /// far from the window are ignored and counted, and the real bytes still arrive.
    @Test func outOfWindowDataAloneOpensNoHole() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(fromClient: false, seq: 500, ack: 101, flags: [.syn, .ack])
        w.send(seq: 1 << 30, ack: 501, text("injected"))
        w.send(seq: 101, ack: 501, text("hello"))
        w.end()
        #expect(w.sink.flows[0].events == ["0:+5"])
        #expect(w.table.counters.outOfWindowSegments == 1 && w.table.counters.gaps == 0)
    }

    /// A SYN-ACK with a new initial sequence number on a 4-tuple whose handshake was decided
    /// (the new connection's SYN not captured) starts a new connection; a retransmitted
    /// SYN-ACK of the decided one does not.
    @Test func synAckOnADecidedTupleStartsANewConnection() {
        Collector.decideAfterBytes = 4
        defer { Collector.decideAfterBytes = nil }
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(fromClient: false, seq: 500, ack: 101, flags: [.syn, .ack])
        w.send(seq: 101, ack: 501, text("abcd"))
        w.send(fromClient: false, seq: 500, ack: 101, flags: [.syn, .ack])
        #expect(w.sink.flows.count == 1 && w.table.counters.portReuses == 0)
        w.send(fromClient: false, seq: 90_000, ack: 1 << 30 + 1, flags: [.syn, .ack])
        w.send(seq: 1 << 30 + 1, ack: 90_001, text("next"))
        w.end()
        #expect(w.sink.flows.count == 2)
        #expect(w.sink.flows[1].bytes[0] == text("next"))
        #expect(w.sink.flows[1].start.originator.address == w.client)
        #expect(w.table.counters.portReuses == 1)
    }

    /// Once the consumer needs nothing more, later bytes are not delivered or buffered.
    @Test func decidedFlowsStopReceiving() {
        Collector.decideAfterBytes = 4
        defer { Collector.decideAfterBytes = nil }
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, text("abcd"))
        #expect(w.sink.flows.count == 1 && w.sink.flows[0].reason == .decided)
        w.send(seq: 200, text("far ahead"))
        w.send(seq: 105, text("more"))
        w.send(seq: 109, flags: [.fin, .ack])
        w.send(fromClient: false, seq: 1, flags: [.fin, .ack])
        w.end()
        #expect(w.sink.flows.count == 1)
        #expect(w.table.activeFlows == 0)
    }

    @Test func idleFlowsExpire() {
        var limits = ReassemblyLimits()
        limits.idleTimeoutNanos = 60_000_000_000
        var w = Wire(limits: limits)
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, text("x"))
        w.send(seq: 7, text("other"), clientPort: 40001, advance: 61_000_000_000)
        #expect(w.sink.flows.map(\.reason) == [.idle])
        #expect(w.table.counters.flowsExpired == 1)
    }

    @Test func fullTableEvictsTheLeastRecentlyActive() {
        var limits = ReassemblyLimits()
        limits.maximumFlows = 2
        var w = Wire(limits: limits)
        w.send(seq: 1, flags: [.syn], clientPort: 1)
        w.send(seq: 1, flags: [.syn], clientPort: 2)
        w.send(seq: 2, text("keep"), clientPort: 1)
        w.send(seq: 1, flags: [.syn], clientPort: 3)
        #expect(w.sink.flows.count == 1)
        #expect(w.sink.flows[0].reason == .evicted && w.sink.flows[0].start.originator.port == 2)
        #expect(w.table.activeFlows == 2)
    }

    @Test func heldBytesAreBounded() {
        var limits = ReassemblyLimits()
        limits.maximumPendingBytesPerDirection = 10
        var w = Wire(limits: limits)
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 111, text("0123456789"))
        w.send(seq: 121, text("abcdefghij"))
        w.end()
        #expect(w.sink.flows[0].events == ["0:gap10", "0:+10", "0:+10"])
        #expect(w.table.counters.bufferLimitGaps == 1)
    }

    /// Many out-of-order segments in one flow: held bytes never exceed the bound.
    @Test func manyOutOfOrderSegmentsStayBounded() {
        var w = Wire()
        w.send(seq: 0, flags: [.syn])
        for i in stride(from: 20_000, to: 1, by: -1) {
            w.send(seq: UInt32(i * 100 + 1), text(String(repeating: "z", count: 100)))
        }
        #expect(w.table.counters.peakBufferedBytes <= ReassemblyLimits().maximumPendingBytesPerDirection)
        w.end()
        #expect(w.sink.flows.count == 1)
    }
}

@Suite(.serialized) struct RetransmissionConflictTests {
    init() { Collector.decideAfterBytes = nil }

    /// SYNTHETIC SEGMENTS: a retransmission of delivered bytes with different content. The
    /// first copy stays delivered; the difference is counted.
    @Test func retransmissionOfDeliveredBytesWithDifferentContent() {
        var w = Wire()
        w.send(seq: 100, flags: [.syn])
        w.send(seq: 101, text("hello world"))
        w.send(seq: 101, text("hello world"))  // same bytes: a plain retransmission
        w.send(seq: 107, text("WORLD!"))  // overlaps "world" with other bytes, adds "!"
        w.end()
        #expect(w.sink.flows[0].bytes[0] == text("hello world!"))
        #expect(w.table.counters.conflictingOverlaps == 1)
        #expect(w.table.counters.retransmittedBytes == 16)
    }
}

/// SYNTHETIC FLOWS chosen the way an attacker would: keys the old multiply-xorshift mix
/// sent to one probe chain whatever its seed.
@Suite struct FlowTableHashTests {
    /// 200,000 IPv6 clients that differ only in the top nine bits of each 64-bit half: with
    /// SipHash no lookup walks far (random keys at this load give a longest run of a few
    /// dozen slots; one chain would be 200,000 long).
    @Test func craftedIPv6ClientsDoNotShareAChain() {
        var wire = Wire(limits: ReassemblyLimits())
        let server = IPAddress("2001:db8::443")!
        for n in 0..<200_000 {
            let client = IPAddress(
                high: 0x2001_0db8_0000_0000 ^ UInt64(n >> 9) << 55,
                low: 1 ^ UInt64(n & 0x1ff) << 55,
                isIPv6: true
            )
            wire.time += 1000
            let segment = TCPSegment(
                timestampNanos: wire.time,
                source: client,
                destination: server,
                sourcePort: 40000,
                destinationPort: 443,
                sequence: 1,
                acknowledgment: 0,
                flags: [.syn],
                window: 65535,
                timeToLive: 64,
                payload: UnsafeRawBufferPointer(start: nil, count: 0),
                payloadLength: 0,
                optionBytes: UnsafeRawBufferPointer(start: nil, count: 0)
            )
            wire.table.handle(segment, sink: &wire.sink)
        }
        #expect(wire.table.activeFlows == 200_000)
        #expect(wire.table.longestProbeSequence() < 200, "longest probe run \(wire.table.longestProbeSequence())")
    }
}
