import FuzzDriver
import TLSWire

/// Accepts every event; switches to ciphertext after ChangeCipherSpec when asked, as the
/// Handshakes stage does for TLS 1.2.
struct Sink: TLSEventHandler {
    var ciphertextAfterChangeCipherSpec: Bool
    var events = 0
    mutating func handle(_ event: consuming TLSEvent, stream: Int) -> TLSDirective {
        events += 1
        if case .changeCipherSpec = event, ciphertextAfterChangeCipherSpec { return .ciphertextFromHere }
        return .proceed
    }
}

/// The TLS record and handshake parser, and the DTLS one. Input: one byte of options (chunk size, gaps,
/// ChangeCipherSpec behaviour), then a byte stream fed in chunks, with a gap now and then.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let options = data[0]
    let stream = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    var decoder = TLSStreamDecoder(streamTag: 0)
    var sink = Sink(ciphertextAfterChangeCipherSpec: options & 0x80 != 0)
    let chunk = Int(options & 0x3f) + 1
    var position = 0
    var pieces = 0
    while position < stream.count {
        let end = min(stream.count, position + chunk)
        decoder.feed(UnsafeRawBufferPointer(rebasing: stream[position..<end]), handler: &sink)
        pieces += 1
        if options & 0x40 != 0, pieces % 7 == 0 { decoder.skip(pieces % 5 + 1, handler: &sink) }
        position = end
    }
    // DTLS: the same bytes as datagrams of `chunk` bytes, fed twice (retransmissions).
    var datagrams = DTLSDecoder(streamTag: 0)
    var datagramSink = Sink(ciphertextAfterChangeCipherSpec: options & 0x80 != 0)
    for _ in 0..<2 {
        position = 0
        while position < stream.count {
            let end = min(stream.count, position + chunk * 16)
            datagrams.feed(UnsafeRawBufferPointer(rebasing: stream[position..<end]), handler: &datagramSink)
            position = end
        }
    }
    // STARTTLS: the bytes as a plaintext conversation, alternating sides each chunk.
    var plaintext = StartTLSDetector()
    position = 0
    var fromClient = options & 0x01 != 0
    while position < stream.count, plaintext.outcome == .undecided {
        let end = min(stream.count, position + chunk * 4)
        _ = plaintext.add(UnsafeRawBufferPointer(rebasing: stream[position..<end]), fromClient: fromClient)
        fromClient.toggle()
        position = end
    }
    // Proxies: the bytes as a CONNECT or SOCKS conversation, alternating sides each chunk.
    var proxy = ProxyTunnelDetector()
    position = 0
    fromClient = true
    while position < stream.count, proxy.outcome == .undecided {
        let end = min(stream.count, position + chunk * 4)
        _ = proxy.add(UnsafeRawBufferPointer(rebasing: stream[position..<end]), fromClient: fromClient)
        fromClient.toggle()
        position = end
    }
    // QUIC: the bytes as a datagram (keys from its own DCID), and as a decrypted payload.
    var decrypted: [UInt8] = []
    _ = QUICDatagram.packets(stream, plaintext: &decrypted) {
        QUICInitialKeys(version: $0, destinationConnectionID: $1, server: options & 0x02 != 0)
    }
    _ = QUICDatagram.cryptoFrames(stream) { _, _ in }
    // The hello parsers directly, on the raw bytes.
    var cursor = ByteCursor(stream)
    _ = try? ClientHello(parsing: &cursor)
    cursor = ByteCursor(stream)
    _ = try? ServerHello(parsing: &cursor)
    cursor = ByteCursor(stream)
    _ = try? ClientHello(parsingSSLv2: &cursor)
    cursor = ByteCursor(stream)
    _ = try? ClientHello(parsing: &cursor, datagram: true)
    return 0
}

@_cdecl("FuzzTLSWire_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv, fuzz)
}
