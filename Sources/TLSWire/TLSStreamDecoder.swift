/// Limits with their sources, each declared beside the code it bounds.
public enum TLSLimits {
    /// TLSCiphertext.length may not exceed 2^14 + 2048 (RFC 5246 6.2.3).
    public static let maximumRecordLength = (1 << 14) + 2048
    /// Largest handshake message buffered whole (here and in `DTLSDecoder`). OpenSSL's
    /// default max_cert_list is 100 KiB; longer messages are skipped over, not buffered.
    public static let maximumBufferedHandshakeMessage = 128 * 1024
    /// Bytes scanned for a record header after a gap before giving up on a direction.
    public static let maximumResyncScan = 64 * 1024
}

/// What the decoder found in one direction of a stream.
public enum TLSEvent {
    case clientHello(ClientHello)
    case serverHello(ServerHello)
    case certificate(CertificateChain)
    case newSessionTicket(NewSessionTicket)
    /// TLS 1.3, read with a key log: the server's EncryptedExtensions.
    case encryptedExtensions(EncryptedExtensions)
    /// Any other handshake message in the clear, by type and body length.
    case handshake(HandshakeType, length: Int)
    case changeCipherSpec
    case alert(Alert)
    /// A record whose content is not readable: application_data, or handshake and alert
    /// records after ChangeCipherSpec.
    case encryptedRecord(ContentType, length: Int)
    case heartbeat(length: Int)
    /// A TLS 1.3 record did not open with the key log's secrets: decryption stops there.
    case undecryptable
    case sslv2ServerHello(SSLv2ServerHello)
    /// The direction does not start like TLS or SSL 2.0.
    case notTLS
    case malformed(TLSWireError)
    /// Bytes were lost in this direction; `resynchronised` tells whether record framing
    /// could be kept (the loss was inside a record of known length).
    case gap(framingKept: Bool)
}

/// What the handler wants the decoder to do next.
public enum TLSDirective {
    case proceed
    /// Handshake and alert records from here on are ciphertext (TLS 1.2 and earlier, after
    /// ChangeCipherSpec, RFC 5246 7.1).
    case ciphertextFromHere
    /// Nothing more is needed from this direction.
    case stop
    /// TLS 1.3 records from here on are opened with these keys (the server's, from a key log).
    case decryptFromHere(TLS13Decryption)
    /// TLS 1.2 records from here on (after this direction's ChangeCipherSpec) are opened with
    /// these keys (from a key log's master secret).
    case decryptTLS12FromHere(TLS12Decryption)
}

public protocol TLSEventHandler {
    /// `stream` is the decoder's `streamTag`.
    mutating func handle(_ event: consuming TLSEvent, stream: Int) -> TLSDirective
}

/// Turns one direction's in-order bytes into TLS events: record framing (RFC 8446 5.1),
/// handshake messages split across records or packed several to a record (RFC 8446 5.1),
/// and the SSL 2.0-compatible ClientHello (RFC 5246 E.2).
///
/// Pure: no I/O and no knowledge of TCP. A record that fits in the bytes handed to `feed`
/// is parsed in place; only a record split across calls is copied. Incomplete input is
/// carried to the next call; a malformed record header stops the direction with a
/// `.malformed` event; a malformed handshake message is reported and framing goes on.
public struct TLSStreamDecoder {
    private enum Phase: Equatable {
        case identifying
        case sslv2
        case records
        /// Passing over the rest of a record damaged by a gap.
        case skipping(Int)
        case resynchronising
        case stopped
    }

    public let streamTag: Int
    private var phase = Phase.identifying
    private var ciphertext = false
    /// Set when a key log gives this direction's TLS 1.3 secrets.
    private var decryption: TLS13Decryption?
    /// Set when a key log gives a TLS 1.2 master secret, after this direction's ChangeCipherSpec.
    private var tls12: TLS12Decryption?
    /// A record (header included) split across `feed` calls.
    private var carried: [UInt8] = []
    /// A handshake message split across records.
    private var handshakeCarry: [UInt8] = []
    /// Bytes of an oversized handshake message still to pass over.
    private var handshakeSkip = 0
    private var resyncScanned = 0
    public private(set) var recordsDecoded = 0

    public init(streamTag: Int) { self.streamTag = streamTag }

    public var isStopped: Bool { phase == .stopped }
    /// Bytes held between calls (for memory accounting): the buffers' capacity, since that
    /// is what a record or handshake message still arriving costs.
    public var bufferedBytes: Int { carried.capacity + handshakeCarry.capacity }

    // MARK: input

    public mutating func feed<H: TLSEventHandler>(_ bytes: UnsafeRawBufferPointer, handler: inout H) {
        var input = ByteCursor(bytes)
        while !input.isEmpty {
            switch phase {
            case .stopped:
                return
            case let .skipping(count):
                let passed = min(count, input.remaining)
                _ = input.readSlice(length: passed)
                phase = count == passed ? .records : .skipping(count - passed)
            case .resynchronising:
                resynchronise(&input, handler: &handler)
            case .identifying:
                guard identify(&input, handler: &handler) else { return }
            case .sslv2, .records:
                guard nextRecord(&input, handler: &handler) else { return }
            }
        }
    }

    /// `count` bytes are missing at the current position (a TCP gap).
    public mutating func skip<H: TLSEventHandler>(_ count: Int, handler: inout H) {
        guard count > 0 else { return }
        var framingKept = false
        handshakeCarry.removeAll(keepingCapacity: false)
        handshakeSkip = 0
        switch phase {
        case .stopped:
            return
        case let .skipping(remaining):
            if count <= remaining {
                phase = count == remaining ? .records : .skipping(remaining - count)
                framingKept = true
            } else {
                startResynchronising()
            }
        case .records where carried.count >= 5:
            let total = 5 + (Int(carried[3]) << 8 | Int(carried[4]))
            let missing = total - carried.count
            carried.removeAll(keepingCapacity: true)
            if count <= missing {
                phase = count == missing ? .records : .skipping(missing - count)
                framingKept = true
            } else {
                startResynchronising()
            }
        case .resynchronising:
            break
        default:
            startResynchronising()
        }
        apply(handler.handle(.gap(framingKept: framingKept), stream: streamTag))
    }

    private mutating func startResynchronising() {
        carried.removeAll(keepingCapacity: true)
        phase = .resynchronising
    }

    @inline(__always)
    private mutating func apply(_ directive: TLSDirective) {
        switch directive {
        case .proceed: break
        case .ciphertextFromHere:
            ciphertext = true
            tls12 = nil
        case .stop:
            phase = .stopped
            carried = []
            handshakeCarry = []
            decryption = nil
            tls12 = nil
        case let .decryptFromHere(keys): decryption = keys
        case let .decryptTLS12FromHere(keys):
            tls12 = keys
            ciphertext = false
            handshakeCarry = []
        }
    }

    /// Records opened with a key log's secrets, and whether decryption is still on.
    public var protectedRecordsOpened: Int { decryption?.recordsOpened ?? 0 }
    public var isDecrypting: Bool { decryption != nil }

    @inline(__always)
    private mutating func emit<H: TLSEventHandler>(_ event: consuming TLSEvent, _ handler: inout H) {
        apply(handler.handle(consume event, stream: streamTag))
    }

    // MARK: identification

    /// Decides from the first bytes whether the direction carries TLS or SSL 2.0.
    /// Returns false when more bytes are needed.
    private mutating func identify<H: TLSEventHandler>(_ input: inout ByteCursor, handler: inout H) -> Bool {
        let needed = 5
        let have = min(carried.count, needed)
        guard have + input.remaining >= needed else {
            carried.append(contentsOf: input.unreadBytes)
            _ = input.readSlice(length: input.remaining)
            return false
        }
        // The five bytes on the stack: an array here was an allocation per connection.
        var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { head in
            for i in 0..<have { head[i] = carried[i] }
            for i in have..<needed { head[i] = input.peekUInt8(at: i - have)! }
        }
        if TLSStreamDecoder.isPlausibleRecordHeader(bytes.0, bytes.1, bytes.2, bytes.3, bytes.4) {
            phase = .records
        } else if bytes.0 & 0x80 != 0, bytes.2 == 1,
            (bytes.3 == 0 && bytes.4 == 2) || (bytes.3 == 3 && bytes.4 <= 4)
        {
            phase = .sslv2  // SSL 2.0 CLIENT-HELLO header (RFC 5246 E.2)
        } else if bytes.0 & 0x80 != 0, bytes.2 == 4, bytes.3 <= 1, bytes.4 == 1 {
            phase = .sslv2  // SSL 2.0 SERVER-HELLO: session_id_hit, certificate_type X.509
        } else {
            emit(.notTLS, &handler)
            phase = .stopped
            carried = []
        }
        return true
    }

    /// type 20-24, version 3.0-3.4 (SSLv3 to TLS 1.3 record versions), 0 < length <= 2^14+2048.
    @inline(__always)
    static func isPlausibleRecordHeader(
        _ type: UInt8,
        _ major: UInt8,
        _ minor: UInt8,
        _ lengthHigh: UInt8,
        _ lengthLow: UInt8
    ) -> Bool {
        let length = Int(lengthHigh) << 8 | Int(lengthLow)
        return (20...24).contains(type) && major == 3 && minor <= 4 && length > 0
            && length <= TLSLimits.maximumRecordLength
    }

    // MARK: framing

    /// Takes one whole record from `carried` plus `input`, or from `input` in place, and
    /// processes it. Returns false when the input ran out first (the rest is carried).
    private mutating func nextRecord<H: TLSEventHandler>(_ input: inout ByteCursor, handler: inout H) -> Bool {
        let headerLength = phase == .sslv2 ? 2 : 5
        if carried.isEmpty, input.remaining >= headerLength {
            let header = input.unreadBytes
            guard
                let total = recordLength(
                    header[0],
                    header[1],
                    headerLength == 5 ? header[3] : 0,
                    headerLength == 5 ? header[4] : 0,
                    handler: &handler
                )
            else { return true }
            if input.remaining >= total {
                let record = input.readSlice(length: total)!
                process(record.unreadBytes, handler: &handler)
                return true
            }
        }
        // Carry: fill the header, then the body.
        if carried.count < headerLength {
            let take = min(headerLength - carried.count, input.remaining)
            carried.append(contentsOf: input.readSlice(length: take)!.unreadBytes)
            if carried.count < headerLength { return false }
        }
        guard
            let total = recordLength(
                carried[0],
                carried[1],
                headerLength == 5 ? carried[3] : 0,
                headerLength == 5 ? carried[4] : 0,
                handler: &handler
            )
        else { return true }
        // identify() holds five bytes; an SSL 2.0 record can be shorter: keep the surplus.
        var surplus: [UInt8] = []
        if carried.count > total {
            surplus = Array(carried[total...])
            carried.removeLast(carried.count - total)
        }
        let take = min(total - carried.count, input.remaining)
        carried.append(contentsOf: input.readSlice(length: take)!.unreadBytes)
        if carried.count < total { return false }
        // Move the buffer out while it is parsed, so handlers may reset decoder state;
        // its storage comes back for the next split record.
        var record: [UInt8] = []
        swap(&record, &carried)
        record.withUnsafeBytes { process($0, handler: &handler) }
        if phase != .stopped {
            record.removeAll(keepingCapacity: true)
            record.append(contentsOf: surplus)
            carried = record
        }
        return true
    }

    /// The whole record's length from its header bytes (for SSL 2.0 only the first two
    /// count), or nil (direction stopped) if the header is implausible.
    private mutating func recordLength<H: TLSEventHandler>(
        _ b0: UInt8,
        _ b1: UInt8,
        _ b3: UInt8,
        _ b4: UInt8,
        handler: inout H
    ) -> Int? {
        if phase == .sslv2 {
            guard b0 & 0x80 != 0 else {
                fail(TLSWireError(.notTLS, "SSLv2 record without the 2-byte header form"), &handler)
                return nil
            }
            return 2 + (Int(b0 & 0x7f) << 8 | Int(b1))
        }
        let length = Int(b3) << 8 | Int(b4)
        guard (20...24).contains(b0), b1 == 3 else {
            fail(TLSWireError(.notTLS, "record with content type \(b0) and major version \(b1)"), &handler)
            return nil
        }
        guard length <= TLSLimits.maximumRecordLength else {
            fail(TLSWireError(.recordOverflow, "record length \(length) exceeds 2^14+2048"), &handler)
            return nil
        }
        return 5 + length
    }

    private mutating func fail<H: TLSEventHandler>(_ error: TLSWireError, _ handler: inout H) {
        emit(.malformed(error), &handler)
        phase = .stopped
        carried = []
        handshakeCarry = []
    }

    /// One complete record, header included.
    private mutating func process<H: TLSEventHandler>(_ record: UnsafeRawBufferPointer, handler: inout H) {
        recordsDecoded += 1
        if phase == .sslv2 {
            processSSLv2(UnsafeRawBufferPointer(rebasing: record[2...]), handler: &handler)
            return
        }
        let type = ContentType(rawValue: record[0])
        let fragment = UnsafeRawBufferPointer(rebasing: record[5...])
        if tls12 != nil {
            openTLS12(record, type: type, handler: &handler)
            return
        }
        switch type {
        case .handshake:
            if ciphertext {
                emit(.encryptedRecord(type, length: fragment.count), &handler)
            } else {
                processHandshakeFragment(fragment, handler: &handler)
            }
        case .changeCipherSpec:
            emit(.changeCipherSpec, &handler)
        case .alert:
            // A cleartext alert is two bytes (RFC 8446 6); a longer one is ciphertext.
            if !ciphertext, fragment.count == 2 {
                emit(.alert(Alert(level: fragment[0], description: AlertDescription(rawValue: fragment[1]))), &handler)
            } else {
                emit(.encryptedRecord(type, length: fragment.count), &handler)
            }
        case .applicationData:
            // Opened first when a key log allows: the handler hears what the record carried
            // before it hears of the record.
            if decryption != nil { openProtected(record, handler: &handler) }
            if phase != .stopped { emit(.encryptedRecord(type, length: fragment.count), &handler) }
        default:
            emit(.heartbeat(length: fragment.count), &handler)
        }
    }

    private mutating func processSSLv2<H: TLSEventHandler>(_ body: UnsafeRawBufferPointer, handler: inout H) {
        var cursor = ByteCursor(body)
        switch cursor.readUInt8() {
        case 1:
            do throws(TLSWireError) {
                emit(.clientHello(try ClientHello(parsingSSLv2: &cursor)), &handler)
            } catch {
                emit(.malformed(error), &handler)
            }
            // A v2-compatible hello is followed by TLS records (RFC 5246 E.2).
            if phase == .sslv2 { phase = .records }
        case 4:
            if let hit = cursor.readUInt8(), cursor.readUInt8() != nil, let version = cursor.readUInt16() {
                emit(
                    .sslv2ServerHello(
                        SSLv2ServerHello(sessionIDHit: hit != 0, version: ProtocolVersion(rawValue: version))
                    ),
                    &handler
                )
            } else {
                emit(.malformed(TLSWireError(.decodeError, "SSLv2 SERVER-HELLO too short")), &handler)
            }
            // The rest of an SSL 2.0 conversation is not parsed.
            apply(.stop)
        default:
            fail(TLSWireError(.unexpectedMessage, "SSLv2 record of unexpected message type"), &handler)
        }
    }

    // MARK: TLS 1.2 protected records

    /// A record after ChangeCipherSpec with a TLS 1.2 master secret: application data passed
    /// over, the rest opened and read as in the clear (a renegotiation, RFC 5246 7.4.1.1).
    /// A record that does not open, or one past the limit, ends decryption here.
    private mutating func openTLS12<H: TLSEventHandler>(
        _ record: UnsafeRawBufferPointer,
        type: ContentType,
        handler: inout H
    ) {
        guard var keys = tls12 else { return }
        let length = record.count - 5
        guard keys.recordsRead < TLS12Decryption.maximumRecords else {
            return endTLS12(type, length: length, handler: &handler)
        }
        keys.recordsRead += 1
        if type == .applicationData {
            keys.reader.skip()
            tls12 = keys
            emit(.encryptedRecord(type, length: length), &handler)
            return
        }
        guard let plaintext = keys.reader.open(record) else {
            return endTLS12(type, length: length, handler: &handler)
        }
        tls12 = keys
        switch type {
        case .handshake:
            plaintext.withUnsafeBytes { processHandshakeFragment($0, handler: &handler) }
        case .changeCipherSpec:
            // The renegotiation's: the handler gives the next keys, or none.
            tls12 = nil
            ciphertext = true
            emit(.changeCipherSpec, &handler)
        case .alert where plaintext.count == 2:
            emit(.alert(Alert(level: plaintext[0], description: AlertDescription(rawValue: plaintext[1]))), &handler)
        default:
            emit(.heartbeat(length: plaintext.count), &handler)
        }
    }

    /// Decryption ends in this direction: the record is ciphertext, as are those after it.
    private mutating func endTLS12<H: TLSEventHandler>(_ type: ContentType, length: Int, handler: inout H) {
        tls12 = nil
        ciphertext = true
        handshakeCarry = []
        emit(.undecryptable, &handler)
        if phase != .stopped { emit(.encryptedRecord(type, length: length), &handler) }
    }

    // MARK: TLS 1.3 protected records

    /// Opens a TLS 1.3 record with the key log's secrets and reads what it carries
    /// (RFC 8446 5.2); a record that does not open ends decryption in this direction.
    private mutating func openProtected<H: TLSEventHandler>(_ record: UnsafeRawBufferPointer, handler: inout H) {
        guard var keys = decryption else { return }
        guard keys.recordsOpened < TLS13Decryption.maximumRecords, let (type, content) = keys.reader.open(record)
        else {
            decryption = nil
            handshakeCarry = []
            if keys.recordsOpened < TLS13Decryption.maximumRecords { emit(.undecryptable, &handler) }
            return
        }
        keys.recordsOpened += 1
        decryption = keys
        switch type {
        case .handshake:
            content.withUnsafeBytes { processHandshakeFragment($0, handler: &handler) }
        case .alert where content.count == 2:
            emit(.alert(Alert(level: content[0], description: AlertDescription(rawValue: content[1]))), &handler)
        default:
            break
        }
    }

    /// After a protected handshake message: Finished moves the server to its application
    /// traffic secret (RFC 8446 7.1), KeyUpdate to the next one (4.6.3, 7.2).
    private mutating func protectedMessageRead(_ type: HandshakeType) {
        guard var keys = decryption else { return }
        if type == .finished, keys.inHandshakeEpoch {
            guard let secret = keys.applicationSecret, keys.reader.rekey(secret: secret) else {
                decryption = nil
                return
            }
            keys.inHandshakeEpoch = false
        } else if type == .keyUpdate, !keys.inHandshakeEpoch {
            keys.reader.update()
        }
        decryption = keys
    }

    // MARK: handshake messages

    private mutating func processHandshakeFragment<H: TLSEventHandler>(
        _ fragment: UnsafeRawBufferPointer,
        handler: inout H
    ) {
        var cursor = ByteCursor(fragment)
        if handshakeSkip > 0 {
            let passed = min(handshakeSkip, cursor.remaining)
            _ = cursor.readSlice(length: passed)
            handshakeSkip -= passed
        }
        if handshakeCarry.isEmpty {
            parseMessages(&cursor, handler: &handler)
            if phase != .stopped, !cursor.isEmpty { handshakeCarry.append(contentsOf: cursor.unreadBytes) }
            return
        }
        handshakeCarry.append(contentsOf: cursor.unreadBytes)
        var pending: [UInt8] = []
        swap(&pending, &handshakeCarry)
        let consumed: Int = pending.withUnsafeBytes { carry in
            var carried = ByteCursor(carry)
            parseMessages(&carried, handler: &handler)
            return carried.position
        }
        // A gap or stop while parsing resets the carry; otherwise keep the partial message.
        if phase != .stopped, handshakeCarry.isEmpty {
            pending.removeFirst(consumed)
            handshakeCarry = pending
        }
    }

    /// Parses whole messages (RFC 8446 4: uint8 msg_type; uint24 length; body) until
    /// only a partial one remains. Messages over the buffering limit are reported by type
    /// and length and passed over.
    private mutating func parseMessages<H: TLSEventHandler>(_ cursor: inout ByteCursor, handler: inout H) {
        while cursor.remaining >= 4, phase != .stopped {
            let type = HandshakeType(rawValue: cursor.peekUInt8()!)
            let length =
                Int(cursor.peekUInt8(at: 1)!) << 16 | Int(cursor.peekUInt8(at: 2)!) << 8 | Int(cursor.peekUInt8(at: 3)!)
            if length > TLSLimits.maximumBufferedHandshakeMessage {
                _ = cursor.readSlice(length: 4)
                let passed = min(length, cursor.remaining)
                _ = cursor.readSlice(length: passed)
                handshakeSkip = length - passed
                emit(.handshake(type, length: length), &handler)
                continue
            }
            guard cursor.remaining >= 4 + length else { return }
            _ = cursor.readSlice(length: 4)
            var body = cursor.readSlice(length: length)!
            if decryption != nil {
                emit(TLSEvent.decodingMessage(type, &body, protected: true), &handler)
                protectedMessageRead(type)
            } else {
                emit(TLSEvent.decodingMessage(type, &body), &handler)
            }
        }
    }

}

extension TLSEvent {
    /// The event for one whole handshake message body. `datagram` selects DTLS's ClientHello
    /// layout; `protected`, TLS 1.3's layouts of the messages read from protected records.
    public static func decodingMessage(
        _ type: HandshakeType,
        _ body: inout ByteCursor,
        datagram: Bool = false,
        protected: Bool = false
    ) -> TLSEvent {
        do throws(TLSWireError) {
            if protected {
                switch type {
                case .encryptedExtensions: return .encryptedExtensions(try EncryptedExtensions(parsing: &body))
                case .certificate: return .certificate(try CertificateChain(parsingTLS13: &body))
                case .newSessionTicket: return .newSessionTicket(try NewSessionTicket(parsingTLS13: &body))
                default: return .handshake(type, length: body.remaining)
                }
            }
            switch type {
            case .clientHello: return .clientHello(try ClientHello(parsing: &body, datagram: datagram))
            case .serverHello: return .serverHello(try ServerHello(parsing: &body))
            case .draftHelloRetryRequest: return .serverHello(try ServerHello(parsingDraftRetryRequest: &body))
            case .certificate: return .certificate(try CertificateChain(parsing: &body))
            case .newSessionTicket: return .newSessionTicket(try NewSessionTicket(parsing: &body))
            default: return .handshake(type, length: body.remaining)
            }
        } catch {
            return .malformed(error)
        }
    }
}

extension TLSStreamDecoder {
    // MARK: resynchronisation

    /// Looks for the next plausible record header after a gap. Input is copied into
    /// `carried` so a header split across calls is still found.
    private mutating func resynchronise<H: TLSEventHandler>(_ input: inout ByteCursor, handler: inout H) {
        let take = min(input.remaining, TLSLimits.maximumResyncScan)
        carried.append(contentsOf: input.readSlice(length: take)!.unreadBytes)
        resyncScanned += take
        var found: Int?
        if carried.count >= 5 {
            for i in 0...(carried.count - 5)
            where TLSStreamDecoder.isPlausibleRecordHeader(
                carried[i],
                carried[i + 1],
                carried[i + 2],
                carried[i + 3],
                carried[i + 4]
            ) {
                found = i
                break
            }
        }
        if let found {
            carried.removeFirst(found)
            phase = .records
            resyncScanned = 0
            // Process what is now a record start, followed by the rest of the input.
            let rest = carried
            carried.removeAll(keepingCapacity: true)
            rest.withUnsafeBytes { bytes in
                var cursor = ByteCursor(bytes)
                while !cursor.isEmpty, phase == .records {
                    guard nextRecord(&cursor, handler: &handler) else { break }
                }
            }
            return
        }
        if carried.count > 4 { carried.removeFirst(carried.count - 4) }
        if resyncScanned > TLSLimits.maximumResyncScan {
            apply(.stop)
        }
    }
}
