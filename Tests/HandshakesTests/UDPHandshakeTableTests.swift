import Testing

@testable import Handshakes
@testable import Packets

/// SYNTHETIC DATAGRAMS (addresses and ports only, no payload) chosen the way an attacker
/// would: the UDP handshake table (DTLS, QUIC) finds each flow from either side, and flows
/// crafted to collide under a weak mix do not share a probe chain.
@Suite struct UDPHandshakeTableTests {
    struct Nothing: UDPFlowState {
        var heldBytes: Int { 0 }
    }

    static func datagram(
        _ source: IPAddress,
        _ sourcePort: UInt16,
        _ destination: IPAddress,
        _ port: UInt16,
        at time: Int64
    )
        -> UDPDatagram
    {
        UDPDatagram(
            timestampNanos: time,
            source: source,
            destination: destination,
            sourcePort: sourcePort,
            destinationPort: port,
            timeToLive: 64,
            payload: UnsafeRawBufferPointer(start: nil, count: 0)
        )
    }

    /// 16,000 IPv6 clients that differ only in the top bits of each 64-bit half, each seen
    /// from both sides; then every other flow finished early (idle), and the rest found again.
    @Test func craftedClientsFoundFromBothSidesAndRemoved() {
        var table = UDPHandshakeTable<Nothing>(transport: .udp, maximumHeldBytes: .max)
        var sink = RecordSink(order: .firstClientHello)
        let server = IPAddress("2001:db8::443")!
        let clients = (0..<16_000).map { n in
            IPAddress(high: 0x2001_0db8_0000_0000 ^ UInt64(n >> 7) << 57, low: 1 ^ UInt64(n & 0x7f) << 57, isIPv6: true)
        }
        var opened: [ObjectIdentifier] = []
        for (n, client) in clients.enumerated() {
            let flow = table.flow(for: Self.datagram(client, 4433, server, 443, at: Int64(n)), sink: &sink) {
                Nothing()
            }
            opened.append(ObjectIdentifier(flow!.flow))
        }
        #expect(table.longestProbeSequence() < 100, "longest probe run \(table.longestProbeSequence())")
        for (n, client) in clients.enumerated() {
            // The server's answer finds the client's flow, as stream 1; nothing new opens.
            let found = table.flow(for: Self.datagram(server, 443, client, 4433, at: 20_000), sink: &sink) { nil }
            #expect(found.map { ObjectIdentifier($0.flow) } == opened[n] && found?.stream == 1)
        }
        // Idle past the timeout: all finish (none had a ClientHello, so each is counted).
        table.expire(at: 20_000 + UDPHandshakeTable<Nothing>.idleTimeoutNanos + 1, sink: &sink)
        #expect(sink.counters.udpFlowsWithoutClientHello == 16_000)
        #expect(table.flow(for: Self.datagram(clients[0], 4433, server, 443, at: 1), sink: &sink) { nil } == nil)
    }

    /// Flows finished out of insertion order leave every remaining one reachable (the
    /// backward shift closes each hole).
    @Test func removalsKeepTheRestReachable() {
        var table = UDPHandshakeTable<Nothing>(transport: .udp, maximumHeldBytes: .max)
        var sink = RecordSink(order: .firstClientHello)
        let server = IPAddress("192.0.2.1")!
        let client = IPAddress("198.51.100.7")!
        // 3,000 ports; every third one is touched again so the idle order differs from the table's.
        for port in 0..<3000 {
            _ = table.flow(for: Self.datagram(client, UInt16(10_000 + port), server, 4433, at: 0), sink: &sink) {
                Nothing()
            }
        }
        let late = UDPHandshakeTable<Nothing>.idleTimeoutNanos
        for port in stride(from: 0, to: 3000, by: 3) {
            _ = table.flow(for: Self.datagram(server, 4433, client, UInt16(10_000 + port), at: late), sink: &sink) {
                nil
            }
        }
        table.expire(at: late + 1, sink: &sink)
        #expect(sink.counters.udpFlowsWithoutClientHello == 2000)
        for port in 0..<3000 {
            let found = table.flow(
                for: Self.datagram(client, UInt16(10_000 + port), server, 4433, at: late + 2),
                sink: &sink
            ) {
                nil
            }
            #expect((found != nil) == (port % 3 == 0), "port \(10_000 + port)")
        }
    }
}
