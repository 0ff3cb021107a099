/// How a connection reached its TLS through a proxy, as recorded in `tunnel`.
public enum ProxyTunnelKind: String, Sendable, CaseIterable {
    case httpConnect = "http-connect"
    case socks4
    case socks5
}

/// The destination a client asked its proxy for: a name or an address, and a port.
public struct ProxyTarget: Sendable, Equatable {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }
}

/// Follows the start of a connection to a proxy until a tunnel opens, and says at which
/// byte of each direction the tunnelled bytes begin:
/// - HTTP CONNECT (RFC 9110 9.3.6): `CONNECT host:port HTTP/1.1`, headers, and a 2xx reply
///   whose header block ends the proxy's part. A refusal (407 asking for credentials) with
///   a body of Content-Length bytes may be followed by another request on the connection.
/// - SOCKS 4 and 4a: CONNECT (CD 1) to an address or, with 0.0.0.x, to a name after the user
///   ID; reply code 90 grants it (8 bytes).
/// - SOCKS 5 (RFC 1928): the method choice, username and password when chosen (RFC 1929),
///   then CONNECT (CMD 1) to an IPv4 or IPv6 address or a name; reply 0 grants it.
/// Pure: bytes in, a decision out. Each direction's bytes are held up to a bound.
public struct ProxyTunnelDetector {
    /// Bytes held per direction before giving up: request headers, a 407 page and the
    /// retried request fit in a few KiB (squid's 407 page is under 4 KiB).
    public static let maximumHandshakeBytes = 16 * 1024
    /// Header lines per HTTP message before giving up.
    static let maximumHeaderLines = 64
    /// CONNECT requests on one connection: the first, and retries after a refusal.
    static let maximumConnectAttempts = 4
    /// SOCKS 4 user IDs and 4a names end with a zero byte within this many bytes; SOCKS 5
    /// names, user names and passwords carry a one-byte length (RFC 1928 5, RFC 1929 2).
    static let maximumSOCKSField = 255

    public enum Outcome: Equatable {
        case undecided
        /// Not a proxy conversation this detector knows, or the proxy did not open the tunnel.
        case notATunnel
        /// The tunnel opened: its bytes begin at these offsets of the client's and the
        /// proxy's bytes.
        case tunnel(ProxyTunnelKind, ProxyTarget, clientOffset: Int, serverOffset: Int)
    }

    /// Bytes of the client and of the proxy.
    public private(set) var client: [UInt8] = []
    public private(set) var server: [UInt8] = []
    public var bufferedBytes: Int { client.capacity + server.capacity }
    public private(set) var outcome: Outcome = .undecided
    /// The kind the client's first bytes started, and how far each side was read.
    private var kind: ProxyTunnelKind?
    private var clientRead = 0
    private var serverRead = 0
    /// HTTP: where the search for the end of the current header block resumes, per side.
    private var clientSearched = 0
    private var serverSearched = 0
    private var attempts = 0
    private var requestedTarget: ProxyTarget?
    /// SOCKS 5: which exchange comes next.
    private var socks5Stage = SOCKS5Stage.methods

    private enum SOCKS5Stage { case methods, credentials, request }

    public init() {}

    /// Whether a client's first bytes start a proxy conversation this detector knows.
    public static func looksLikeProxyStart(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let first = bytes.first else { return false }
        switch first {
        case UInt8(ascii: "C"): return bytes.starts(with: "CONNECT ".utf8.prefix(bytes.count))
        case 4: return bytes.count < 2 || bytes[1] == 1
        case 5: return bytes.count < 2 || bytes[1] >= 1
        default: return false
        }
    }

    /// Adds bytes from one side and decides when it can.
    public mutating func add(_ bytes: UnsafeRawBufferPointer, fromClient: Bool) -> Outcome {
        guard outcome == .undecided else { return outcome }
        let room = Self.maximumHandshakeBytes - (fromClient ? client.count : server.count)
        if fromClient {
            client.append(contentsOf: bytes.prefix(room))
        } else {
            server.append(contentsOf: bytes.prefix(room))
        }
        if kind == nil, let first = client.first {
            switch first {
            case UInt8(ascii: "C"): kind = .httpConnect
            case 4: kind = .socks4
            case 5: kind = .socks5
            default: outcome = .notATunnel
            }
        }
        switch kind {
        case .httpConnect: outcome = decideHTTP()
        case .socks4: outcome = decideSOCKS4()
        case .socks5: outcome = decideSOCKS5()
        case nil: break
        }
        if outcome == .undecided,
            client.count >= Self.maximumHandshakeBytes || server.count >= Self.maximumHandshakeBytes
        {
            outcome = .notATunnel
        }
        return outcome
    }

    // MARK: HTTP CONNECT

    private mutating func decideHTTP() -> Outcome {
        while true {
            if requestedTarget == nil {
                guard let end = headerEnd(client, from: clientRead, searched: &clientSearched) else {
                    return .undecided
                }
                guard let target = connectTarget(client[clientRead..<end]) else { return .notATunnel }
                attempts += 1
                if attempts > Self.maximumConnectAttempts { return .notATunnel }
                requestedTarget = target
                clientRead = end
                clientSearched = end
            }
            guard let end = headerEnd(server, from: serverRead, searched: &serverSearched) else { return .undecided }
            guard let (status, bodyLength, closes) = responseHead(server[serverRead..<end]) else { return .notATunnel }
            if (200...299).contains(status), let target = requestedTarget {
                return .tunnel(.httpConnect, target, clientOffset: clientRead, serverOffset: end)
            }
            // A refusal: its body follows; the client may ask again on this connection.
            if closes { return .notATunnel }
            guard server.count >= end + bodyLength else { return .undecided }
            serverRead = end + bodyLength
            serverSearched = serverRead
            requestedTarget = nil
        }
    }

    /// The index just past the blank line that ends the header block starting at `start`,
    /// searching on from `searched` so each byte is looked at once.
    private func headerEnd(_ bytes: [UInt8], from start: Int, searched: inout Int) -> Int? {
        var index = max(searched, start)
        while index < bytes.count {
            if bytes[index] == 0x0a {
                // "\n\n" or "\r\n\r\n" (RFC 9112 2.2 lets a recipient take a bare LF).
                if index >= start + 1, bytes[index - 1] == 0x0a { return index + 1 }
                if index >= start + 3, bytes[index - 1] == 0x0d, bytes[index - 2] == 0x0a, bytes[index - 3] == 0x0d {
                    return index + 1
                }
            }
            index += 1
        }
        searched = max(start, bytes.count - 3)
        return nil
    }

    /// The lines of a header block, without their line ends; nil past the line limit.
    private func lines(_ block: ArraySlice<UInt8>) -> [ArraySlice<UInt8>]? {
        var result: [ArraySlice<UInt8>] = []
        var lineStart = block.startIndex
        for index in block.indices where block[index] == 0x0a {
            var stop = index
            if stop > lineStart, block[stop - 1] == 0x0d { stop -= 1 }
            if stop > lineStart { result.append(block[lineStart..<stop]) }
            lineStart = index + 1
            if result.count > Self.maximumHeaderLines { return nil }
        }
        return result
    }

    /// `CONNECT host:port HTTP/1.x` (RFC 9110 9.3.6: the request target is the authority).
    private func connectTarget(_ block: ArraySlice<UInt8>) -> ProxyTarget? {
        guard let first = lines(block)?.first else { return nil }
        let parts = first.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        guard parts.count == 3, parts[0].elementsEqual("CONNECT".utf8), parts[2].starts(with: "HTTP/1.".utf8) else {
            return nil
        }
        let authority = parts[1]
        guard let colon = authority.lastIndex(of: UInt8(ascii: ":")),
            let port = decimal(authority[(colon + 1)...]), port <= 65535, port > 0
        else { return nil }
        var host = authority[..<colon]
        if host.first == UInt8(ascii: "["), host.last == UInt8(ascii: "]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty, host.count <= Self.maximumSOCKSField else { return nil }
        return ProxyTarget(host: WireText.decode(host), port: UInt16(port))
    }

    /// The status, the Content-Length (0 without one) and whether the proxy closes after it.
    private func responseHead(_ block: ArraySlice<UInt8>) -> (status: Int, bodyLength: Int, closes: Bool)? {
        guard let all = lines(block), let statusLine = all.first else { return nil }
        let parts = statusLine.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].starts(with: "HTTP/1.".utf8), parts[1].count == 3,
            let status = decimal(parts[1])
        else { return nil }
        var bodyLength = 0
        var closes = false
        for line in all.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = line[..<colon]
            let value = line[(colon + 1)...].drop { $0 == UInt8(ascii: " ") || $0 == 0x09 }
            if asciiEqualIgnoringCase(name, "content-length") {
                guard let length = decimal(value), length <= Self.maximumHandshakeBytes else { return nil }
                bodyLength = length
            } else if asciiEqualIgnoringCase(name, "transfer-encoding") {
                // A chunked refusal body is not followed: the tunnel, if any, is not read.
                return nil
            } else if asciiEqualIgnoringCase(name, "connection") || asciiEqualIgnoringCase(name, "proxy-connection") {
                if asciiContainsIgnoringCase(value, "close") { closes = true }
            }
        }
        return (status, bodyLength, closes)
    }

    // MARK: SOCKS

    /// SOCKS 4: VN 4, CD 1, DSTPORT, DSTIP, USERID, 0; SOCKS 4a names the host after that
    /// when DSTIP is 0.0.0.x with x not 0. Reply: VN 0, CD 90 granted, DSTPORT, DSTIP.
    private mutating func decideSOCKS4() -> Outcome {
        guard client.count >= 9 else { return .undecided }
        guard client[1] == 1 else { return .notATunnel }
        let port = UInt16(client[2]) << 8 | UInt16(client[3])
        guard let userEnd = zeroByte(in: client, from: 8) else {
            return client.count > 8 + Self.maximumSOCKSField ? .notATunnel : .undecided
        }
        var host = "\(client[4]).\(client[5]).\(client[6]).\(client[7])"
        var requestEnd = userEnd + 1
        if client[4] == 0, client[5] == 0, client[6] == 0, client[7] != 0 {
            guard let nameEnd = zeroByte(in: client, from: requestEnd) else {
                return client.count > requestEnd + Self.maximumSOCKSField ? .notATunnel : .undecided
            }
            guard nameEnd > requestEnd else { return .notATunnel }
            host = WireText.decode(client[requestEnd..<nameEnd])
            requestEnd = nameEnd + 1
        }
        guard server.count >= 8 else { return .undecided }
        guard server[0] == 0, server[1] == 90 else { return .notATunnel }
        return .tunnel(.socks4, ProxyTarget(host: host, port: port), clientOffset: requestEnd, serverOffset: 8)
    }

    private func zeroByte(in bytes: [UInt8], from start: Int) -> Int? {
        let end = min(bytes.count, start + Self.maximumSOCKSField + 1)
        guard start < end else { return nil }
        return bytes[start..<end].firstIndex(of: 0)
    }

    /// SOCKS 5 (RFC 1928): the exchanges in turn, each side read from where the last ended.
    private mutating func decideSOCKS5() -> Outcome {
        while true {
            switch socks5Stage {
            case .methods:
                // VER 5, NMETHODS, METHODS; the reply: VER 5, METHOD (3).
                guard client.count >= 2 else { return .undecided }
                let methods = Int(client[1])
                guard methods >= 1 else { return .notATunnel }
                guard client.count >= 2 + methods, server.count >= 2 else { return .undecided }
                guard server[0] == 5 else { return .notATunnel }
                let chosen = server[1]
                clientRead = 2 + methods
                serverRead = 2
                // 0: no authentication; 2: username and password; anything else is not followed.
                switch chosen {
                case 0: socks5Stage = .request
                case 2: socks5Stage = .credentials
                default: return .notATunnel
                }
            case .credentials:
                // VER 1, ULEN, UNAME, PLEN, PASSWD; the reply: VER 1, STATUS 0 (RFC 1929 2).
                guard client.count >= clientRead + 2 else { return .undecided }
                guard client[clientRead] == 1 else { return .notATunnel }
                let nameLength = Int(client[clientRead + 1])
                guard client.count >= clientRead + 3 + nameLength else { return .undecided }
                let passwordLength = Int(client[clientRead + 2 + nameLength])
                let end = clientRead + 3 + nameLength + passwordLength
                guard client.count >= end, server.count >= serverRead + 2 else { return .undecided }
                guard server[serverRead + 1] == 0 else { return .notATunnel }
                clientRead = end
                serverRead += 2
                socks5Stage = .request
            case .request:
                // VER 5, CMD 1 (CONNECT), RSV, ATYP, DST.ADDR, DST.PORT; the reply is alike, REP 0.
                guard let (target, requestEnd) = socks5Address(client, at: clientRead, command: true) else {
                    return client.count >= clientRead + 5 && !socks5Prefix(client, at: clientRead, command: true)
                        ? .notATunnel : .undecided
                }
                guard server.count >= serverRead + 2 else { return .undecided }
                guard server[serverRead] == 5, server[serverRead + 1] == 0 else { return .notATunnel }
                guard let (_, replyEnd) = socks5Address(server, at: serverRead, command: false) else {
                    return socks5Prefix(server, at: serverRead, command: false) ? .undecided : .notATunnel
                }
                return .tunnel(.socks5, target, clientOffset: requestEnd, serverOffset: replyEnd)
            }
        }
    }

    /// Whether the bytes at `start` can begin a SOCKS 5 request (command) or reply.
    private func socks5Prefix(_ bytes: [UInt8], at start: Int, command: Bool) -> Bool {
        guard bytes.count > start else { return true }
        guard bytes[start] == 5 else { return false }
        if command, bytes.count > start + 1, bytes[start + 1] != 1 { return false }
        if bytes.count > start + 3, ![1, 3, 4].contains(bytes[start + 3]) { return false }
        return true
    }

    /// The address and port of a SOCKS 5 request or reply at `start`, and its end.
    private func socks5Address(_ bytes: [UInt8], at start: Int, command: Bool) -> (ProxyTarget, Int)? {
        guard socks5Prefix(bytes, at: start, command: command), bytes.count >= start + 5 else { return nil }
        let host: String
        var index = start + 4
        switch bytes[start + 3] {
        case 1:
            guard bytes.count >= index + 6 else { return nil }
            host = "\(bytes[index]).\(bytes[index + 1]).\(bytes[index + 2]).\(bytes[index + 3])"
            index += 4
        case 4:
            guard bytes.count >= index + 18 else { return nil }
            host = ipv6Text(bytes[index..<(index + 16)])
            index += 16
        default:
            let length = Int(bytes[index])
            guard length > 0, bytes.count >= index + 1 + length + 2 else { return nil }
            host = WireText.decode(bytes[(index + 1)..<(index + 1 + length)])
            index += 1 + length
        }
        let port = UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
        return (ProxyTarget(host: host, port: port), index + 2)
    }

    // MARK: text

    private func decimal(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.count <= 9 else { return nil }
        var value = 0
        for byte in digits {
            guard (0x30...0x39).contains(byte) else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    private func lowercased(_ byte: UInt8) -> UInt8 { (0x41...0x5a).contains(byte) ? byte | 0x20 : byte }

    private func asciiEqualIgnoringCase(_ bytes: ArraySlice<UInt8>, _ text: String) -> Bool {
        bytes.count == text.utf8.count && zip(bytes, text.utf8).allSatisfy { lowercased($0) == $1 }
    }

    private func asciiContainsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard bytes.count >= needle.count else { return false }
        let lowered = bytes.map(lowercased)
        for start in 0...(lowered.count - needle.count)
        where lowered[start..<(start + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }

    /// RFC 5952 text of 16 address bytes: lowercase hex groups, the longest run of two or
    /// more zero groups shortened to "::".
    private func ipv6Text(_ bytes: ArraySlice<UInt8>) -> String {
        let base = bytes.startIndex
        let groups = (0..<8).map { UInt16(bytes[base + 2 * $0]) << 8 | UInt16(bytes[base + 2 * $0 + 1]) }
        var bestStart = -1
        var bestLength = 0
        var run = 0
        for (index, group) in groups.enumerated() {
            run = group == 0 ? run + 1 : 0
            if run > bestLength, run >= 2 {
                bestLength = run
                bestStart = index - run + 1
            }
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}
