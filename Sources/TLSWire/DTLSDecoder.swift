/// Turns one direction's UDP payloads into TLS events for DTLS 1.0 and 1.2, and for the
/// cleartext hellos of DTLS 1.3: record framing (RFC 6347 4.1, RFC 9147 4), handshake
/// messages reassembled from fragments by message_seq (RFC 6347 4.2.2, 4.2.3), and
/// retransmitted messages passed over. The events are the ones `TLSStreamDecoder` gives.
public struct DTLSDecoder {
    /// DTLSPlaintext header: type, version, epoch, sequence_number(48), length (RFC 6347 4.1).
    static let recordHeaderLength = 13
    /// Handshake header: msg_type, length(24), message_seq, fragment_offset(24), fragment_length(24).
    static let handshakeHeaderLength = 12
    /// Messages reassembled at once; a flight holds at most about six.
    public static let maximumMessagesInProgress = 8
    /// message_seq values remembered as delivered; one handshake uses about a dozen.
    static let trackedSequenceNumbers = 64
    /// Fragments accepted per message: a 16 KiB certificate chain at a 1200-byte MTU takes
    /// 14, retransmissions a few times that. More, and the message is given up, so the
    /// work per fragment stays bounded (the covered ranges are at most this many).
    public static let maximumFragmentsPerMessage = 512
    /// Bytes held in reassembly per direction, all messages together: one message of the
    /// largest size buffered (`TLSLimits.maximumBufferedHandshakeMessage`).
    public static let maximumBytesInProgress = TLSLimits.maximumBufferedHandshakeMessage

    public let streamTag: Int
    public private(set) var isStopped = false
    private var ciphertext = false
    /// Bit n: message_seq n was delivered (retransmissions of it are passed over).
    private var delivered: UInt64 = 0
    private var inProgress: [PartialMessage] = []
    /// Bytes held by `inProgress`.
    private var bytesInProgress = 0

    /// A message being reassembled. It holds what arrived, never its declared length: each
    /// fragment keeps the bytes no earlier one covered (the first copy wins, as for TCP).
    private struct PartialMessage {
        var sequence: Int
        var type: HandshakeType
        var length: Int
        var pieces: [(offset: Int, bytes: [UInt8])] = []
        /// The ranges received so far.
        var covered = RangeSet<Int>()
        var fragments = 0
        var bytesHeld = 0

        var isComplete: Bool { covered.ranges.count == 1 && covered.ranges.first == 0..<length }

        /// Adds a fragment's new bytes; returns how many it added. O(covered ranges).
        mutating func add(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Int {
            let new = RangeSet(offset..<(offset + bytes.count)).subtracting(covered)
            var added = 0
            for range in new.ranges {
                pieces.append(
                    (range.lowerBound, Array(bytes[(range.lowerBound - offset)..<(range.upperBound - offset)]))
                )
                added += range.count
            }
            covered.insert(contentsOf: offset..<(offset + bytes.count))
            bytesHeld += added
            return added
        }

        /// The whole message, once complete.
        func assembled() -> [UInt8] {
            var whole = [UInt8](repeating: 0, count: length)
            for piece in pieces {
                whole.replaceSubrange(piece.offset..<(piece.offset + piece.bytes.count), with: piece.bytes)
            }
            return whole
        }
    }

    public init(streamTag: Int) { self.streamTag = streamTag }

    /// Bytes held in reassembly (for memory accounting).
    public var bufferedBytes: Int { bytesInProgress }

    /// Whether a UDP payload starts with a DTLS record carrying a ClientHello in epoch 0:
    /// content type 22, version 0xfeff, 0xfefd or 0xfefc, epoch 0, handshake type 1.
    public static func startsWithClientHello(_ payload: UnsafeRawBufferPointer) -> Bool {
        payload.count >= recordHeaderLength + handshakeHeaderLength && payload[0] == 22 && payload[1] == 0xfe
            && payload[2] >= 0xfc && payload[2] != 0xfe && payload[3] == 0 && payload[4] == 0 && payload[13] == 1
    }

    public mutating func feed<H: TLSEventHandler>(_ datagram: UnsafeRawBufferPointer, handler: inout H) {
        var offset = 0
        while offset < datagram.count, !isStopped {
            let first = datagram[offset]
            if first & 0xe0 == 0x20 {
                // DTLS 1.3 unified header (RFC 9147 4): protected; its length field is optional.
                emit(.encryptedRecord(.applicationData, length: datagram.count - offset), &handler)
                return
            }
            guard datagram.count - offset >= DTLSDecoder.recordHeaderLength else {
                emit(.malformed(TLSWireError(.decodeError, "DTLS record header cut short")), &handler)
                return
            }
            guard (20...25).contains(first), datagram[offset + 1] == 0xfe else {
                emit(
                    .malformed(
                        TLSWireError(
                            .notTLS,
                            "DTLS record with content type \(first) and major version \(datagram[offset + 1])"
                        )
                    ),
                    &handler
                )
                return
            }
            let epoch = Int(datagram[offset + 3]) << 8 | Int(datagram[offset + 4])
            let length = Int(datagram[offset + 11]) << 8 | Int(datagram[offset + 12])
            let start = offset + DTLSDecoder.recordHeaderLength
            guard start + length <= datagram.count else {
                emit(
                    .malformed(TLSWireError(.decodeError, "DTLS record length \(length) past the end of the datagram")),
                    &handler
                )
                return
            }
            offset = start + length
            process(
                ContentType(rawValue: first),
                epoch: epoch,
                UnsafeRawBufferPointer(rebasing: datagram[start..<offset]),
                &handler
            )
        }
    }

    private mutating func process<H: TLSEventHandler>(
        _ type: ContentType,
        epoch: Int,
        _ fragment: UnsafeRawBufferPointer,
        _ handler: inout H
    ) {
        // Epoch 1 and later are protected (RFC 6347 4.1): Finished, then application data.
        if epoch != 0 || (ciphertext && type != .changeCipherSpec) {
            emit(.encryptedRecord(type, length: fragment.count), &handler)
            return
        }
        switch type {
        case .handshake: handshakeFragments(fragment, &handler)
        case .changeCipherSpec: emit(.changeCipherSpec, &handler)
        case .alert:
            if fragment.count == 2 {
                emit(.alert(Alert(level: fragment[0], description: AlertDescription(rawValue: fragment[1]))), &handler)
            } else {
                emit(.encryptedRecord(type, length: fragment.count), &handler)
            }
        case .applicationData: emit(.encryptedRecord(type, length: fragment.count), &handler)
        default: emit(.heartbeat(length: fragment.count), &handler)
        }
    }

    private mutating func handshakeFragments<H: TLSEventHandler>(_ record: UnsafeRawBufferPointer, _ handler: inout H) {
        var cursor = ByteCursor(record)
        while !cursor.isEmpty, !isStopped {
            guard let rawType = cursor.readUInt8(), let length = cursor.readUInt24(),
                let sequence = cursor.readUInt16(),
                let fragmentOffset = cursor.readUInt24(), let fragmentLength = cursor.readUInt24(),
                let body = cursor.readSlice(length: fragmentLength)
            else {
                emit(.malformed(TLSWireError(.decodeError, "DTLS handshake fragment cut short")), &handler)
                return
            }
            guard fragmentOffset + fragmentLength <= length else {
                emit(
                    .malformed(TLSWireError(.decodeError, "DTLS handshake fragment past its message length")),
                    &handler
                )
                return
            }
            let type = HandshakeType(rawValue: rawType)
            let seq = Int(sequence)
            // Retransmitted.
            if seq < DTLSDecoder.trackedSequenceNumbers, delivered & (1 << UInt64(seq)) != 0 { continue }
            if length > TLSLimits.maximumBufferedHandshakeMessage {
                markDelivered(seq)
                emit(.handshake(type, length: length), &handler)
                continue
            }
            if fragmentOffset == 0, fragmentLength == length {
                markDelivered(seq)
                var whole = body
                emit(TLSEvent.decodingMessage(type, &whole, datagram: true), &handler)
                continue
            }
            reassemble(type, seq: seq, length: length, offset: fragmentOffset, body.unreadBytes, &handler)
        }
    }

    private mutating func reassemble<H: TLSEventHandler>(
        _ type: HandshakeType,
        seq: Int,
        length: Int,
        offset: Int,
        _ bytes: UnsafeRawBufferPointer,
        _ handler: inout H
    ) {
        var index = inProgress.firstIndex { $0.sequence == seq }
        if index == nil {
            if inProgress.count >= DTLSDecoder.maximumMessagesInProgress { dropMessage(at: 0) }
            inProgress.append(PartialMessage(sequence: seq, type: type, length: length))
            index = inProgress.count - 1
        }
        let i = index!
        guard inProgress[i].length == length else {
            emit(
                .malformed(TLSWireError(.decodeError, "DTLS fragments of message \(seq) disagree on its length")),
                &handler
            )
            dropMessage(at: i)
            return
        }
        inProgress[i].fragments += 1
        guard inProgress[i].fragments <= DTLSDecoder.maximumFragmentsPerMessage else {
            // Given up: its later fragments are passed over like retransmissions.
            dropMessage(at: i)
            markDelivered(seq)
            emit(
                .malformed(
                    TLSWireError(
                        .tooLarge,
                        "DTLS message \(seq) in more than \(DTLSDecoder.maximumFragmentsPerMessage) fragments"
                    )
                ),
                &handler
            )
            return
        }
        bytesInProgress += inProgress[i].add(bytes, at: offset)
        guard inProgress[i].isComplete else {
            // Past the byte bound, the oldest messages give way (this one last).
            while bytesInProgress > DTLSDecoder.maximumBytesInProgress, inProgress.count > 1 {
                dropMessage(at: inProgress[0].sequence == seq ? 1 : 0)
            }
            if bytesInProgress > DTLSDecoder.maximumBytesInProgress, let last = inProgress.indices.last {
                dropMessage(at: last)
            }
            return
        }
        let message = inProgress[i]
        dropMessage(at: i)
        markDelivered(seq)
        message.assembled().withUnsafeBytes { whole in
            var body = ByteCursor(whole)
            emit(TLSEvent.decodingMessage(message.type, &body, datagram: true), &handler)
        }
    }

    private mutating func dropMessage(at index: Int) {
        bytesInProgress -= inProgress[index].bytesHeld
        inProgress.remove(at: index)
    }

    private mutating func markDelivered(_ seq: Int) {
        if seq < DTLSDecoder.trackedSequenceNumbers { delivered |= 1 << UInt64(seq) }
    }

    private mutating func emit<H: TLSEventHandler>(_ event: consuming TLSEvent, _ handler: inout H) {
        switch handler.handle(consume event, stream: streamTag) {
        case .proceed: break
        case .ciphertextFromHere: ciphertext = true
        case .stop:
            isStopped = true
            inProgress = []
            bytesInProgress = 0
        case .decryptFromHere:
            break  // DTLS 1.3 records are not opened (the record layer differs, RFC 9147 4)
        case .decryptTLS12FromHere:
            ciphertext = true  // nor DTLS 1.2's (explicit epoch and sequence, RFC 6347 4.1)
        }
    }
}
