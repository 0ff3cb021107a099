import Foundation
import TestSupport
import Testing

/// `--keylog` end to end (issue 18) on tls13-keylog.pcap and the key log its client wrote:
/// what the records gain, against tshark's decryption of the same capture with the same key
/// log and against what s_client printed while it was recorded.
@Suite(.enabled(if: toolAvailable("tshark") && toolAvailable("python3"), "tshark decrypts, python3 hashes"))
struct KeyLogCommandTests {
    static let capture = recorded[0].capture
    static let keys = recorded[0].keys

    /// A JSON value as text with sorted keys, for comparing values read back.
    static func canonical(_ value: Any?) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: [value ?? NSNull()], options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// The first service of `report --format json` with `arguments`.
    static func firstService(_ arguments: [String]) throws -> [String: Any] {
        let result = try tlsreuse(["report", "--format", "json"] + arguments)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return try #require((json?["services"] as? [[String: Any]])?.first)
    }

    static func records(_ arguments: [String]) throws -> (records: [[String: Any]], stderr: String) {
        let result = try tlsreuse(["handshakes", "--format", "jsonl"] + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let records = result.stdout.split(separator: "\n").map {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? [:]
        }
        return (records, result.stderr)
    }

    /// A recorded key-log capture: its key log, the server port, and the ticket lifetime its
    /// server was configured to announce.
    struct Recorded: CustomTestStringConvertible, Sendable {
        let capture: String
        let keys: String
        let serverPort: Int
        let configuredLifetime: Int
        /// "tcp", or "udp" for QUIC: tshark's stream and port fields.
        let transport: String
        let name: String
        var testDescription: String { name }

        init(_ name: String, keys: String, serverPort: Int, configuredLifetime: Int, transport: String = "tcp") {
            self.name = name
            capture = Paths.captures.appendingPathComponent(name).path
            self.keys = Paths.captures.appendingPathComponent(keys).path
            self.serverPort = serverPort
            self.configuredLifetime = configuredLifetime
            self.transport = transport
        }
    }

    /// s_server's default lifetime (OpenSSL: 7200 s), nginx's `ssl_session_timeout 600s`,
    /// nginx's `ssl_session_timeout 300s` behind haproxy (front side only), and aioquic's
    /// server (QUIC; its TLS layer issues every ticket for 86400 s).
    static let recorded = [
        Recorded("tls13-keylog.pcap", keys: "tls13-keylog.keys", serverPort: 14420, configuredLifetime: 7200),
        Recorded("nginx-keylog.pcap", keys: "nginx-keylog.keys", serverPort: 14421, configuredLifetime: 600),
        Recorded(
            "lb-tls13-keylog-client-side.pcap",
            keys: "lb-tls13-keylog.keys",
            serverPort: 14500,
            configuredLifetime: 300
        ),
        Recorded(
            "quic-keylog.pcap",
            keys: "quic-keylog.keys",
            serverPort: 14451,
            configuredLifetime: 86400,
            transport: "udp"
        ),
    ]

    /// Per TCP stream, as tshark decrypts it with the key log.
    struct StreamTruth {
        var ageAdds: [Int] = []
        var lifetimes: [Int] = []
        /// max_early_data_size of the tickets that carry one.
        var maxEarlyData: [Int] = []
        /// SHA-256 of the server's first certificate (empty for resumptions).
        var certificate = ""
        /// EncryptedExtensions held early_data (RFC 8446 4.2.10).
        var earlyDataAccepted = false
        /// The server's handshake message types after its ServerHello (all protected).
        var protectedTypes: [Int] = []
    }

    static func tsharkTruth(_ recorded: Recorded = recorded[0]) throws -> [Int: StreamTruth] {
        let result = try runProcess(
            "tshark",
            [
                "-r", recorded.capture, "-o", "tls.keylog_file:\(recorded.keys)", "-Y",
                "\(recorded.transport).srcport==\(recorded.serverPort) && tls", "-T", "fields",
                "-E", "separator=|", "-e", "\(recorded.transport).stream", "-e", "tls.handshake.session_ticket_age_add",
                "-e", "tls.handshake.session_ticket_lifetime_hint", "-e", "tls.handshake.certificate",
                "-e", "tls.early_data.max_early_data_size", "-e", "tls.handshake.type",
                "-e", "tls.handshake.extension.type",
            ]
        )
        var truth: [Int: StreamTruth] = [:]
        for line in result.stdout.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            let stream = Int(fields[0])!
            var entry = truth[stream] ?? StreamTruth()
            entry.ageAdds += fields[1].split(separator: ",").compactMap { Int($0) }
            entry.lifetimes += fields[2].split(separator: ",").compactMap { Int($0) }
            entry.maxEarlyData += fields[4].split(separator: ",").compactMap { Int($0) }
            let types = fields[5].split(separator: ",")
            entry.protectedTypes += types.compactMap { Int($0) }.filter { $0 != 2 }
            // early_data in EncryptedExtensions (8); a NewSessionTicket (4) carries it too.
            if types.contains("8"), !types.contains("4"), fields[6].split(separator: ",").contains("42") {
                entry.earlyDataAccepted = true
            }
            if let first = fields[3].split(separator: ",").first, entry.certificate.isEmpty {
                let digest = try runProcess(
                    "python3",
                    [
                        "-c", "import hashlib,sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1])).hexdigest())",
                        String(first),
                    ]
                )
                entry.certificate = digest.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            truth[stream] = entry
        }
        return truth
    }

    @Test func recordsGainTicketsAndCertificatesAsTsharkDecryptsThem() throws {
        let (decrypted, stderr) = try Self.records(["--keylog", Self.keys, Self.capture])
        #expect(!stderr.contains("key log:"))  // every line of the recorded key log reads
        let truth = try Self.tsharkTruth()
        #expect(decrypted.count == 7 && truth.count == 7)
        // Records come in order of first ClientHello, which is the order of tshark's streams.
        for (stream, record) in decrypted.enumerated() {
            let expected = try #require(truth[stream])
            let tickets = record["tickets_issued"] as? [[String: Any]] ?? []
            #expect(record["decrypted"] as? Bool == true)
            #expect(tickets.map { $0["age_add"] as? Int } == expected.ageAdds, "stream \(stream)")
            #expect(tickets.map { $0["lifetime"] as? Int } == expected.lifetimes, "stream \(stream)")
            #expect(tickets.allSatisfy { ($0["digest"] as? String)?.count == 32 })
            #expect(record["early_data_accepted"] as? Bool == false)  // s_client printed "Early data was not sent"
            let chain = record["cert_chain_fps"] as? [String] ?? []
            #expect(chain.first ?? "" == expected.certificate, "stream \(stream)")
            if record["resumed"] as? Bool == false {
                let certificate = record["certificate"] as? [String: Any]
                #expect(certificate?["cn"] as? String == "localhost")
            }
        }
        // s_client printed one "TLS session ticket lifetime hint" per ticket it was issued.
        let log = try String(
            contentsOf: Paths.captures.appendingPathComponent("tls13-keylog.client.log"),
            encoding: .utf8
        )
        let printed = log.components(separatedBy: "TLS session ticket lifetime hint: 7200").count - 1
        let issued = decrypted.reduce(0) { $0 + (($1["tickets_issued"] as? [Any])?.count ?? 0) }
        #expect(issued == printed && issued == 11)
    }

    /// Without the key log the same records, with nothing read from protected records.
    @Test func withoutTheKeyLogNothingChangesButWhatItOpens() throws {
        let (plain, _) = try Self.records([Self.capture])
        let (decrypted, _) = try Self.records(["--keylog", Self.keys, Self.capture])
        #expect(plain.count == decrypted.count)
        for (a, b) in zip(plain, decrypted) {
            #expect(a["decrypted"] as? Bool == false && (a["tickets_issued"] as? [Any])?.isEmpty == true)
            #expect(a["cert_chain_fps"] as? [String] == [])
            for key in ["uid", "resumed", "resumption", "established", "version", "cipher", "psk_selected"] {
                #expect("\(a[key] ?? "nil")" == "\(b[key] ?? "nil")", "\(key)")
            }
        }
    }

    /// A resumption's PSK identity is a ticket an earlier connection was issued (RFC 8446
    /// 4.6.1): `resumes` names that connection, and `client_ticket_age` is the offered
    /// obfuscated_ticket_age less that ticket's ticket_age_add (4.2.11.1). Truth: tshark's
    /// decrypted tickets matched byte for byte with the identities the clients sent, and the
    /// client's Reused lines (every resumption it printed is linked).
    @Test(arguments: recorded)
    func offersLinkToTheConnectionThatIssuedTheirTicket(_ recorded: Recorded) throws {
        let result = try runProcess(
            "tshark",
            [
                "-r", recorded.capture, "-o", "tls.keylog_file:\(recorded.keys)", "-Y",
                "tls.handshake.type == 4 || tls.handshake.extensions.psk.identity.identity", "-T", "fields",
                "-E", "separator=|", "-e", "\(recorded.transport).stream", "-e", "tls.handshake.session_ticket",
                "-e", "tls.handshake.session_ticket_age_add", "-e", "tls.handshake.extensions.psk.identity.identity",
                "-e", "tls.handshake.extensions.psk.identity.obfuscated_ticket_age",
            ]
        )
        var issuedBy: [String: (stream: Int, ageAdd: UInt32)] = [:]
        var offered: [(stream: Int, identity: String, obfuscatedAge: UInt32)] = []
        for line in result.stdout.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            let stream = Int(fields[0])!
            for (ticket, ageAdd) in zip(fields[1].split(separator: ","), fields[2].split(separator: ",")) {
                issuedBy[String(ticket)] = (stream, UInt32(ageAdd)!)
            }
            if !fields[3].isEmpty { offered.append((stream, fields[3], UInt32(fields[4])!)) }
        }
        let (records, _) = try Self.records(["--keylog", recorded.keys, recorded.capture])
        let reused: Int
        if recorded.transport == "tcp" {
            let logName = recorded.capture.replacingOccurrences(of: ".pcap", with: ".client.log")
            reused = try clientVerdicts(log: URL(fileURLWithPath: logName)).filter(\.reused).count
        } else {
            // aioquic prints no verdict: ServerHellos with pre_shared_key (RFC 8446 4.2.11), as tshark reads them.
            reused =
                try runProcess(
                    "tshark",
                    ["-r", recorded.capture, "-Y", "tls.handshake.type == 2 && tls.handshake.extension.type == 41"]
                ).stdout.split(separator: "\n").count
        }
        #expect(offered.count >= reused && reused >= 2)
        var linkedResumptions = 0
        for offer in offered {
            let issuer = try #require(issuedBy[offer.identity])
            let record = records[offer.stream]
            #expect(record["resumes"] as? String == records[issuer.stream]["uid"] as? String)
            #expect(record["session_age_from"] as? String == "issue")
            let clientAge = Double(offer.obfuscatedAge &- issuer.ageAdd) / 1000
            #expect(abs((record["client_ticket_age"] as? Double ?? -1) - clientAge) < 0.001)
            if record["resumed"] as? Bool == true { linkedResumptions += 1 }
        }
        #expect(linkedResumptions == reused)
        // Without the key log the link is to the identity's first offer only, and no client age.
        let (plain, _) = try Self.records([recorded.capture])
        #expect(plain.allSatisfy { $0["resumes"] == nil || $0["resumes"] is NSNull })
        #expect(plain.allSatisfy { $0["client_ticket_age"] == nil || $0["client_ticket_age"] is NSNull })
    }

    /// Every ticket the server announced carries the lifetime it was configured with, on
    /// the records as in the report's lifetime hints (RFC 8446 4.6.1 ticket_lifetime), and
    /// every connection's certificate and tickets are what tshark decrypts.
    @Test(arguments: recorded.dropFirst())
    func ticketLifetimesAndCertificatesAgreeWithTsharkAndTheConfiguration(_ recorded: Recorded) throws {
        let (records, stderr) = try Self.records(["--keylog", recorded.keys, recorded.capture])
        #expect(!stderr.contains("key log:"))
        let truth = try Self.tsharkTruth(recorded)
        #expect(records.count == truth.count && records.count >= 3)
        var announced = 0
        for (stream, record) in records.enumerated() {
            let expected = try #require(truth[stream])
            let tickets = record["tickets_issued"] as? [[String: Any]] ?? []
            #expect(record["decrypted"] as? Bool == true)
            #expect(tickets.map { $0["age_add"] as? Int } == expected.ageAdds, "stream \(stream)")
            #expect(tickets.map { $0["lifetime"] as? Int } == expected.lifetimes, "stream \(stream)")
            #expect(tickets.allSatisfy { $0["lifetime"] as? Int == recorded.configuredLifetime })
            #expect(tickets.compactMap { $0["max_early_data"] as? Int } == expected.maxEarlyData, "stream \(stream)")
            #expect(record["early_data_accepted"] as? Bool == expected.earlyDataAccepted, "stream \(stream)")
            // Read until a record after the tickets: what tshark shows, perhaps cut short.
            let messages = record["protected_messages"] as? [Int] ?? []
            #expect(messages == Array(expected.protectedTypes.prefix(messages.count)), "stream \(stream)")
            #expect(messages.first == 8 && messages.contains(20) && messages.contains(4) == !tickets.isEmpty)
            if record["resumed"] as? Bool == false { #expect(messages.starts(with: [8, 11, 15, 20])) }
            #expect((record["cert_chain_fps"] as? [String])?.first ?? "" == expected.certificate, "stream \(stream)")
            announced += tickets.count
        }
        let service = try Self.firstService(["--keylog", recorded.keys, recorded.capture])
        let hints = service["ticket_lifetime_hints"] as? [[String: Any]] ?? []
        #expect(hints.count == 1 && hints.first?["seconds"] as? Int == recorded.configuredLifetime)
        #expect(hints.first?["count"] as? Int == announced && announced >= records.count)
    }

    /// Early data per service (RFC 8446 4.2.10): nginx with `ssl_early_data on` accepted the
    /// one 0-RTT request s_client sent ("Early data was accepted"); the tickets' allowance is
    /// what tshark decrypts. Without the key log the answer stays encrypted and is said so.
    @Test func earlyDataPerServiceAsTheClientAndTsharkSawIt() throws {
        let recorded = Self.recorded[1]
        let log = try String(
            contentsOf: Paths.captures.appendingPathComponent("nginx-keylog.client.log"),
            encoding: .utf8
        )
        let acceptedByClient = log.components(separatedBy: "Early data was accepted").count - 1
        let truth = try Self.tsharkTruth(recorded).values
        let allowances = truth.flatMap(\.maxEarlyData)
        #expect(acceptedByClient == 1 && truth.filter(\.earlyDataAccepted).count == acceptedByClient)
        func earlyData(_ arguments: [String]) throws -> [String: Int] {
            try #require(try Self.firstService(arguments)["early_data"] as? [String: Int])
        }
        let keyed = try earlyData(["--keylog", recorded.keys, recorded.capture])
        #expect(keyed["offered"] == acceptedByClient && keyed["accepted"] == acceptedByClient)
        #expect(keyed["rejected"] == 0 && keyed["answer_unknown"] == 0)
        // Every ticket nginx issued allows early data (ssl_early_data on).
        let issued = truth.reduce(0) { $0 + $1.lifetimes.count }
        #expect(keyed["tickets_allowing"] == allowances.count && allowances.count == issued && issued >= 7)
        #expect(keyed["largest_allowed"] == allowances.max() && keyed["tickets_read"] == allowances.count)
        let plain = try earlyData([recorded.capture])
        #expect(plain["offered"] == 1 && plain["answer_unknown"] == 1 && plain["accepted"] == 0)
        #expect(plain["tickets_read"] == 0)
        let text = try tlsreuse(["report", "--keylog", recorded.keys, recorded.capture]).stdout
        #expect(
            text.contains(
                "early data    offered in 1 connection: 1 accepted; "
                    + "\(issued) of \(issued) tickets read allow up to 16384 "
            )
        )
    }

    /// Front side only: TLS 1.3 round robin over two nginx with their own certificates and
    /// ticket keys (issue 18's done-when). With the key log the decrypted certificates name
    /// both backends, and each abbreviated handshake is placed by the key name of the ticket
    /// it is issued; the share of offers that landed elsewhere is then exact and equals
    /// haproxy's log. Without the key log no certificate shows.
    @Test func balancerBackendsAreNamedByTheirTLS13Certificates() throws {
        let recorded = Self.recorded[2]
        let servers = try haproxyServers(log: Paths.captures.appendingPathComponent("lb-tls13-keylog.haproxy.log"))
        let serverOfPort = Dictionary(servers.map { ($0.clientPort, $0.server) }) { first, _ in first }
        // record.sh: s1 on 14501 has the localhost certificate, s2 on 14502 backend-two's.
        let commonNameOf = ["s1": "localhost", "s2": "backend-two"]
        let (records, _) = try Self.records(["--keylog", recorded.keys, recorded.capture])
        #expect(records.count == servers.count && servers.count == 12)
        var fullPerServer: [String: Int] = [:]
        for record in records where record["resumed"] as? Bool == false {
            let server = try #require(serverOfPort[record["client_port"] as? Int ?? -1])
            let certificate = record["certificate"] as? [String: Any]
            #expect(certificate?["cn"] as? String == commonNameOf[server], "\(record["uid"] ?? "")")
            fullPerServer[server, default: 0] += 1
        }
        // Offers that went elsewhere, by haproxy's log and the client's command lines.
        let verdicts = try clientVerdicts(log: Paths.captures.appendingPathComponent("lb-tls13-keylog.client.log"))
        try #require(verdicts.count == servers.count)
        let (offers, elsewhere) = offersElsewhere(verdicts: verdicts, servers: servers.map(\.server))
        #expect(offers == 9 && elsewhere > 0 && elsewhere < offers)

        func stickiness(_ arguments: [String]) throws -> [String: Any] {
            try #require(try Self.firstService(arguments)["stickiness"] as? [String: Any])
        }
        let keyed = try stickiness(["--keylog", recorded.keys, recorded.capture])
        #expect(keyed["verdict"] as? String == "not-sticky")
        let backends = keyed["backends"] as? [[String: Any]] ?? []
        #expect(backends.allSatisfy { $0["identified_by"] as? String == "certificate" })
        for (server, name) in commonNameOf {
            let backend = backends.first { ($0["id"] as? String)?.hasSuffix("(CN=\(name))") == true }
            // Every connection a backend took: its full handshakes and the resumptions it accepted.
            let took = servers.filter { $0.server == server }.count
            #expect(backend?["connections"] as? Int == took, "\(server): \(fullPerServer[server] ?? 0) full")
        }
        #expect(keyed["offers_elsewhere_is_lower_bound"] as? Bool == false)
        let share = keyed["offers_elsewhere"] as? Double ?? -1
        #expect(abs(share - Double(elsewhere) / Double(offers)) < 0.001)

        let plain = try stickiness([recorded.capture])
        #expect((plain["backends"] as? [Any])?.isEmpty == true)
        #expect(plain["offers_elsewhere_is_lower_bound"] as? Bool == true)
    }

    /// The same capture with the key log inside it (a pcapng Decryption Secrets Block, as
    /// `editcap --inject-secrets` writes it): the same records as with `--keylog`, with one
    /// worker and with two.
    @Test(arguments: ["1", "2"])
    func secretsInsideThePcapngOpenTheSameConnections(jobs: String) throws {
        let dsb = Paths.captures.appendingPathComponent("tls13-keylog-dsb.pcapng").path
        let (inside, _) = try Self.records(["--jobs", jobs, dsb])
        let (given, _) = try Self.records(["--keylog", Self.keys, Self.capture])
        #expect(inside.count == 7 && inside.count == given.count)
        for (a, b) in zip(inside, given) {
            for key in ["uid", "decrypted", "tickets_issued", "resumes", "client_ticket_age", "cert_chain_fps"] {
                #expect(try Self.canonical(a[key]) == Self.canonical(b[key]), "\(key)")
            }
            #expect(a["decrypted"] as? Bool == true)
        }
    }

    @Test func unreadableKeyLogIsAnInputError() throws {
        let result = try tlsreuse(["handshakes", "--keylog", "/nonexistent/keys.log", Self.capture])
        #expect(result.status == 66)
        #expect(result.stderr == "tlsreuse: could not read the key log /nonexistent/keys.log\n")
    }

    /// HAND-MADE bad lines put before the recorded key log: each is named on stderr, and the
    /// good lines after them still open every connection.
    @Test func badLinesAreNamedAndTheRunGoesOn() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("keys.log")
        var text = Data("NOT_A_LABEL 00 11\nSERVER_HANDSHAKE_TRAFFIC_SECRET zz\n".utf8)
        text.append(try Data(contentsOf: URL(fileURLWithPath: Self.keys)))
        try text.write(to: file)
        let (records, stderr) = try Self.records(["--keylog", file.path, Self.capture])
        #expect(stderr.contains("tlsreuse: key log: \(file.path):1: unknown label NOT_A_LABEL"))
        #expect(
            stderr.contains("tlsreuse: key log: \(file.path):2: expected LABEL CLIENT_RANDOM SECRET, found 2 fields")
        )
        #expect(records.count == 7 && records.allSatisfy { $0["decrypted"] as? Bool == true })
    }

    /// HAND-MADE bad line in the secrets a pcapng carries (editcap --inject-secrets of the
    /// recorded key log with a line no key log holds before it): named once on stderr, with
    /// the file, by one worker or two; the good lines still open every connection, and the
    /// summary says how many were decrypted.
    @Test(.enabled(if: toolAvailable("editcap"), "editcap writes the pcapng"), arguments: ["1", "2"])
    func badLinesInTheInputsSecretsAreNamed(jobs: String) throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = dir.appendingPathComponent("keys.log")
        var text = Data("NOT_A_LABEL 00 11\n".utf8)
        text.append(try Data(contentsOf: URL(fileURLWithPath: Self.keys)))
        try text.write(to: keys)
        let pcapng = dir.appendingPathComponent("bad-secrets.pcapng").path
        let editcap = try runProcess("editcap", ["--inject-secrets", "tls,\(keys.path)", Self.capture, pcapng])
        try #require(editcap.status == 0, "\(editcap.stderr)")
        let (records, stderr) = try Self.records(["--jobs", jobs, pcapng])
        let named = "tlsreuse: key log: \(pcapng): decryption secrets block:1: unknown label NOT_A_LABEL\n"
        #expect(stderr.components(separatedBy: named).count == 2, "\(stderr)")
        #expect(records.count == 7 && records.allSatisfy { $0["decrypted"] as? Bool == true })
        #expect(
            stderr.contains("7 TLS connections in 129 packets from 1 input, 7 of them decrypted with key log secrets")
        )
    }

    /// A key log of other traffic opens nothing, and the run says so (nginx-keylog's key log
    /// given with tls13-keylog's capture).
    @Test func aKeyLogOfOtherTrafficIsSaidSo() throws {
        let other = Paths.captures.appendingPathComponent("nginx-keylog.keys").path
        let named = Set(
            try String(contentsOfFile: other, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
                .compactMap { $0.split(separator: " ").dropFirst().first }
        )
        let (records, stderr) = try Self.records(["--keylog", other, Self.capture])
        #expect(records.allSatisfy { $0["decrypted"] as? Bool == false })
        #expect(
            stderr.contains(
                "key log: it names \(named.count) connections, and no connection in the input that it could open "
                    + "is one of them"
            )
        )
        #expect(!stderr.contains("decrypted with key log secrets"))
    }

    /// No key, secret or decrypted application data in any output (issue 18: secrets stay
    /// secret): every format of both commands, standard error included, on every key-log
    /// capture, holds none of the key log's secrets (either case) and none of the response
    /// bodies the servers sent under those keys.
    @Test(arguments: recorded)
    func noSecretOrDecryptedDataInAnyOutput(_ recorded: Recorded) throws {
        let secrets = try String(contentsOfFile: recorded.keys, encoding: .utf8).split(separator: "\n")
            .filter { !$0.hasPrefix("#") }.compactMap { $0.split(separator: " ").last.map(String.init) }
        #expect(secrets.count >= 6 && secrets.allSatisfy { $0.count >= 64 })
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = dir.appendingPathComponent("report.html").path
        var outputs: [String] = []
        for format in ["text", "jsonl", "json", "csv", "zeek"] {
            let result = try tlsreuse(["handshakes", "--format", format, "--keylog", recorded.keys, recorded.capture])
            outputs += [result.stdout, result.stderr]
        }
        for format in ["text", "json"] {
            let result = try tlsreuse([
                "report", "--format", format, "--pairs", "--keylog", recorded.keys, "--html", html, recorded.capture,
            ])
            outputs += [result.stdout, result.stderr, try String(contentsOfFile: html, encoding: .utf8)]
        }
        // The outputs are of decrypted connections: what is checked below was there to leak.
        #expect(outputs.count == 16 && outputs[2].contains("\"decrypted\":true"))
        // What the servers sent under the keys: s_server -www's page, nginx's and aioquic's bodies.
        let bodies = ["HTTP/1.0 200 ok", "HTTP/1.1 200 OK", "backend 1", "backend 2", "hello\n", "<html>"]
        for output in outputs {
            for secret in secrets {
                #expect(!output.lowercased().contains(secret.lowercased()), "a secret is in the output")
            }
            for body in bodies { #expect(!output.contains(body), "\(body) is in the output") }
        }
    }

    /// TLS 1.2 renegotiations read with the key log's master secrets (CLIENT_RANDOM; RFC 5246
    /// 7.4.1.1): each connection of tls12-renegotiation.pcap renegotiated once, in full, and
    /// was issued a ticket in it; the last connection resumes the first renegotiation's
    /// ticket, so it links to that connection with its age counted from the renegotiation.
    /// Truth: tshark's decryption of the same capture (the second ClientHello of each
    /// stream, the tickets), and s_client's Reused.
    @Test func renegotiationsAndTheSessionsTheyEstablish() throws {
        let capture = Paths.captures.appendingPathComponent("tls12-renegotiation.pcap").path
        let keys = Paths.captures.appendingPathComponent("tls12-renegotiation.keys").path
        let tshark = try runProcess(
            "tshark",
            [
                "-r", capture, "-o", "tls.keylog_file:\(keys)", "-Y",
                "tls.handshake.type == 1 || tls.handshake.type == 4",
                "-T", "fields", "-E", "separator=|", "-e", "tcp.stream", "-e", "frame.time_epoch", "-e",
                "tls.handshake.type", "-e", "tls.handshake.session_ticket", "-e",
                "tls.handshake.session_ticket_lifetime_hint",
            ]
        )
        // Per stream: ClientHello times, and the tickets with their lifetime hints, in order.
        var hellos: [Int: [Double]] = [:]
        var tickets: [Int: [(ticket: String, lifetime: Int)]] = [:]
        for line in tshark.stdout.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            let stream = Int(fields[0])!
            if fields[2].split(separator: ",").contains("1") { hellos[stream, default: []].append(Double(fields[1])!) }
            if !fields[3].isEmpty { tickets[stream, default: []].append((fields[3], Int(fields[4])!)) }
        }
        func digest(_ hex: String) throws -> String {
            try runProcess(
                "python3",
                ["-c", "import hashlib,sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1])).hexdigest()[:32])", hex]
            ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let (records, stderr) = try Self.records(["--keylog", keys, capture])
        #expect(records.count == 4 && stderr.contains("4 of them decrypted with key log secrets"))
        for (stream, record) in records.enumerated() where stream < 3 {
            let renegotiations = record["renegotiations"] as? [[String: Any]] ?? []
            let renegotiationHellos = Array((hellos[stream] ?? []).dropFirst())
            try #require(renegotiations.count == renegotiationHellos.count && renegotiations.count == 1)
            let renegotiation = renegotiations[0]
            #expect(abs((renegotiation["ts"] as? Double ?? 0) - renegotiationHellos[0]) < 0.000_002)
            #expect(renegotiation["resumed"] as? Bool == false)  // tshark shows its Certificate
            // The first connection's ticket, then the renegotiation's (RFC 5077 3.3).
            let issued = try #require(tickets[stream]?.last)
            #expect(renegotiation["issued_ticket_digest"] as? String == (try digest(issued.ticket)))
            #expect(renegotiation["ticket_lifetime_hint"] as? Int == issued.lifetime)
            #expect(record["decrypted"] as? Bool == true)
        }
        let verdicts = try clientVerdicts(
            log: Paths.captures.appendingPathComponent("tls12-renegotiation.client.log")
        )
        #expect(verdicts.map(\.reused) == [false, false, false, true])
        let last = records[3]
        #expect(last["resumed"] as? Bool == true && last["resumption"] as? String == "ticket")
        #expect(last["resumes"] as? String == records[0]["uid"] as? String)
        let renegotiatedAt = try #require(((records[0]["renegotiations"] as? [[String: Any]])?.first)?["ts"] as? Double)
        let age = try #require(last["session_age"] as? Double)
        #expect(abs(age - ((last["ts"] as? Double ?? 0) - renegotiatedAt)) < 0.002)
        // The service's tally in the report, as s_client printed RENEGOTIATING.
        let log = try String(
            contentsOf: Paths.captures.appendingPathComponent("tls12-renegotiation.client.log"),
            encoding: .utf8
        )
        let renegotiated = log.components(separatedBy: "RENEGOTIATING").count - 1
        func tally(_ arguments: [String]) throws -> [String: Int] {
            try #require(try Self.firstService(arguments)["renegotiations"] as? [String: Int])
        }
        #expect(
            try tally(["--keylog", keys, capture])
                == ["connections": renegotiated, "total": renegotiated, "full": renegotiated, "abbreviated": 0]
        )
        #expect(try tally([capture])["total"] == 0)
        let text = try tlsreuse(["report", "--keylog", keys, capture]).stdout
        #expect(text.contains("renegotiated  \(renegotiated) in \(renegotiated) connections (\(renegotiated) full;"))
        // Without the key log: no renegotiation read, and the ticket's issue is not seen.
        let (plain, _) = try Self.records([capture])
        #expect(plain.allSatisfy { ($0["renegotiations"] as? [Any])?.isEmpty == true })
        #expect(plain[3]["resumed"] as? Bool == true && (plain[3]["resumes"] == nil || plain[3]["resumes"] is NSNull))
    }
}
