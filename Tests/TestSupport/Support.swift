import Capture
import Extraction
import Foundation
import Handshakes
import Pipeline
import Stickiness

/// Where the tests find their inputs.
package enum Paths {
    /// The repository root (this file is Tests/TestSupport/Support.swift).
    package static let repository: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    package static let captures = repository.appendingPathComponent("captures")

    /// `../shared/peer-corpus` beside the repository (third-party captures, never committed).
    package static let peerCorpus = repository.deletingLastPathComponent().appendingPathComponent("shared/peer-corpus")

    package static var peerCorpusPresent: Bool {
        FileManager.default.fileExists(atPath: peerCorpus.appendingPathComponent("README.md").path)
    }

    /// The recorded captures: every .pcap and .pcapng in captures/.
    package static var recordedCaptures: [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: captures.path)) ?? []
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
            .map { captures.appendingPathComponent($0) }
    }

    /// Every capture in the peer corpus (empty when absent).
    package static var peerCaptures: [URL] {
        guard peerCorpusPresent else { return [] }
        var all: [URL] = []
        for folder in ["zeek/traces", "ja4/pcap"] {
            let dir = peerCorpus.appendingPathComponent(folder)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            all += names.sorted().map { dir.appendingPathComponent($0) }
        }
        return all
    }

    /// suricata-verify's captures in the peer corpus (empty when absent): most are not TLS.
    package static var suricataCaptures: [URL] {
        guard peerCorpusPresent else { return [] }
        let dir = peerCorpus.appendingPathComponent("suricata-verify/pcaps")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0) }
    }

    /// The built `tlsreuse` binary, beside the test bundle.
    package static var binary: URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = testBinary.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("tlsreuse")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return repository.appendingPathComponent(".build/debug/tlsreuse")
    }
}

/// Extracts every handshake record from capture files.
package func extractRecords(
    _ paths: [String],
    filter: String? = nil
) throws -> ([HandshakeRecord], ExtractionStatistics) {
    var records: [HandshakeRecord] = []
    let statistics = try Extraction.run(paths: paths, filter: filter) { records.append($0) }
    return (records, statistics)
}

package func extractRecords(_ url: URL) throws -> [HandshakeRecord] {
    try extractRecords([url.path]).0
}

/// A capture through the pipeline the command line runs: the records that passed the filter,
/// balancer back legs left out (their fronts carry `backend`), linked; and the pipeline, for
/// its results.
package func analysed(
    _ url: URL,
    _ options: PipelineOptions = PipelineOptions()
) throws -> (records: [HandshakeRecord], pipeline: Pipeline) {
    nonisolated(unsafe) var records: [HandshakeRecord] = []
    let pipeline = Pipeline(options) { if $0.backsideOf == nil { records.append($0) } }
    _ = try pipeline.extract(files: [url.path])
    return (records, pipeline)
}

/// The records of a capture as the analysis sees them (`analysed`).
package func frontRecords(_ url: URL) throws -> [HandshakeRecord] {
    try analysed(url).records
}

/// Every record of every recorded capture as the analysis sees them, with the balancer legs
/// paired and sessions linked, so the fields later stages fill are set too.
package func frontRecordsOfRecordedCaptures() throws -> [HandshakeRecord] {
    try Paths.recordedCaptures.flatMap { try frontRecords($0) }
}

/// By haproxy's log (`servers`, in connection order) and how the clients were run
/// (`verdicts`): the offers made (each `-sess_in` connection whose `-sess_out` saver came
/// before it) and those that landed on another server than the one that issued the session.
package func offersElsewhere(verdicts: [ClientVerdict], servers: [String]) -> (offers: Int, elsewhere: Int) {
    var offers = 0
    var elsewhere = 0
    for (index, verdict) in verdicts.enumerated() where index < servers.count {
        guard let file = verdict.argument("-sess_in"),
            let saver = verdicts[..<index].lastIndex(where: { $0.argument("-sess_out") == file })
        else { continue }
        offers += 1
        if servers[index] != servers[saver] { elsewhere += 1 }
    }
    return (offers, elsewhere)
}

/// haproxy's tcplog: which server ("s1", "s2") took each client port, in order.
package func haproxyServers(log url: URL) throws -> [(clientPort: Int, server: String)] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").compactMap { line in
        // 127.0.0.2:43713 [29/Nov/2026:06:09:09.125] fe be/s1 1/0/14 6355 -- ...
        let words = line.split(separator: " ")
        guard words.count > 3, let colon = words[0].lastIndex(of: ":"),
            let port = Int(words[0][words[0].index(after: colon)...]),
            let slash = words[3].firstIndex(of: "/")
        else { return nil }
        return (port, String(words[3][words[3].index(after: slash)...]))
    }
}

/// Runs a program and returns its exit status and output.
package struct ProcessResult {
    /// The exit status, or the signal's number when `signalled`.
    package var status: Int32
    package var stdout: String
    package var stderr: String
    /// True when a signal ended the program (a Swift trap is SIGILL or SIGTRAP).
    package var signalled: Bool
    package init(status: Int32, stdout: String, stderr: String, signalled: Bool = false) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.signalled = signalled
    }

    /// True when the program trapped or crashed: ended by a signal, or by a shell's 128 + signal.
    package var crashed: Bool {
        signalled || [132, 133, 134, 136, 139].contains(status) || stderr.contains("Fatal error")
            || stderr.contains("crashed")
    }
}

@discardableResult
package func runProcess(_ executable: String, _ arguments: [String], stdin: Data? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
    process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
    // stdout through a pipe, stderr through a file, so neither can fill up and block the child.
    let out = Pipe()
    let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-stderr-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: errPath.path, contents: nil)
    let err = try FileHandle(forWritingTo: errPath)
    defer { try? FileManager.default.removeItem(at: errPath) }
    process.standardOutput = out
    process.standardError = err
    let input = Pipe()
    process.standardInput = stdin == nil ? FileHandle.nullDevice : input
    try process.run()
    if let stdin {
        input.fileHandleForWriting.write(stdin)
        try? input.fileHandleForWriting.close()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try? err.close()
    let errData = (try? Data(contentsOf: errPath)) ?? Data()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self),
        signalled: process.terminationReason == .uncaughtSignal
    )
}

package func toolAvailable(_ name: String) -> Bool {
    (try? runProcess("which", [name]).status) == 0
}

// MARK: independent truth

/// What a client printed about one connection while a capture was recorded.
package struct ClientVerdict: Equatable, CustomStringConvertible {
    package var reused: Bool
    package var version: String
    /// When the client run started (epoch seconds), from record.sh's marker; nil for the
    /// reconnects of an `s_client -reconnect` run.
    package var startedAt: Double?
    /// The client's command line, from the marker.
    package var command: String?
    /// The first reconnect run's connection this one belongs to, for -reconnect runs.
    package var reconnectOf: Int?
    /// s_client printed a session block ("SSL-Session:"): it holds a session to offer. A TLS 1.3
    /// connection has none until a ticket arrives.
    package var heldSession = false
    /// The lifetime of the first TLS session ticket s_client printed (RFC 5077 3.3,
    /// RFC 8446 4.6.1), in seconds.
    package var ticketLifetimeHint: Double?
    package var description: String { "\(reused ? "Reused" : "New") \(version)" }

    package init(
        reused: Bool,
        version: String,
        startedAt: Double? = nil,
        command: String? = nil,
        reconnectOf: Int? = nil
    ) {
        self.reused = reused
        self.version = version
        self.startedAt = startedAt
        self.command = command
        self.reconnectOf = reconnectOf
    }

    /// The value following `option` in the command, e.g. the file of "-sess_in".
    package func argument(_ option: String) -> String? {
        guard let words = command?.split(separator: " ").map(String.init), let index = words.firstIndex(of: option),
            index + 1 < words.count
        else { return nil }
        return words[index + 1]
    }
}

/// Reads a `captures/NAME.client.log`. openssl s_client prints "New, TLSv1.2, ..." or
/// "Reused, ..." per connection (the first such line of each connection counts:
/// connections are separated by "### connection" lines written by record.sh and by
/// s_client's own "drop connection and then reconnect"). curl -v logs are split at
/// "Connected to" (a new "#N" connection number; a proxy's tunnel repeats the line), and
/// only connections that printed "SSL connection using" made a handshake; "re-using
/// session" marks a resumed one. A log may hold runs of both, each after its "###" line.
package func clientVerdicts(log url: URL) throws -> [ClientVerdict] {
    // Not always UTF-8: alpn-bytes.client.log holds the raw ALPN names s_client was given.
    let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var blocks: [[String]] = [[]]
    for line in lines {
        if line.hasPrefix("### connection"), !blocks[blocks.count - 1].isEmpty { blocks.append([]) }
        blocks[blocks.count - 1].append(line)
    }
    var verdicts: [ClientVerdict] = []
    for block in blocks {
        if block.contains(where: { $0.hasPrefix("* Connected to") }) {
            verdicts += curlVerdicts(block, first: verdicts.count)
        } else {
            verdicts += opensslVerdicts(block, first: verdicts.count)
        }
    }
    return verdicts
}

private func curlVerdicts(_ lines: [String], first: Int) -> [ClientVerdict] {
    var verdicts: [ClientVerdict] = []
    var current: ClientVerdict?
    var currentNumber: Substring?
    var handshake = false
    func close() {
        if let current, handshake { verdicts.append(current) }
    }
    for line in lines {
        if line.hasPrefix("* Connected to") {
            let number = line.split(separator: " ").last
            if current != nil, number == currentNumber { continue }
            close()
            currentNumber = number
            handshake = false
            current = ClientVerdict(reused: false, version: "?")
            current?.heldSession = true  // curl keeps every session it is given
        } else if line.contains("re-using session") {
            // curl offers the session of its previous connection.
            current?.reused = true
            current?.reconnectOf = first + verdicts.count - 1
        } else if let range = line.range(of: "SSL connection using ") {
            handshake = true
            current?.version = String(line[range.upperBound...].prefix { $0 != " " })
        }
    }
    close()
    return verdicts
}

private func opensslVerdicts(_ lines: [String], first: Int) -> [ClientVerdict] {
    var verdicts: [ClientVerdict] = []
    // The version on the New/Reused line is the cipher's (SSL_CIPHER_get_version); the
    // session block's "Protocol  :" line that follows is the negotiated protocol.
    var current: ClientVerdict?
    var pendingStart: Double?
    var pendingCommand: String?
    var runStart: Int?
    let protocolNames = ["TLSv1": "TLSv1.0", "SSLv3": "SSLv3"]
    for line in lines {
        if line.hasPrefix("### connection") || line.hasPrefix("drop connection and then reconnect") {
            if let current { verdicts.append(current) }
            current = nil
            if line.hasPrefix("### connection") {
                let words = line.split(separator: " ", maxSplits: 3).map(String.init)
                pendingStart = words.count > 2 ? Double(words[2]) : nil
                pendingCommand = words.count > 3 ? words[3] : nil
                runStart = nil
            }
            continue
        }
        if current == nil, line.hasPrefix("New, ") || line.hasPrefix("Reused, ") {
            current = ClientVerdict(
                reused: line.hasPrefix("Reused"),
                version: "?",
                startedAt: pendingStart,
                command: pendingCommand,
                reconnectOf: pendingCommand?.hasSuffix("-reconnect") == true ? runStart : nil
            )
            // TLS 1.3 cipher suites exist only in TLS 1.3, so there the cipher's version is the
            // protocol; s_client -reconnect prints no session block for TLS 1.3 reconnects.
            if line.contains(", TLSv1.3, ") { current?.version = "TLSv1.3" }
            if pendingCommand?.hasSuffix("-reconnect") == true, runStart == nil { runStart = first + verdicts.count }
            pendingStart = nil
        } else if line.hasPrefix("SSL-Session:") {
            current?.heldSession = true
        } else if current?.ticketLifetimeHint == nil, let range = line.range(of: "TLS session ticket lifetime hint: ") {
            current?.ticketLifetimeHint = Double(line[range.upperBound...].prefix { $0.isNumber })
        } else if current?.version == "?", let range = line.range(of: "Protocol  : ") {
            let name = line[range.upperBound...].trimmingCharacters(in: .whitespaces)
            current?.version = protocolNames[name] ?? name
        }
    }
    if let current { verdicts.append(current) }
    return verdicts
}

/// One TLS connection as tshark dissects it.
package struct TsharkHandshake: Equatable, CustomStringConvertible {
    package var client: String
    package var clientPort: Int
    package var server: String
    package var serverPort: Int
    package var sni: String?
    package var clientSessionID: String
    package var serverSessionID: String?
    package var version: Int?
    package var cipher: Int?
    package var description: String { "\(client):\(clientPort) -> \(server):\(serverPort)" }
}

private let helloRetryRandom = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"

/// Dissects a capture with tshark: the first ClientHello and the last ServerHello (not a
/// HelloRetryRequest) of every TCP stream (TLS) and UDP stream (DTLS). `tlsPorts` are
/// decoded as TLS whatever the port.
package func tsharkHandshakes(
    _ path: String,
    tlsPorts: Set<Int>,
    quicPorts: Set<Int> = [],
    proxyPorts: [Int: String] = [:]
) throws -> [TsharkHandshake] {
    let common = [
        "tcp.stream", "udp.stream", "ip.src", "ipv6.src", "tcp.srcport", "udp.srcport", "ip.dst", "ipv6.dst",
        "tcp.dstport", "udp.dstport",
    ]
    let helloFields = [
        "handshake.type", "handshake.extensions_server_name", "handshake.session_id", "handshake.version",
        "handshake.extensions.supported_version", "handshake.ciphersuite", "handshake.random",
    ]
    let fields = common + helloFields.map { "tls." + $0 } + helloFields.map { "dtls." + $0 }
    // Out-of-order segments reassembled too: without it tshark loses server flights that arrive out of order.
    var arguments = [
        "-r", path, "-o", "tcp.desegment_tcp_streams:TRUE", "-o", "tls.desegment_ssl_records:TRUE", "-o",
        "tcp.reassemble_out_of_order:TRUE",
    ]
    for port in tlsPorts.sorted() { arguments += ["-d", "tcp.port==\(port),tls"] }
    for port in quicPorts.sorted() where port != 443 { arguments += ["-d", "udp.port==\(port),quic"] }
    // Proxies: tshark follows HTTP CONNECT and SOCKS into the tunnelled TLS.
    for (port, dissector) in proxyPorts.sorted(by: { $0.key < $1.key }) {
        arguments += ["-d", "tcp.port==\(port),\(dissector)"]
    }
    arguments += [
        "-Y",
        "tls.handshake.type == 1 || tls.handshake.type == 2 || dtls.handshake.type == 1 || dtls.handshake.type == 2",
        "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|",
    ]
    for field in fields { arguments += ["-e", field] }
    let result = try runProcess("tshark", arguments)
    var byStream: [String: TsharkHandshake] = [:]
    var order: [String] = []
    for line in result.stdout.split(separator: "\n") {
        var cells = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        cells += Array(repeating: "", count: max(0, fields.count - cells.count))
        let row = Dictionary(uniqueKeysWithValues: zip(fields, cells))
        let isDTLS = !row["dtls.handshake.type"]!.isEmpty
        let prefix = isDTLS ? "dtls." : "tls."
        // QUIC carries TLS handshake messages over UDP; tshark decrypts the Initial packets.
        let transport = isDTLS || row["tcp.stream"]!.isEmpty ? "udp" : "tcp"
        guard let streamNumber = row["\(transport).stream"], !streamNumber.isEmpty else { continue }
        let stream = transport + streamNumber
        func values(_ key: String) -> [String] {
            row[key.hasPrefix("handshake") ? prefix + key : key]!.split(
                separator: "|",
                omittingEmptySubsequences: false
            ).map(String.init)
        }
        func first(_ key: String) -> String { values(key).first ?? "" }
        func last(_ key: String) -> String { values(key).last ?? "" }
        let types = values("handshake.type")
        if types.contains("1"), byStream[stream] == nil {
            let sni = first("handshake.extensions_server_name")
            byStream[stream] = TsharkHandshake(
                // The innermost addresses: tunnels put the outer header's first.
                client: last("ip.src").isEmpty ? last("ipv6.src") : last("ip.src"),
                clientPort: Int(first("\(transport).srcport")) ?? 0,
                server: last("ip.dst").isEmpty ? last("ipv6.dst") : last("ip.dst"),
                serverPort: Int(first("\(transport).dstport")) ?? 0,
                sni: sni.isEmpty ? nil : sni,
                clientSessionID: first("handshake.session_id")
            )
            order.append(stream)
        }
        if types.contains("2"), byStream[stream] != nil {
            if row[prefix + "handshake.random"]!.contains(helloRetryRandom) { continue }
            // DTLS 1.3 hello retry requests are ServerHellos too; a later ServerHello replaces it.
            byStream[stream]!.serverSessionID = first("handshake.session_id")
            let selected = last("handshake.extensions.supported_version")
            let legacy = first("handshake.version")
            byStream[stream]!.version = Int((selected.isEmpty ? legacy : selected).dropFirst(2), radix: 16)
            byStream[stream]!.cipher = Int(last("handshake.ciphersuite").dropFirst(2), radix: 16)
        }
    }
    return order.compactMap { byStream[$0] }
}

/// The raw bytes of each direction of the first TCP stream with this port, as tshark's
/// "follow" reassembles them: an independent source of real TLS byte streams.
package func tsharkStreamBytes(_ path: String, stream: Int) throws -> (client: [UInt8], server: [UInt8]) {
    let result = try runProcess("tshark", ["-r", path, "-q", "-z", "follow,tcp,raw,\(stream)"])
    var client: [UInt8] = []
    var server: [UInt8] = []
    var inBody = false
    for line in result.stdout.split(separator: "\n") {
        if line.hasPrefix("Node 1:") {
            inBody = true
            continue
        }
        if line.hasPrefix("=====") {
            if inBody { break }
            continue
        }
        guard inBody else { continue }
        let isServer = line.hasPrefix("\t")
        let hex = line.trimmingCharacters(in: .whitespaces)
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex), index < hex.endIndex {
            if let byte = UInt8(hex[index..<next], radix: 16) { bytes.append(byte) }
            index = next
        }
        if isServer { server += bytes } else { client += bytes }
    }
    return (client, server)
}

/// Runs `body` with `capture` cut into files of `packetsPerFile` packets by editcap, in name
/// order, as tcpdump rotates them; the files are removed afterwards.
package func withRotatedCapture<T>(_ capture: URL, packetsPerFile: Int, _ body: ([String]) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
        "tlsreuse-rotated-\(getpid())-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    try runProcess(
        "editcap",
        ["-c", String(packetsPerFile), capture.path, dir.appendingPathComponent("part.pcap").path]
    )
    let parts = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted().map {
        dir.appendingPathComponent($0).path
    }
    return try body(parts)
}
