/// HAND-MADE TLS 1.2 handshakes over hand-made TCP, for the tests about hostile input only
/// (crafted names, certificates, floods). Real traffic comes from captures/.
package enum HandMadeTLS {
    static func be16(_ v: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
    static func be24(_ v: Int) -> [UInt8] {
        [UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    /// A TLSPlaintext record of handshake messages (RFC 5246 6.2.1), split into records of
    /// at most 2^14 bytes.
    package static func records(_ messages: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var start = 0
        repeat {
            let end = min(start + 16_384, messages.count)
            out += [22, 3, 3] + be16(end - start) + messages[start..<end]
            start = end
        } while start < messages.count
        return out
    }

    static func handshake(_ type: UInt8, _ body: [UInt8]) -> [UInt8] { [type] + be24(body.count) + body }

    /// ClientHello (RFC 5246 7.4.1.2) with a server_name extension (RFC 6066 3) holding `sni`
    /// as given, byte for byte, and an empty SessionTicket extension.
    package static func clientHello(sni: [UInt8]?, random: UInt8 = 1) -> [UInt8] {
        var extensions: [UInt8] = []
        if let sni {
            let entry = [0] + be16(sni.count) + sni
            let list = be16(entry.count) + entry
            extensions += be16(0) + be16(list.count) + list
        }
        extensions += be16(35) + be16(0)
        let body: [UInt8] =
            [3, 3] + [UInt8](repeating: random, count: 32) + [0] + be16(2) + [0xc0, 0x2f] + [1, 0]
            + be16(extensions.count) + extensions
        return handshake(1, body)
    }

    /// ServerHello, Certificate with `certificates` (DER, leaf first), ServerHelloDone.
    package static func serverFlight(certificates: [[UInt8]], random: UInt8 = 2) -> [UInt8] {
        let hello: [UInt8] = [3, 3] + [UInt8](repeating: random, count: 32) + [0] + [0xc0, 0x2f] + [0] + be16(0)
        var list: [UInt8] = []
        for der in certificates { list += be24(der.count) + der }
        return handshake(2, hello) + handshake(11, be24(list.count) + list) + handshake(14, [])
    }

    /// A TCP conversation: handshake, the client's bytes, the server's bytes, each in
    /// segments of at most 1400 bytes, then the client's FIN. Frames for `PcapWriter`.
    package static func conversation(
        client: (address: UInt32, port: UInt16),
        server: (address: UInt32, port: UInt16),
        clientBytes: [UInt8],
        serverBytes: [UInt8]
    ) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        let clientISN: UInt32 = 1000
        let serverISN: UInt32 = 5000
        frames.append(Frames.tcp(from: client, to: server, seq: clientISN, flags: Frames.syn))
        frames.append(Frames.tcp(from: server, to: client, seq: serverISN, ack: clientISN + 1, flags: Frames.synAck))
        var clientSeq = clientISN + 1
        var serverSeq = serverISN + 1
        frames.append(Frames.tcp(from: client, to: server, seq: clientSeq, ack: serverSeq, flags: Frames.ack))
        func send(_ bytes: [UInt8], fromClient: Bool) {
            var start = 0
            while start < bytes.count {
                let end = min(start + 1400, bytes.count)
                let payload = Array(bytes[start..<end])
                if fromClient {
                    frames.append(
                        Frames.tcp(
                            from: client,
                            to: server,
                            seq: clientSeq,
                            ack: serverSeq,
                            flags: Frames.ack | Frames.psh,
                            payload: payload
                        )
                    )
                    clientSeq &+= UInt32(payload.count)
                } else {
                    frames.append(
                        Frames.tcp(
                            from: server,
                            to: client,
                            seq: serverSeq,
                            ack: clientSeq,
                            flags: Frames.ack | Frames.psh,
                            payload: payload
                        )
                    )
                    serverSeq &+= UInt32(payload.count)
                }
                start = end
            }
        }
        send(clientBytes, fromClient: true)
        send(serverBytes, fromClient: false)
        frames.append(
            Frames.tcp(from: client, to: server, seq: clientSeq, ack: serverSeq, flags: Frames.ack | Frames.fin)
        )
        return frames
    }

    /// A whole hand-made full handshake to 10.0.0.2:443 from client number `n`, as frames.
    package static func fullHandshake(client n: UInt32, sni: [UInt8]?, certificates: [[UInt8]] = []) -> [[UInt8]] {
        conversation(
            client: (Frames.address(n + 10), UInt16(truncatingIfNeeded: 20_000 + n)),
            server: (Frames.address(2), 443),
            clientBytes: records(clientHello(sni: sni)),
            serverBytes: records(serverFlight(certificates: certificates))
        )
    }
}
