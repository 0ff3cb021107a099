/// Protocols that upgrade a plaintext connection to TLS, as recorded in `starttls`.
public enum StartTLSProtocol: String, Sendable, CaseIterable {
    case smtp, imap, pop3, ftp, xmpp, ldap, postgres, mysql
}

/// Follows the plaintext start of a connection until it upgrades to TLS, and says at which
/// byte of each direction TLS begins:
/// - SMTP (RFC 3207 4): `STARTTLS`, reply 220. FTP (RFC 4217 4): `AUTH TLS` or `AUTH SSL`, reply 234.
/// - IMAP (RFC 3501 6.2.1): `tag STARTTLS`, reply `tag OK`. POP3 (RFC 2595 4): `STLS`, reply `+OK`.
/// - XMPP (RFC 6120 5.4.2): `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`, reply `<proceed .../>`.
/// - LDAP (RFC 4511 4.14): ExtendedRequest 1.3.6.1.4.1.1466.20037, ExtendedResponse success.
/// - PostgreSQL (protocol 53.2.10): SSLRequest (code 80877103), reply `S`.
/// - MySQL (client/server protocol, SSL handshake): the client's SSLRequest packet right
///   after the server's greeting, with CLIENT_SSL set.
/// Pure: bytes in, a decision out. Each direction's plaintext is held up to a bound.
public struct StartTLSDetector {
    /// Plaintext held per direction before giving up (RFC 5321 4.5.3.1.5 caps SMTP reply
    /// lines at 512 bytes; greetings, capability lists and XMPP features fit in a few KiB).
    public static let maximumPlaintext = 16 * 1024
    /// Lines per direction before giving up: an SMTP EHLO reply or a POP3 CAPA list holds
    /// about a dozen. Keeps each decision linear in what arrived.
    public static let maximumLines = 64
    /// Longest line taken for an upgrade command: an IMAP tag and STARTTLS fit many times over.
    static let maximumCommandLength = 128
    /// Longest XMPP element searched for (`<starttls .../>`, `<proceed .../>`).
    static let maximumElementLength = 256

    public enum Outcome: Equatable {
        case undecided
        /// Not an upgrade this detector knows: the connection is not followed further.
        case notStartTLS
        /// TLS begins at these offsets of the client's and the server's bytes.
        case upgraded(StartTLSProtocol, clientOffset: Int, serverOffset: Int)
    }

    /// Bytes of the client (the side that connects) and of the server.
    public private(set) var client: [UInt8] = []
    public private(set) var server: [UInt8] = []
    /// Bytes held: the plaintext kept so far.
    public var bufferedBytes: Int { client.capacity + server.capacity }
    public private(set) var outcome: Outcome = .undecided
    /// Complete lines so far, found incrementally.
    private var clientLines: [Line] = []
    private var serverLines: [Line] = []
    /// Client lines already looked at for the upgrade command, and the command once found.
    private var checkedClientLines = 0
    private var upgradeCommand: (index: Int, kind: StartTLSProtocol, tag: String)?
    /// Where the XMPP element search resumes in each direction.
    private var clientSearched = 0
    private var serverSearched = 0

    public init() {}

    /// Whether the first bytes of a direction look like a plaintext protocol this detector
    /// knows (so a connection that does not start with TLS is worth following).
    public static func looksLikePlaintextStart(_ bytes: UnsafeRawBufferPointer, fromClient: Bool) -> Bool {
        guard let first = bytes.first else { return false }
        if fromClient {
            return first == UInt8(ascii: "<") || first == 0x30
                || (bytes.count >= 8 && bytes[0] == 0 && bytes[1] == 0 && bytes[2] == 0 && bytes[3] == 8)
        }
        return first == UInt8(ascii: "2") || first == UInt8(ascii: "*") || first == UInt8(ascii: "+")
            || first == UInt8(ascii: "<")
            || (bytes.count >= 5 && bytes[3] == 0 && bytes[4] == 10)  // MySQL greeting: protocol version 10
    }

    /// Adds bytes from one side and decides when it can.
    public mutating func add(_ bytes: UnsafeRawBufferPointer, fromClient: Bool) -> Outcome {
        guard outcome == .undecided else { return outcome }
        let kept = bytes.prefix(Self.maximumPlaintext - (fromClient ? client.count : server.count))
        let start = fromClient ? client.count : server.count
        if fromClient { client.append(contentsOf: kept) } else { server.append(contentsOf: kept) }
        // Decide only when something that can end a command, reply or element arrived, so a
        // peer sending a byte at a time costs linear time, not quadratic.
        let lineEnd = kept.contains(0x0a)
        if lineEnd { collectLines(fromClient: fromClient, from: start) }
        if lineEnd || kept.contains(UInt8(ascii: ">")) || startsBinary {
            outcome = decide()
        }
        if clientLines.count > Self.maximumLines || serverLines.count > Self.maximumLines { outcome = .notStartTLS }
        if outcome == .undecided, client.count >= Self.maximumPlaintext || server.count >= Self.maximumPlaintext {
            outcome = .notStartTLS
        }
        return outcome
    }

    // MARK: deciding

    /// PostgreSQL, LDAP and MySQL start with binary messages, decided from their lengths.
    private var startsBinary: Bool {
        client.first == 0 || client.first == 0x30 || (server.count >= 5 && server[3] == 0 && server[4] == 10)
    }

    private mutating func collectLines(fromClient: Bool, from start: Int) {
        let bytes = fromClient ? client : server
        var lineStart = (fromClient ? clientLines : serverLines).last?.end ?? 0
        for index in start..<bytes.count where bytes[index] == 0x0a {
            var stop = index
            if stop > lineStart, bytes[stop - 1] == 0x0d { stop -= 1 }
            let line = Line(text: String(decoding: bytes[lineStart..<stop], as: UTF8.self), end: index + 1)
            if fromClient { clientLines.append(line) } else { serverLines.append(line) }
            lineStart = index + 1
        }
    }

    private mutating func decide() -> Outcome {
        if let binary = decideBinary() { return binary }
        if client.first == UInt8(ascii: "<") || server.first == UInt8(ascii: "<") { return decideXMPP() }
        return decideLines()
    }

    /// PostgreSQL, MySQL and LDAP, whose first bytes are binary.
    private func decideBinary() -> Outcome? {
        // PostgreSQL: 8-byte requests (length 8, code); GSSENCRequest (80877104) may come
        // first and be refused with "N".
        if client.count >= 8, client[0] == 0, client[1] == 0, client[2] == 0, client[3] == 8 {
            var clientOffset = 0
            var serverOffset = 0
            while client.count >= clientOffset + 8, client[clientOffset + 3] == 8 {
                let code = client[(clientOffset + 4)..<(clientOffset + 8)]
                guard server.count > serverOffset else { return .undecided }
                let reply = server[serverOffset]
                clientOffset += 8
                serverOffset += 1
                if code.elementsEqual([0x04, 0xd2, 0x16, 0x2f]) {  // SSLRequest
                    return reply == UInt8(ascii: "S")
                        ? .upgraded(.postgres, clientOffset: clientOffset, serverOffset: serverOffset) : .notStartTLS
                }
                guard code.elementsEqual([0x04, 0xd2, 0x16, 0x30]), reply == UInt8(ascii: "N") else {
                    return .notStartTLS
                }
            }
            return client.count < clientOffset + 8 ? .undecided : .notStartTLS
        }
        // MySQL: the greeting (3-byte length, sequence 0, protocol 10), then the client's packet 1.
        if server.count >= 5, server[3] == 0, server[4] == 10 {
            let greeting = 4 + (Int(server[0]) | Int(server[1]) << 8 | Int(server[2]) << 16)
            guard server.count >= greeting else { return .undecided }
            guard client.count >= 8 else { return .undecided }
            let length = Int(client[0]) | Int(client[1]) << 8 | Int(client[2]) << 16
            let capabilities =
                UInt32(client[4]) | UInt32(client[5]) << 8 | UInt32(client[6]) << 16 | UInt32(client[7]) << 24
            // CLIENT_SSL (0x800); an SSLRequest is 32 bytes long, a HandshakeResponse longer.
            guard client[3] == 1, capabilities & 0x800 != 0, length == 32 else { return .notStartTLS }
            return .upgraded(.mysql, clientOffset: 4 + length, serverOffset: greeting)
        }
        // LDAP: an LDAPMessage (SEQUENCE) holding an ExtendedRequest ([APPLICATION 23]) for StartTLS.
        if client.first == 0x30 {
            guard let request = berElementLength(client, at: 0) else { return .undecided }
            // The StartTLS ExtendedRequest is about 30 bytes (RFC 4511 4.14.1).
            guard request <= 512 else { return .notStartTLS }
            guard contains(client[0..<min(request, client.count)], Array("1.3.6.1.4.1.1466.20037".utf8)) else {
                return .notStartTLS
            }
            guard let response = berElementLength(server, at: 0) else {
                return server.isEmpty || server.first == 0x30 ? .undecided : .notStartTLS
            }
            // ExtendedResponse ([APPLICATION 24], 0x78) whose resultCode (ENUMERATED) is success (0).
            let body = server[0..<min(response, server.count)]
            guard let tag = body.firstIndex(of: 0x78), let enumerated = body[tag...].firstIndex(of: 0x0a),
                enumerated + 2 < body.endIndex, body[enumerated + 1] == 1
            else { return .notStartTLS }
            return body[enumerated + 2] == 0
                ? .upgraded(.ldap, clientOffset: request, serverOffset: response) : .notStartTLS
        }
        return nil
    }

    /// The whole length of the BER element at `offset` (RFC 4511 5.1: definite lengths), or
    /// nil when its header or body is not complete yet.
    private func berElementLength(_ bytes: [UInt8], at offset: Int) -> Int? {
        guard bytes.count >= offset + 2 else { return nil }
        let first = bytes[offset + 1]
        var length = Int(first)
        var header = 2
        if first & 0x80 != 0 {
            let count = Int(first & 0x7f)
            guard count >= 1, count <= 4, bytes.count >= offset + 2 + count else { return nil }
            length = 0
            for i in 0..<count { length = length << 8 | Int(bytes[offset + 2 + i]) }
            header += count
        }
        let total = header + length
        return bytes.count >= offset + total ? total : nil
    }

    private func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        var index = haystack.startIndex
        while index + needle.count <= haystack.endIndex {
            if haystack[index..<(index + needle.count)].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }

    /// XMPP: the client's `<starttls .../>` and the server's `<proceed .../>`.
    private mutating func decideXMPP() -> Outcome {
        let namespace = "urn:ietf:params:xml:ns:xmpp-tls"
        // Searches resume near where the last one stopped: an element is short.
        let clientFrom = max(0, clientSearched - Self.maximumElementLength)
        let serverFrom = max(0, serverSearched - Self.maximumElementLength)
        guard let request = elementEnd(client, from: clientFrom, named: "starttls", namespace: namespace) else {
            clientSearched = client.count
            return .undecided
        }
        guard let reply = elementEnd(server, from: serverFrom, named: "proceed", namespace: namespace) else {
            let refused = elementEnd(server, from: serverFrom, named: "failure", namespace: namespace) != nil
            serverSearched = server.count
            return refused ? .notStartTLS : .undecided
        }
        return .upgraded(.xmpp, clientOffset: request, serverOffset: reply)
    }

    /// The offset after an empty element `<name xmlns='namespace'/>` (any prefix, quotes or
    /// spacing), searching from `from`.
    private func elementEnd(_ text: [UInt8], from: Int, named name: String, namespace: String) -> Int? {
        let open = Array("<".utf8)
        let nameBytes = Array(name.utf8)
        var index = from
        while index + open.count + nameBytes.count < text.count {
            if text[index] == open[0], text[(index + 1)..<(index + 1 + nameBytes.count)].elementsEqual(nameBytes) {
                let limit = min(text.count, index + Self.maximumElementLength)
                guard let close = text[index..<limit].firstIndex(of: UInt8(ascii: ">")) else { return nil }
                let element = String(decoding: text[index...close], as: UTF8.self)
                if element.contains(namespace) { return close + 1 }
            }
            index += 1
        }
        return nil
    }

    /// SMTP, FTP, IMAP and POP3: command and reply lines.
    private mutating func decideLines() -> Outcome {
        guard let greeting = serverLines.first else { return .undecided }
        if upgradeCommand == nil {
            // Each client line is looked at once; commands are short.
            while upgradeCommand == nil, checkedClientLines < clientLines.count {
                let index = checkedClientLines
                checkedClientLines += 1
                guard clientLines[index].text.utf8.count <= Self.maximumCommandLength else { continue }
                let command = clientLines[index].text.uppercased().trimmingTrailingSpaces
                let words = command.split(separator: " ")
                let tag = words.first.map(String.init) ?? ""
                if command == "STARTTLS", greeting.text.hasPrefix("220") {
                    upgradeCommand = (index, .smtp, tag)
                } else if command == "AUTH TLS" || command == "AUTH SSL" || command == "AUTH TLS-C",
                    greeting.text.hasPrefix("220")
                {
                    upgradeCommand = (index, .ftp, tag)
                } else if words.count == 2, words[1] == "STARTTLS", greeting.text.hasPrefix("* ") {
                    upgradeCommand = (index, .imap, tag)
                } else if command == "STLS", greeting.text.hasASCIIPrefixIgnoringCase("+OK") {
                    upgradeCommand = (index, .pop3, tag)
                }
            }
        }
        guard let (index, kind, tag) = upgradeCommand else { return .undecided }
        // The reply to this command: the server's reply lines are answered in order,
        // one reply (possibly multi-line "250-...") per command after the greeting.
        guard let reply = replyLine(to: index, kind: kind, tag: tag, clientLines, serverLines) else {
            return .undecided
        }
        let accepted: Bool
        switch kind {
        case .smtp: accepted = reply.text.hasPrefix("220")
        case .ftp: accepted = reply.text.hasPrefix("234")
        case .imap: accepted = reply.text.hasASCIIPrefixIgnoringCase(tag + " OK")
        default: accepted = reply.text.hasPrefix("+OK")
        }
        return accepted ? .upgraded(kind, clientOffset: clientLines[index].end, serverOffset: reply.end) : .notStartTLS
    }

    /// The server line that answers the client's command number `index`.
    private func replyLine(
        to index: Int,
        kind: StartTLSProtocol,
        tag: String?,
        _ clientLines: [Line],
        _ serverLines: [Line]
    ) -> Line? {
        switch kind {
        case .imap:
            // Tagged replies come in command order; untagged "* ..." lines do not end a reply.
            // Clients may reuse a tag ("." for every command), so count the earlier ones.
            let prefix = (tag ?? "") + " "
            let earlier = clientLines.prefix(index).filter { $0.text.hasASCIIPrefixIgnoringCase(prefix) }.count
            let tagged = serverLines.filter { $0.text.hasASCIIPrefixIgnoringCase(prefix) }
            return tagged.count > earlier ? tagged[earlier] : nil
        case .smtp, .ftp:
            // Final reply lines are "ddd " (RFC 5321 4.2.1); the greeting is reply 0.
            let finals = serverLines.filter { $0.text.utf8.dropFirst(3).first == UInt8(ascii: " ") }
            return finals.count > index + 1 ? finals[index + 1] : nil
        default:
            // POP3 (RFC 1939 3): one status line per command; +OK to CAPA, LIST or UIDL
            // without an argument, RETR or TOP opens a list that ends with ".".
            var position = 1  // after the greeting
            for command in clientLines.prefix(index) {
                guard position < serverLines.count else { return nil }
                let status = serverLines[position]
                position += 1
                let words = command.text.uppercased().split(separator: " ")
                let multiLine =
                    ["CAPA", "RETR", "TOP"].contains(words.first.map(String.init) ?? "")
                    || (["LIST", "UIDL"].contains(words.first.map(String.init) ?? "") && words.count == 1)
                if multiLine, status.text.hasPrefix("+OK") {
                    while position < serverLines.count, serverLines[position].text != "." { position += 1 }
                    guard position < serverLines.count else { return nil }
                    position += 1
                }
            }
            return position < serverLines.count ? serverLines[position] : nil
        }
    }

    private struct Line {
        var text: String
        /// Offset after the line's end of line.
        var end: Int
    }
}

extension String {
    /// Whether the text starts with `prefix`, ASCII letters compared without case (the
    /// protocols' keywords and tags are case-insensitive ASCII: RFC 3501 9, RFC 5321 2.4).
    /// Allocates nothing.
    fileprivate func hasASCIIPrefixIgnoringCase(_ prefix: String) -> Bool {
        var text = utf8.makeIterator()
        for expected in prefix.utf8 {
            guard let byte = text.next() else { return false }
            if byte != expected, byte | 0x20 != expected | 0x20 || !(0x61...0x7a).contains(byte | 0x20) { return false }
        }
        return true
    }

    fileprivate var trimmingTrailingSpaces: String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
