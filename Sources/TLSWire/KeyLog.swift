/// A ClientHello.random (RFC 8446 4.1.2): the key by which a key log names a connection.
public struct ClientRandom: Hashable, Sendable {
    private var words: (UInt64, UInt64, UInt64, UInt64)

    /// Nil unless `bytes` holds exactly 32 bytes.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { storage in
            for (index, byte) in bytes.enumerated() { storage[index] = byte }
        }
        self.words = words
    }

    public static func == (a: ClientRandom, b: ClientRandom) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}

/// A traffic secret or master secret: 32 bytes (SHA-256 suites) or 48 (SHA-384 suites and
/// TLS 1.2 master secrets), kept inline so a key log of many connections holds no arrays.
public struct Secret: Equatable, Sendable {
    public static let maximumLength = 48
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    public private(set) var count = 0

    /// Nil unless `bytes` holds 32 or 48 bytes.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 32 || bytes.count == 48 else { return nil }
        withUnsafeMutableBytes(of: &words) { storage in
            for (index, byte) in bytes.enumerated() { storage[index] = byte }
        }
        count = bytes.count
    }

    public var bytes: [UInt8] {
        withUnsafeBytes(of: words) { Array($0.prefix(count)) }
    }

    public static func == (a: Secret, b: Secret) -> Bool { a.count == b.count && a.words == b.words }
}

/// The secrets a key log gives for one connection (NSS key log labels).
public struct ConnectionSecrets: Equatable, Sendable {
    /// CLIENT_RANDOM: the TLS 1.2 and earlier master secret.
    public var masterSecret: Secret?
    /// CLIENT_EARLY_TRAFFIC_SECRET (or EARLY_TRAFFIC_SECRET).
    public var clientEarlyTraffic: Secret?
    /// CLIENT_HANDSHAKE_TRAFFIC_SECRET and SERVER_HANDSHAKE_TRAFFIC_SECRET (RFC 8446 7.1).
    public var clientHandshakeTraffic: Secret?
    public var serverHandshakeTraffic: Secret?
    /// CLIENT_TRAFFIC_SECRET_0 and SERVER_TRAFFIC_SECRET_0: the first application traffic secrets.
    public var clientApplicationTraffic: Secret?
    public var serverApplicationTraffic: Secret?

    public init() {}
}

/// Secrets from key logs in the NSS format (what SSLKEYLOGFILE makes curl, browsers and
/// `openssl s_client -keylogfile` write, and what a pcapng Decryption Secrets Block holds):
/// one `LABEL CLIENT_RANDOM SECRET` line per secret, both in hex; `#` starts a comment.
/// Lines that do not parse are counted and the first few named; none stops the reading.
public struct KeyLog: Sendable {
    /// Longest line read (an ECH_CONFIG line, the longest known label, holds a whole ECH
    /// configuration in hex); longer lines are malformed.
    public static let maximumLineLength = 8192
    /// Connections kept at most, whatever the memory budget; past a key log's own limit
    /// (`connectionLimit`), new connections' lines are counted only.
    public static let maximumConnections = 262_144
    /// What one connection's secrets take in memory, for the budget: the table entry with
    /// its key, and the table's slack.
    public static let bytesPerConnection =
        (MemoryLayout<ClientRandom>.stride + MemoryLayout<ConnectionSecrets>.stride) * 4 / 3
    /// Connections this key log keeps (`maximumConnections`, or fewer in a smaller budget).
    public let connectionLimit: Int
    /// Malformed lines described by number and reason; the rest are counted only.
    public static let maximumDescribedProblems = 8

    public private(set) var connections: [ClientRandom: ConnectionSecrets] = [:]
    /// Lines that did not parse, and the first few of them named ("keys.log:12: ...").
    public private(set) var malformedLines = 0
    public private(set) var problems: [String] = []
    /// Lines whose label tlsreuse has no use for (EXPORTER_SECRET, RSA, ECH_*, secrets after
    /// key updates).
    public private(set) var unusedLines = 0
    /// Secrets of connections past `maximumConnections`.
    public private(set) var linesNotKept = 0
    /// Lines giving a secret already known with another value (the later one is kept).
    public private(set) var conflictingLines = 0

    /// `memoryBytes`: what the secrets may take (`bytesPerConnection` each).
    public init(memoryBytes: Int = KeyLog.maximumConnections * KeyLog.bytesPerConnection) {
        connectionLimit = min(KeyLog.maximumConnections, max(1, memoryBytes / KeyLog.bytesPerConnection))
    }

    public var isEmpty: Bool { connections.isEmpty }

    /// Forgets the problems found so far (once they were told), so that those found later,
    /// in secrets the input carries, are told on their own.
    public mutating func forgetProblems() {
        malformedLines = 0
        problems = []
        linesNotKept = 0
    }

    public func secrets(for random: ClientRandom) -> ConnectionSecrets? { connections[random] }

    /// Reads key log text; `source` names it in the problems ("keys.log", "capture.pcapng DSB"),
    /// and `firstLine` is the number of its first line there (a followed file is read in
    /// parts). Returns the number of secrets kept.
    @discardableResult
    public mutating func add(text: some Collection<UInt8>, source: String, firstLine: Int = 1) -> Int {
        var kept = 0
        var lineNumber = firstLine - 1
        var line: [UInt8] = []
        var overlong = false
        func finishLine() {
            lineNumber += 1
            defer {
                line.removeAll(keepingCapacity: true)
                overlong = false
            }
            if overlong {
                note("\(source):\(lineNumber): line longer than \(KeyLog.maximumLineLength) bytes")
                return
            }
            switch addLine(line) {
            case .kept: kept += 1
            case .ignored: break
            case let .malformed(reason): note("\(source):\(lineNumber): \(reason)")
            }
        }
        for byte in text {
            if byte == UInt8(ascii: "\n") {
                finishLine()
            } else if line.count < KeyLog.maximumLineLength {
                line.append(byte)
            } else {
                overlong = true
            }
        }
        if !line.isEmpty || overlong { finishLine() }
        return kept
    }

    private mutating func note(_ problem: String) {
        malformedLines += 1
        if problems.count < KeyLog.maximumDescribedProblems { problems.append(problem) }
    }

    private enum LineOutcome {
        case kept
        case ignored
        case malformed(String)
    }

    private mutating func addLine(_ raw: [UInt8]) -> LineOutcome {
        var line = raw[...]
        while let last = line.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: " ") || last == 9 {
            line.removeLast()
        }
        while let first = line.first, first == UInt8(ascii: " ") || first == 9 { line.removeFirst() }
        if line.isEmpty || line.first == UInt8(ascii: "#") { return .ignored }
        let fields = line.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == 9 })
        guard fields.count == 3 else {
            return .malformed("expected LABEL CLIENT_RANDOM SECRET, found \(fields.count) fields")
        }
        let label = String(decoding: fields[0], as: UTF8.self)
        let slot: WritableKeyPath<ConnectionSecrets, Secret?>
        switch label {
        case "CLIENT_RANDOM": slot = \.masterSecret
        case "CLIENT_EARLY_TRAFFIC_SECRET", "EARLY_TRAFFIC_SECRET": slot = \.clientEarlyTraffic
        case "CLIENT_HANDSHAKE_TRAFFIC_SECRET": slot = \.clientHandshakeTraffic
        case "SERVER_HANDSHAKE_TRAFFIC_SECRET": slot = \.serverHandshakeTraffic
        case "CLIENT_TRAFFIC_SECRET_0": slot = \.clientApplicationTraffic
        case "SERVER_TRAFFIC_SECRET_0": slot = \.serverApplicationTraffic
        case "EXPORTER_SECRET", "EARLY_EXPORTER_SECRET", "RSA", "ECH_SECRET", "ECH_CONFIG":
            unusedLines += 1
            return .ignored
        case _ where label.hasPrefix("CLIENT_TRAFFIC_SECRET_") || label.hasPrefix("SERVER_TRAFFIC_SECRET_"):
            // Secrets after key updates (OpenSSL writes _N): worked out here from _0 instead (RFC 8446 7.2).
            unusedLines += 1
            return .ignored
        default:
            return .malformed("unknown label \(WireText.decode(Array(fields[0].prefix(64))))")
        }
        guard let randomBytes = KeyLog.hexBytes(fields[1]), let random = ClientRandom(randomBytes) else {
            return .malformed("\(label): the client random is not 32 bytes in hex")
        }
        guard let secretBytes = KeyLog.hexBytes(fields[2]), let secret = Secret(secretBytes),
            label != "CLIENT_RANDOM" || secret.count == 48
        else {
            return .malformed(
                "\(label): the secret is not \(label == "CLIENT_RANDOM" ? "48" : "32 or 48") bytes in hex"
            )
        }
        if connections[random] == nil {
            guard connections.count < connectionLimit else {
                linesNotKept += 1
                return .ignored
            }
            connections[random] = ConnectionSecrets()
        }
        if let known = connections[random]![keyPath: slot], known != secret { conflictingLines += 1 }
        connections[random]![keyPath: slot] = secret
        return .kept
    }

    /// Bytes from hex digits (either case); nil when the count is odd or a digit is not hex.
    static func hexBytes(_ digits: some Collection<UInt8>) -> [UInt8]? {
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var high: UInt8?
        for digit in digits {
            let value: UInt8
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = digit - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return bytes
    }
}
