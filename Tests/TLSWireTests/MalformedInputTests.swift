import TLSWire
import TestSupport
import Testing

/// One test per corruption. The bytes here are HAND-MADE AND DELIBERATELY MALFORMED: a
/// minimal well-formed ClientHello built below, then broken in one way per test.
enum HandMade {
    /// A ClientHello record (RFC 8446 4.1.2) with the given extensions; `adjust` changes the
    /// declared extensions length so it contradicts the bytes.
    static func clientHelloRecord(
        sessionID: [UInt8] = [],
        extensions: [(UInt16, [UInt8])],
        extensionsLengthAdjust: Int = 0
    ) -> [UInt8] {
        var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0x11, count: 32)
        body += [UInt8(sessionID.count)] + sessionID
        body += [0x00, 0x02, 0x13, 0x01]  // one cipher suite
        body += [0x01, 0x00]  // null compression
        var block: [UInt8] = []
        for (type, data) in extensions {
            block += be16(Int(type)) + be16(data.count) + data
        }
        body += be16(block.count + extensionsLengthAdjust) + block
        let message: [UInt8] = [0x01] + be24(body.count) + body
        return [0x16, 0x03, 0x01] + be16(message.count) + message
    }

    static func serverName(_ name: String) -> (UInt16, [UInt8]) {
        let host = Array(name.utf8)
        let entry: [UInt8] = [0x00] + be16(host.count) + host
        return (0, be16(entry.count) + entry)
    }

    static func be16(_ v: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
    static func be24(_ v: Int) -> [UInt8] {
        [UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }
    static let alertRecord: [UInt8] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]
}

@Suite struct MalformedInputTests {
    @Test func wellFormedBaseline() {
        let events = decode(HandMade.clientHelloRecord(extensions: [HandMade.serverName("example.test")])).events
        #expect(events == ["ClientHello sni=example.test sid=0 ext=1"])
    }

    @Test func recordLengthOverLimitStopsTheDirection() {
        var second = HandMade.alertRecord
        second[3] = 0x48
        second[4] = 0x01  // 18433 > 2^14 + 2048
        let events = decode(HandMade.clientHelloRecord(extensions: []) + second + HandMade.alertRecord).events
        #expect(events == ["ClientHello sni=- sid=0 ext=0", "malformed: record length 18433 exceeds 2^14+2048"])
        // As the very first bytes, an impossible record header means the stream is not TLS.
        #expect(decode(second).events == ["notTLS"])
    }

    @Test func unknownContentTypeStopsTheDirection() {
        var second = HandMade.alertRecord
        second[0] = 99
        let events = decode(HandMade.clientHelloRecord(extensions: []) + second + HandMade.alertRecord).events
        #expect(events.count == 2)
        #expect(events[1].hasPrefix("malformed: record with content type 99"))
    }

    @Test func extensionsLengthPastTheMessageIsMalformedButFramingGoesOn() {
        let bytes = HandMade.clientHelloRecord(extensions: [HandMade.serverName("a.test")], extensionsLengthAdjust: 5)
        let events = decode(bytes + HandMade.alertRecord).events
        #expect(events == ["malformed: ClientHello: extensions length exceeds message", "Alert 2 handshake_failure"])
    }

    @Test func extensionLengthPastTheBlock() {
        var bytes = HandMade.clientHelloRecord(extensions: [HandMade.serverName("a.test")])
        // The server_name extension's own length field sits 4 bytes before its data, at the end.
        let extensionLengthOffset = bytes.count - HandMade.serverName("a.test").1.count - 2
        bytes[extensionLengthOffset + 1] &+= 1
        #expect(decode(bytes).events == ["malformed: ClientHello: extension length exceeds extensions block"])
    }

    @Test func duplicateExtensionIsMalformed() {
        let bytes = HandMade.clientHelloRecord(extensions: [
            HandMade.serverName("a.test"), HandMade.serverName("b.test"),
        ])
        #expect(decode(bytes).events == ["malformed: ClientHello: duplicate extension 0"])
    }

    @Test func greaseExtensionsMayRepeat() {
        let bytes = HandMade.clientHelloRecord(extensions: [(0x0a0a, []), HandMade.serverName("a.test"), (0x1a1a, [])])
        let recorder = decode(bytes)
        #expect(recorder.clientHellos.first?.extensionTypes.map(\.isGREASE) == [true, false, true])
    }

    /// Types of 64 and above are checked inline for the first 16, then in a set: a repeat is
    /// found on either path, and distinct types pass however many there are.
    @Test func duplicatesAreFoundAmongManyUnusualTypes() {
        let distinct = (0..<40).map { (UInt16(0x1000 + $0), [UInt8]()) }
        let recorder = decode(HandMade.clientHelloRecord(extensions: distinct))
        #expect(recorder.clientHellos.first?.extensionTypes.map(\.rawValue) == distinct.map(\.0))
        #expect(recorder.clientHellos.first?.extensionCount == 40)
        for repeated in [0x1003, 0x1025] as [UInt16] {
            let events = decode(HandMade.clientHelloRecord(extensions: distinct + [(repeated, [])])).events
            #expect(events == ["malformed: ClientHello: duplicate extension \(repeated)"])
        }
        // A low type after many high ones, and a high one that differs from all in one lane.
        let mixed = distinct + [(43, [0x02, 0x03, 0x04]), (10, [0x00, 0x02, 0x00, 0x1d]), (43, [0x02, 0x03, 0x04])]
        #expect(
            decode(HandMade.clientHelloRecord(extensions: mixed)).events == [
                "malformed: ClientHello: duplicate extension 43"
            ]
        )
    }

    /// ALPN names are read from the hello's bytes when asked for, each as `WireText` decodes
    /// it, and compared in place with a list kept from another hello.
    @Test func alpnNamesAreReadAndComparedInPlace() throws {
        func alpn(_ names: [[UInt8]]) -> (UInt16, [UInt8]) {
            let list = names.flatMap { [UInt8($0.count)] + $0 }
            return (16, HandMade.be16(list.count) + list)
        }
        let names: [[UInt8]] = [Array("h2".utf8), Array("http/1.1".utf8), [0x68, 0xff], []]
        let hello = try #require(decode(HandMade.clientHelloRecord(extensions: [alpn(names)])).clientHellos.first)
        let decoded = names.map { WireText.decode($0[...]) }
        #expect(hello.alpn == decoded)
        #expect(hello.offersALPN(decoded))
        #expect(!hello.offersALPN(Array(decoded.dropLast())))
        #expect(!hello.offersALPN(decoded + ["h3"]))
        #expect(!hello.offersALPN(["h2", "http/1.0"] + decoded.dropFirst(2)))
        let none = try #require(decode(HandMade.clientHelloRecord(extensions: [])).clientHellos.first)
        #expect(none.alpn.isEmpty && none.offersALPN([]) && !none.offersALPN(["h2"]))
    }

    /// Errors compare by code: a parse that fails for another reason, in another place, is
    /// still the same kind of failure.
    @Test func errorsCompareByCode() throws {
        // The ClientHello body: past the record (5 bytes) and message (4 bytes) headers.
        let body = Array(
            HandMade.clientHelloRecord(sessionID: [UInt8](repeating: 7, count: 33), extensions: []).dropFirst(9)
        )
        var thrown: TLSWireError?
        body.withUnsafeBytes { bytes in
            var cursor = ByteCursor(bytes)
            do throws(TLSWireError) { _ = try ClientHello(parsing: &cursor) } catch { thrown = error }
        }
        let error = try #require(thrown)
        #expect(error.code == .decodeError)
        #expect(error == TLSWireError(.decodeError, "another reason"))
        #expect(error != TLSWireError(.tooLarge, error.reason))
        #expect(Set([error, TLSWireError(.decodeError, "x"), TLSWireError(.tooLarge, "y")]).count == 2)
    }

    /// Each breakage gets the code of the rule it breaks, named after the alert a TLS peer
    /// would send (RFC 8446 6.2).
    @Test func codesNameTheRuleBroken() {
        var overflow = HandMade.alertRecord
        overflow[3] = 0x48
        overflow[4] = 0x01  // 18433 > 2^14 + 2048
        var foreign = HandMade.alertRecord
        foreign[0] = 99
        let hello = HandMade.clientHelloRecord(extensions: [])
        let cases: [([UInt8], TLSWireError.Code)] = [
            (hello + overflow, .recordOverflow),
            (hello + foreign, .notTLS),
            (
                HandMade.clientHelloRecord(extensions: [HandMade.serverName("a.test"), HandMade.serverName("b.test")]),
                .illegalParameter
            ),
            (HandMade.clientHelloRecord(sessionID: [UInt8](repeating: 7, count: 33), extensions: []), .decodeError),
            (
                HandMade.clientHelloRecord(extensions: [HandMade.serverName("a.test")], extensionsLengthAdjust: 5),
                .decodeError
            ),
        ]
        for (bytes, code) in cases {
            let errors = decode(bytes).errors
            #expect(errors.map(\.code) == [code], "\(errors.map(\.reason))")
        }
    }

    @Test func sessionIDLongerThan32IsMalformed() {
        let bytes = HandMade.clientHelloRecord(sessionID: [UInt8](repeating: 7, count: 33), extensions: [])
        #expect(decode(bytes).events == ["malformed: ClientHello: bad session_id length"])
    }

    @Test func serverNameListLengthMismatch() {
        var (type, data) = HandMade.serverName("a.test")
        data[1] &+= 3
        #expect(
            decode(HandMade.clientHelloRecord(extensions: [(type, data)])).events == [
                "malformed: server_name: bad list length"
            ]
        )
    }

    /// A handshake length of 2^24-1 is reported by type and length and passed over, never buffered.
    @Test func maximumHandshakeLengthIsSkippedNotBuffered() {
        let message: [UInt8] = [0x0b, 0xff, 0xff, 0xff] + [UInt8](repeating: 0, count: 100)
        let record: [UInt8] = [0x16, 0x03, 0x03] + HandMade.be16(message.count) + message
        var decoder = TLSStreamDecoder(streamTag: 0)
        var recorder = EventRecorder()
        for _ in 0..<50 { record.withUnsafeBytes { decoder.feed($0, handler: &recorder) } }
        #expect(recorder.events == ["Handshake 11 len=16777215"])
        #expect(decoder.bufferedBytes == 0)
    }

    /// Bytes that end inside a message are incomplete, not malformed: no event until the rest comes.
    @Test func incompleteIsNotMalformed() {
        let bytes = HandMade.clientHelloRecord(extensions: [HandMade.serverName("example.test")])
        var decoder = TLSStreamDecoder(streamTag: 0)
        var recorder = EventRecorder()
        bytes[..<(bytes.count - 3)].withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        #expect(recorder.events.isEmpty)
        #expect(!decoder.isStopped)
        bytes[(bytes.count - 3)...].withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        #expect(recorder.events == ["ClientHello sni=example.test sid=0 ext=1"])
    }

    @Test func notTLS() {
        let events = decode(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)).events
        #expect(events == ["notTLS"])
    }

    /// Found by fuzz/FuzzTLSWire: an SSL 2.0 record shorter than the five bytes kept to
    /// identify the stream, arriving in small pieces. Same events as when it arrives at once.
    @Test func sslv2RecordShorterThanTheIdentificationBytes() {
        let bytes: [UInt8] = [
            0x80, 0x00, 0x01, 0x03, 0x00, 0xed, 0x96, 0x7e, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x03, 0xd1, 0x0a, 0x6a, 0x64, 0xc2, 0x03,
        ]
        let whole = decode(bytes).events
        #expect(whole.first?.hasPrefix("malformed") == true)
        for size in 1...4 {
            #expect(
                decode(bytes, chunks: Array(repeating: size, count: bytes.count)).events == whole,
                "pieces of \(size)"
            )
        }
    }

    /// A gap inside a record of known length keeps the framing: the next record parses.
    @Test func gapInsideARecordKeepsFraming() {
        let first = HandMade.clientHelloRecord(extensions: [HandMade.serverName("example.test")])
        var decoder = TLSStreamDecoder(streamTag: 0)
        var recorder = EventRecorder()
        first[..<20].withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        decoder.skip(10, handler: &recorder)
        first[30...].withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        HandMade.alertRecord.withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        #expect(recorder.events == ["gap framingKept=true", "Alert 2 handshake_failure"])
    }

    /// A gap at a record boundary loses the framing; the decoder finds the next record header.
    @Test func gapAtABoundaryResynchronises() {
        let hello = HandMade.clientHelloRecord(extensions: [HandMade.serverName("example.test")])
        var decoder = TLSStreamDecoder(streamTag: 0)
        var recorder = EventRecorder()
        hello.withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        decoder.skip(7, handler: &recorder)
        let junk: [UInt8] = [0x99, 0x42, 0x00, 0x13]
        (junk + HandMade.alertRecord).withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        #expect(
            recorder.events == [
                "ClientHello sni=example.test sid=0 ext=1", "gap framingKept=false", "Alert 2 handshake_failure",
            ]
        )
    }
}

@Suite struct ByteCursorTests {
    @Test func shortReadsReturnNilAndDoNotMove() {
        let bytes: [UInt8] = [0x00, 0x05, 0x01, 0x02]
        bytes.withUnsafeBytes { raw in
            var cursor = ByteCursor(raw)
            #expect(cursor.readLengthPrefixed(prefixBytes: 2) == nil)
            #expect(cursor.position == 0)
            #expect(cursor.readUInt32() == 0x0005_0102)
            #expect(cursor.readUInt8() == nil)
            #expect(cursor.position == 4)
        }
    }

    @Test func lengthPrefixedSliceIsCut() {
        let bytes: [UInt8] = [0x02, 0xaa, 0xbb, 0xcc]
        bytes.withUnsafeBytes { raw in
            var cursor = ByteCursor(raw)
            var inner = cursor.readLengthPrefixed(prefixBytes: 1)!
            #expect(inner.readUInt16() == 0xaabb)
            #expect(inner.readUInt8() == nil)  // cannot read past the declared length
            #expect(cursor.readUInt8() == 0xcc)
        }
    }

    @Test func greaseValues() {
        #expect(ProtocolVersion(rawValue: 0x7a7a).isGREASE)
        #expect(!ProtocolVersion(rawValue: 0x7a7b).isGREASE)
        #expect(CipherSuite(rawValue: 0xfafa).isGREASE)
        #expect(CipherSuite(rawValue: 0x1302).description == "TLS_AES_256_GCM_SHA384")
        #expect(CipherSuite(rawValue: 0x0a0b).description == "0x0a0b")
        #expect(ProtocolVersion(rawValue: 0x7f17).description == "0x7f17")
        #expect(ProtocolVersion(rawValue: 0x7e01).isTLS13Family)
    }
}
