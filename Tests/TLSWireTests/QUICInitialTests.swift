import Testing

@testable import TLSWire

/// The Initial keys of RFC 9001 Appendix A.1 (DCID 0x8394c8f03e515708).
@Suite struct QUICInitialTests {
    static let connectionID: [UInt8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08]

    func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

    @Test func rfc9001ClientAndServerKeys() throws {
        let client = try #require(
            QUICInitialKeys(version: .v1, destinationConnectionID: Self.connectionID, server: false)
        )
        #expect(hex(client.key.withUnsafeBytes { Array($0) }) == "1f369613dd76d5467730efcbe3b1a22d")
        #expect(hex(client.iv) == "fa044b2f42a3fd3b46fb255c")
        #expect(hex(client.headerProtection.withUnsafeBytes { Array($0) }) == "9f50449e04a0e810283a1e9933adedd2")
        let server = try #require(
            QUICInitialKeys(version: .v1, destinationConnectionID: Self.connectionID, server: true)
        )
        #expect(hex(server.key.withUnsafeBytes { Array($0) }) == "cf3a5331653c364c88f0f379b6067e37")
        #expect(hex(server.iv) == "0ac1493ca1905853b0bba03e")
        #expect(hex(server.headerProtection.withUnsafeBytes { Array($0) }) == "c206b8d9b9f0f37644430b490eeaa314")
    }

    /// DELIBERATELY MALFORMED: truncated and garbage datagrams give no Initial and no crash.
    @Test func malformedDatagrams() {
        let garbage: [[UInt8]] = [
            [0xc0], [0xc0, 0, 0, 0, 1, 0xff], [0xc0, 0, 0, 0, 1, 8, 1, 2, 3], Array(repeating: 0xc3, count: 64),
        ]
        for datagram in garbage {
            let packets = datagram.withUnsafeBytes {
                QUICDatagram.packets($0) { QUICInitialKeys(version: $0, destinationConnectionID: $1, server: false) }
            }
            #expect(packets.allSatisfy { if case .initial = $0 { return false } else { return true } })
        }
    }
}
