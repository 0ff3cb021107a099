import Foundation
import Testing

@testable import Extraction
@testable import Handshakes
@testable import Packets

/// The reader's batches to a worker. The segments here are HAND-MADE: their bytes are
/// arbitrary, only their copying is under test.
@Suite struct PacketForwardingTests {
    static func segment(payload: [UInt8], options: [UInt8], in bytes: UnsafeRawBufferPointer) -> TCPSegment {
        TCPSegment(
            timestampNanos: 1_700_000_000_123_456_789,
            source: IPAddress(high: 0, low: 0xffff_0a00_0001, isIPv6: false),
            destination: IPAddress(high: 0x2001_0db8_0000_0000, low: 1, isIPv6: true),
            sourcePort: 50_000,
            destinationPort: 443,
            sequence: 0xdead_beef,
            acknowledgment: 7,
            flags: [.ack, .psh],
            window: 512,
            timeToLive: 64,
            payload: UnsafeRawBufferPointer(rebasing: bytes[options.count...]),
            payloadLength: payload.count + 3,
            optionBytes: UnsafeRawBufferPointer(rebasing: bytes[..<options.count])
        )
    }

    /// Segments of every size, datagrams and key log texts come out of a batch in order,
    /// with their fields and bytes, and their pointers into the batch; an entry larger than
    /// a standard batch gets a batch of its own size.
    @Test func entriesComeOutAsTheyWentIn() {
        let queue = ForwardingQueue()
        let sizes = [0, 1, 15, 16, 1460, 70_000, ForwardedBatch.standardCapacity]
        var sent: [(payload: [UInt8], options: [UInt8])] = []
        var received: [(payload: [UInt8], options: [UInt8], segment: TCPSegment)] = []
        var keyLogs: [String] = []
        var datagrams: [[UInt8]] = []
        for (index, size) in sizes.enumerated() {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            let options: [UInt8] = index % 2 == 0 ? [] : [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]
            sent.append((payload, options))
            (options + payload).withUnsafeBytes { bytes in
                let segment = Self.segment(payload: payload, options: options, in: bytes)
                let room = ForwardedBatch.entryBytes(segment) + ForwardedBatch.headerBytes
                let batch = queue.emptyBatch(room: room)
                #expect(batch.capacity >= room)
                batch.used = ForwardedBatch.write(segment, at: batch.base) - batch.base
                #expect(batch.append(keyLog: Array("CLIENT_RANDOM \(index)".utf8), source: "dsb \(index)"))
                let datagram = UDPDatagram(
                    timestampNanos: 5,
                    source: segment.source,
                    destination: segment.destination,
                    sourcePort: 4433,
                    destinationPort: 4434,
                    timeToLive: 9,
                    payload: UnsafeRawBufferPointer(rebasing: bytes[options.count...].prefix(200))
                )
                if ForwardedBatch.entryBytes(datagram) <= batch.capacity - batch.used {
                    batch.used = ForwardedBatch.write(datagram, at: batch.base + batch.used) - batch.base
                }
                queue.push(batch)
            }
            let batch = queue.next(beforeWaiting: {})!
            batch.forEachEntry { entry in
                switch entry {
                case let .tcp(segment):
                    #expect(segment.payload.baseAddress! >= UnsafeRawPointer(batch.base))
                    #expect(segment.payload.baseAddress! + segment.payload.count <= batch.base + batch.used)
                    received.append((Array(segment.payload), Array(segment.optionBytes), segment))
                case let .udp(datagram):
                    #expect(datagram.sourcePort == 4433 && datagram.timeToLive == 9)
                    datagrams.append(Array(datagram.payload))
                case let .keyLog(text, source): keyLogs.append("\(source): \(String(decoding: text, as: UTF8.self))")
                }
            }
            queue.giveBack(batch)
        }
        queue.close()
        #expect(queue.next(beforeWaiting: {}) == nil)
        #expect(received.count == sizes.count)
        for (index, (payload, options, segment)) in received.enumerated() {
            #expect(payload == sent[index].payload, "size \(sizes[index])")
            #expect(options == sent[index].options)
            #expect(segment.payloadLength == sizes[index] + 3)
            #expect(segment.sequence == 0xdead_beef && segment.flags == [.ack, .psh] && segment.window == 512)
            #expect(segment.timestampNanos == 1_700_000_000_123_456_789)
            #expect(segment.destination.high == 0x2001_0db8_0000_0000 && segment.destination.isIPv6)
        }
        #expect(keyLogs == sizes.indices.map { "dsb \($0): CLIENT_RANDOM \($0)" })
        #expect(datagrams.count == sizes.count - 1, "all but the one filling a standard batch")
        #expect(datagrams.first == [])
    }

    /// The reader fills at most `batchesInFlight` batches ahead of its worker; a batch of a
    /// larger size is let go when given back, so memory stays at the standard batches.
    /// Batches in flight to all workers stay within 8 MiB up to nine workers and 16 MiB at
    /// the 64 `--jobs` allows, at 64 KiB to 256 KiB each.
    @Test func batchMemoryIsBoundedForEveryWorkerCount() {
        #expect(ForwardedBatch.capacity(forWorkers: 2) == ForwardedBatch.standardCapacity)
        for workers in 2...64 {
            let capacity = ForwardedBatch.capacity(forWorkers: workers)
            #expect(capacity >= ForwardedBatch.smallestCapacity && capacity <= ForwardedBatch.standardCapacity)
            let total = capacity * ForwardingQueue.batchesInFlight * (workers - 1)
            #expect(total <= (workers <= 9 ? 8 << 20 : 16 << 20), "\(workers) workers: \(total)")
        }
        #expect(ForwardedBatch.capacity(forWorkers: 9) * 4 * 8 <= ForwardedBatch.allWorkersInFlight)
    }

    @Test func batchesInFlightAreBounded() {
        let queue = ForwardingQueue()
        var batches: [ForwardedBatch] = []
        for _ in 0..<ForwardingQueue.batchesInFlight { batches.append(queue.emptyBatch(room: 1)) }
        let reader = Thread {
            // Waits until the worker gives one back.
            let big = queue.emptyBatch(room: ForwardedBatch.standardCapacity * 2)
            queue.push(big)
            queue.close()
        }
        reader.start()
        usleep(20_000)
        queue.giveBack(batches.removeLast())
        let big = queue.next(beforeWaiting: {})
        #expect(big?.capacity == ForwardedBatch.standardCapacity * 2)
        queue.giveBack(big!)
        #expect(queue.next(beforeWaiting: {}) == nil)
    }

    /// Every worker count spreads flows over every worker, both directions of a flow to the
    /// same one, and never names a worker out of range.
    @Test func workerChoiceIsSymmetricAndInRange() {
        for count in [1, 2, 3, 7, 64] {
            let choice = WorkerChoice(among: count)
            var used = Set<Int>()
            for index in 0..<4000 {
                let client = IPAddress(high: UInt64(index) << 40, low: UInt64(index) &* 0x9e37, isIPv6: index % 3 == 0)
                let server = IPAddress(high: 0, low: 0xffff_7f00_0001, isIPv6: false)
                let port = UInt16(truncatingIfNeeded: 1024 + index)
                let forward = choice.worker(client, server, port, 443)
                #expect(forward == choice.worker(server, client, 443, port))
                #expect((0..<count).contains(forward))
                used.insert(forward)
            }
            #expect(used.count == count)
        }
        for share in [0.0, 0.3, 0.9] {
            let choice = WorkerChoice(among: 2, firstShare: share)
            let first = (0..<10_000).filter { index in
                choice.worker(
                    IPAddress(high: 0, low: UInt64(index), isIPv6: false),
                    IPAddress(high: 0, low: 1, isIPv6: false),
                    UInt16(index % 60_000),
                    443
                ) == 0
            }.count
            #expect(abs(Double(first) / 10_000 - share) < 0.05, "share \(share): \(first)")
        }
    }
}
