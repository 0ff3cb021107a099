import Crypto
import Testing

@testable import TLSWire

/// The Initial keys of RFC 9001 Appendix A.1 (DCID 0x8394c8f03e515708).
@Suite struct QUICInitialTests {
    static let connectionID: [UInt8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08]

    func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

    @Test func rfc9001ClientAndServerKeys() throws {
        func keys(server: Bool) throws -> (key: [UInt8], iv: [UInt8], headerProtection: [UInt8]) {
            let secret = try #require(
                QUICInitialKeys.secret(version: .v1, destinationConnectionID: Self.connectionID, server: server)
            )
            let id = try #require(QUICConnectionID(Self.connectionID))
            #expect(id.bytes == Self.connectionID)
            #expect(QUICInitialKeys(version: .v1, destinationConnectionID: id, server: server) != nil)
            return try #require(QUICPacketKeys.derive(version: .v1, suite: .aes128GCM, secret: secret))
        }
        let client = try keys(server: false)
        #expect(hex(client.key) == "1f369613dd76d5467730efcbe3b1a22d")
        #expect(hex(client.iv) == "fa044b2f42a3fd3b46fb255c")
        #expect(hex(client.headerProtection) == "9f50449e04a0e810283a1e9933adedd2")
        let server = try keys(server: true)
        #expect(hex(server.key) == "cf3a5331653c364c88f0f379b6067e37")
        #expect(hex(server.iv) == "0ac1493ca1905853b0bba03e")
        #expect(hex(server.headerProtection) == "c206b8d9b9f0f37644430b490eeaa314")
    }

    /// The Initial key cache re-keys an evicted entry's objects in place when nothing else
    /// holds them: the keys must be those a fresh derivation gives, and keys another value
    /// holds must not change. Checked against RFC 9001 A.1 (IV), A.2 (the header protection
    /// mask of the client Initial's sample) and a message sealed by swift-crypto under A.1's key.
    @Test func rederivedKeysEqualFreshOnesAndSharedKeysStay() throws {
        let rfcID = try #require(QUICConnectionID(Self.connectionID))
        let otherID = try #require(QUICConnectionID([1, 2, 3, 4, 5, 6, 7, 8, 9]))
        var keys = try #require(QUICInitialKeys(version: .v1, destinationConnectionID: otherID, server: false))
        let sample: [UInt8] = [
            0xd1, 0xb1, 0xc9, 0x8d, 0xd7, 0x68, 0x9f, 0xb8, 0xec, 0x11, 0xd2, 0x42, 0xb1, 0x23, 0xdc, 0x9b,
        ]
        func mask(_ keys: QUICInitialKeys) -> [UInt8] {
            guard let mask = sample.withUnsafeBytes({ keys.packetKeys.headerProtectionMask(sample: $0) }) else {
                return []
            }
            return [mask.0, mask.1, mask.2, mask.3, mask.4]
        }
        let otherMask = mask(keys)

        // Shared: refused, and the holder's keys are untouched.
        let holder = keys
        let sharedRederived = keys.rederive(version: .v1, destinationConnectionID: rfcID, server: false)
        #expect(!sharedRederived)
        #expect(mask(holder) == otherMask)

        // Alone: re-keyed in place to RFC 9001's client keys.
        _ = consume holder
        let aead = ObjectIdentifier(keys.packetKeys.key)
        let rederived = keys.rederive(version: .v1, destinationConnectionID: rfcID, server: false)
        #expect(rederived)
        #expect(ObjectIdentifier(keys.packetKeys.key) == aead, "the same object, re-keyed")
        #expect(hex(keys.packetKeys.iv) == "fa044b2f42a3fd3b46fb255c")
        #expect(hex(mask(keys)) == "437b9aec36")
        let key = SymmetricKey(data: [
            0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46, 0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1, 0xa2, 0x2d,
        ])
        let nonce = try AES.GCM.Nonce(data: keys.packetKeys.iv)
        let sealed = try AES.GCM.seal(Array("client hello".utf8), using: key, nonce: nonce, authenticating: [1, 2, 3])
        let opened = (sealed.ciphertext + sealed.tag).withUnsafeBytes {
            keys.packetKeys.key.open(nonce: keys.packetKeys.iv, sealed: $0, additionalData: [1, 2, 3])
        }
        #expect(opened == Array("client hello".utf8))
        #expect(mask(keys) != otherMask)
    }

    /// DELIBERATELY MALFORMED: truncated and garbage datagrams give no Initial and no crash.
    @Test func malformedDatagrams() {
        let garbage: [[UInt8]] = [
            [0xc0], [0xc0, 0, 0, 0, 1, 0xff], [0xc0, 0, 0, 0, 1, 8, 1, 2, 3], Array(repeating: 0xc3, count: 64),
        ]
        for datagram in garbage {
            var plaintext: [UInt8] = []
            let packets = datagram.withUnsafeBytes {
                QUICDatagram.packets($0, plaintext: &plaintext) {
                    QUICInitialKeys(version: $0, destinationConnectionID: $1, server: false)
                }
            }
            #expect(packets.allSatisfy { if case .initial = $0 { return false } else { return true } })
        }
    }

    /// RFC 9001 A.5: a ChaCha20-Poly1305 short header packet, from a 1-RTT secret: the keys,
    /// ChaCha20 header protection (5.4.4), and the packet number recovered next to the
    /// largest one before it (RFC 9000 A.3).
    @Test func rfc9001ChaCha20ShortHeaderPacket() throws {
        func bytes(_ text: String) -> [UInt8] { TLSWireTests.hex(Substring(text)) }
        let secret = bytes("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b")
        let keys = try #require(QUICPacketKeys(version: .v1, suite: CipherSuite(rawValue: 0x1303), secret: secret))
        let derived = try #require(QUICPacketKeys.derive(version: .v1, suite: .chacha20Poly1305, secret: secret))
        #expect(hex(derived.key) == "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8")
        #expect(hex(derived.iv) == "e0459b3474bdd0e44a41c144")
        #expect(hex(derived.headerProtection) == "25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4")
        let packet = bytes("4cfe4189655e5cd55c41f69080575d7999c25a5bfb")
        let opened = packet.withUnsafeBytes {
            QUICDatagram.open($0, packetNumberOffset: 1, keys: keys, largest: 654_360_563)
        }
        #expect(opened?.payload == [0x01] && opened?.number == 654_360_564)
        // A wrong largest packet number gives the wrong nonce: nothing opens.
        let wrong = packet.withUnsafeBytes { QUICDatagram.open($0, packetNumberOffset: 1, keys: keys, largest: -1) }
        #expect(wrong == nil)
    }

    /// RFC 9000 A.3's example: 0x9b32 after 0xa82f30ea is 0xa82f9b32.
    @Test func packetNumbersAreRecoveredNextToTheLargest() {
        #expect(QUICDatagram.decodePacketNumber(largest: 0xa82f_30ea, truncated: 0x9b32, bits: 16) == 0xa82f_9b32)
        #expect(QUICDatagram.decodePacketNumber(largest: -1, truncated: 0, bits: 8) == 0)
        #expect(QUICDatagram.decodePacketNumber(largest: 255, truncated: 0x01, bits: 8) == 257)
    }
}
