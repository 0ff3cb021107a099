import Capture
import Foundation
import TestSupport
import Testing

/// Live capture on the loopback interface while a real openssl client reconnects to a real
/// openssl server (loopback only). Needs root, as CI runs.
@Suite(.serialized, .enabled(if: getuid() == 0 && toolAvailable("openssl"), "live capture needs root and openssl"))
struct LiveCaptureTests {
    /// A certificate for the test server, made once.
    static let certificate: (cert: String, key: String) = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-live-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cert = dir.appendingPathComponent("cert.pem").path
        let key = dir.appendingPathComponent("key.pem").path
        _ = try? runProcess(
            "openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                "-days", "2", "-subj", "/CN=localhost",
            ]
        )
        return (cert, key)
    }()

    /// Once the capture started before has had `captureStart` seconds to open: an openssl
    /// s_server on 127.0.0.1:`port`, given time to listen.
    static func startServer(port: Int, afterCaptureStarts captureStart: Double) throws -> Process {
        Thread.sleep(forTimeInterval: captureStart)
        let server = try startServer(port: port)
        Thread.sleep(forTimeInterval: 0.7)
        return server
    }

    /// `openssl s_client -reconnect` against 127.0.0.1:`port`: six TLS 1.2 connections, the
    /// first full and the rest resuming its session. Returns what s_client printed.
    static func reconnect(port: Int) throws -> String {
        try runProcess(
            "/bin/sh",
            ["-c", "echo | timeout 10 openssl s_client -connect 127.0.0.1:\(port) -tls1_2 -reconnect 2>&1"]
        ).stdout
    }

    /// An openssl s_server on 127.0.0.1:`port` (TLS 1.2, session IDs, no tickets).
    static func startServer(port: Int) throws -> Process {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        server.arguments = [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificate.cert, "-key", certificate.key,
            "-tls1_2", "-no_ticket", "-www", "-quiet",
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        return server
    }

    /// `command` run by /bin/sh in the background, its standard output into `output`.
    static func startShell(_ command: String, output: Pipe) throws -> Process {
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", command]
        shell.standardOutput = output
        try shell.run()
        return shell
    }

    /// Starts `tlsreuse live` in the background, then an s_server and an s_client
    /// -reconnect run against it; returns tlsreuse's output and what s_client printed.
    func run(
        port: Int,
        liveArguments: [String],
        stop: (Process) -> Void = { _ in },
        beforeClient: (Process) -> Void = { _ in },
        stdoutLines: ArrivalLog? = nil
    ) throws -> (live: ProcessResult, client: [Bool]) {
        let live = Process()
        live.executableURL = Paths.binary
        live.arguments = ["live", "-i", "lo", "--bpf", "tcp port \(port)"] + liveArguments
        let out = Pipe()
        let err = Pipe()
        live.standardOutput = out
        live.standardError = err
        stdoutLines?.follow(out.fileHandleForReading)
        try live.run()
        let server = try Self.startServer(port: port, afterCaptureStarts: 1.0)
        beforeClient(live)
        let client = try Self.reconnect(port: port)
        let verdicts = client.split(separator: "\n").filter { $0.hasPrefix("New,") || $0.hasPrefix("Reused,") }
            .map { $0.hasPrefix("Reused") }
        stop(live)
        // The server inherited tlsreuse's output pipe: stop it before reading to the end.
        // SIGKILL: children of the test process inherit its blocked SIGTERM.
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        let stdout = stdoutLines?.waitForEnd() ?? out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        live.waitUntilExit()
        return (
            ProcessResult(
                status: live.terminationStatus,
                stdout: String(decoding: stdout, as: UTF8.self),
                stderr: String(decoding: stderr, as: UTF8.self)
            ), verdicts
        )
    }

    /// Streamed records equal what s_client printed; --count stops the run.
    @Test func streamedRecordsMatchTheClient() throws {
        let (live, client) = try run(
            port: 14701,
            liveArguments: ["--format", "jsonl", "--count", "6", "--duration", "30"]
        )
        #expect(live.status == 0, "\(live.stderr)")
        #expect(client == [false, true, true, true, true, true])
        let records = live.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(records.map { $0["resumed"] as? Bool } == client.map { $0 })
        #expect(records.dropFirst().allSatisfy { $0["resumes"] as? String == records.first?["uid"] as? String })
        #expect(live.stderr.contains("kernel:"))
    }

    /// `--count 3` with six connections made: exactly three records and three connections in
    /// the report; each record is out within the pairing hold (0.5 s) and a tick of its
    /// ClientHello, measured on arrival (checked at 1.2 s, against 1.6 to 1.8 s before).
    @Test func countIsExactAndRecordsComeWithinTheHold() throws {
        let arrivals = ArrivalLog()
        let (live, client) = try run(
            port: 14705,
            liveArguments: ["--format", "jsonl", "--count", "3", "--duration", "30"],
            stdoutLines: arrivals
        )
        #expect(live.status == 0, "\(live.stderr)")
        #expect(client.count == 6)
        let records = live.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(records.count == 3)
        #expect(live.stderr.contains("tlsreuse: 3 TLS connections"), "\(live.stderr)")
        let lines = arrivals.lines
        #expect(lines.count == 3)
        for (arrival, line) in lines {
            let record = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let clientHello = try #require(record["ts"] as? Double)
            #expect(arrival - clientHello < 1.2, "record out \(arrival - clientHello) s after its ClientHello")
        }
    }

    /// `live --format jsonl | head -n 1`: once the reader is gone, the next record's write
    /// fails and the run ends as a stop does, with its summary on stderr, long before
    /// --duration (it used to die of SIGPIPE, silently).
    @Test func closedPipeEndsTheRunWithItsSummary() throws {
        let port = 14706
        let stderrFile = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-epipe-\(getpid())")
            .path
        defer { try? FileManager.default.removeItem(atPath: stderrFile) }
        let out = Pipe()
        let started = Date()
        let pipeline = try Self.startShell(
            "'\(Paths.binary.path)' live -i lo --bpf 'tcp port \(port)' --format jsonl --duration 30 "
                + "2>'\(stderrFile)' | head -n 1",
            output: out
        )
        let server = try Self.startServer(port: port, afterCaptureStarts: 1.0)
        defer {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        // Two bursts: head takes a line of the first and goes; the second finds it gone.
        for _ in 0..<2 {
            _ = try Self.reconnect(port: port)
            Thread.sleep(forTimeInterval: 2.0)
        }
        let first = out.fileHandleForReading.readDataToEndOfFile()
        pipeline.waitUntilExit()
        #expect(Date().timeIntervalSince(started) < 20, "the run went on after its reader left")
        #expect(String(decoding: first, as: UTF8.self).split(separator: "\n").count == 1)
        let stderr = try String(contentsOfFile: stderrFile, encoding: .utf8)
        #expect(stderr.contains("kernel:") && stderr.contains("TLS connection"), "\(stderr)")
    }

    /// The final JSON report has the verdicts and counts, and the -w file is a capture tshark reads.
    @Test func finalReportAndWrittenCapture() throws {
        let written = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-live-\(getpid()).pcap")
        defer { try? FileManager.default.removeItem(at: written) }
        let (live, client) = try run(
            port: 14702,
            liveArguments: ["--format", "json", "--duration", "5", "-w", written.path]
        )
        #expect(live.status == 0, "\(live.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(live.stdout.utf8)) as? [String: Any])
        let service = try #require((json["services"] as? [[String: Any]])?.first)
        #expect(service["connections"] as? Int == client.count)
        #expect(service["resumed"] as? Int == client.filter { $0 }.count)
        #expect((service["support"] as? [String: String])?["session_id"] == "yes")
        // One server on loopback: nothing tells it from several sticky or sharing ones.
        #expect((service["stickiness"] as? [String: Any])?["verdict"] as? String == "sticky-or-shared")
        #expect((json["kernel"] as? [String: Int])?["dropped"] == 0)
        if toolAvailable("tshark") {
            let tshark = try runProcess(
                "tshark",
                [
                    "-r", written.path, "-d", "tcp.port==14702,tls", "-Y", "tls.handshake.type == 1", "-T", "fields",
                    "-e", "frame.number",
                ]
            )
            #expect(tshark.status == 0)
            #expect(tshark.stdout.split(separator: "\n").count == client.count)
        }
        let replay = try runProcess(Paths.binary.path, ["handshakes", "--format", "jsonl", "-q", written.path])
        #expect(replay.stdout.split(separator: "\n").count == client.count)
    }

    /// Ctrl-C loses nothing that had already arrived: tlsreuse is paused while the client
    /// runs, so every packet waits in the kernel buffer, and the SIGINT is the first thing it
    /// sees on waking; the records of all six connections still come out.
    @Test func packetsBufferedAtTheStopAreStillRead() throws {
        let (live, client) = try run(
            port: 14705,
            liveArguments: ["--format", "jsonl", "--duration", "30"],
            stop: { process in
                kill(process.processIdentifier, SIGINT)
                kill(process.processIdentifier, SIGCONT)
            },
            beforeClient: { kill($0.processIdentifier, SIGSTOP) }
        )
        #expect(live.status == 0, "\(live.stderr)")
        #expect(client.count == 6)
        #expect(live.stdout.split(separator: "\n").count == client.count)
    }

    /// Started as root, `live` parses as an unprivileged user: uid, groups and capabilities
    /// are gone (read from /proc while it runs) before the first packet, no_new_privs is set,
    /// and the -w file belongs to that user.
    @Test func privilegesAreDroppedBeforeParsing() throws {
        let written = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tlsreuse-live-user-\(getpid()).pcap"
        )
        defer { try? FileManager.default.removeItem(at: written) }
        var status: [String: String] = [:]
        let (live, client) = try run(
            port: 14704,
            liveArguments: ["--format", "jsonl", "--duration", "30", "-w", written.path]
        ) { process in
            let text = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 { status[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
            kill(process.processIdentifier, SIGINT)
        }
        #expect(live.status == 0, "\(live.stderr)")
        let expected = Privileges.preferredUsers.lazy.compactMap { name in
            getpwnam(name).map { (name, $0.pointee.pw_uid) }
        }.first
        let (user, uid) = try #require(expected)
        #expect(status["Uid"]?.split(separator: "\t").allSatisfy { $0 == "\(uid)" } == true, "\(status["Uid"] ?? "-")")
        #expect(status["Groups"] == "", "supplementary groups: \(status["Groups"] ?? "-")")
        #expect(status["CapEff"] == "0000000000000000" && status["CapPrm"] == "0000000000000000")
        #expect(status["NoNewPrivs"] == "1")
        #expect(live.stderr.contains("capturing on lo as \(user) (uid \(uid)), no capabilities"))
        // Parsing went on as that user: the records are there.
        #expect(live.stdout.split(separator: "\n").count == client.count)
        var info = stat()
        #expect(stat(written.path, &info) == 0 && info.st_uid == uid, "the -w file is made by the unprivileged user")
    }

    /// A -w path that is a symbolic link is refused (exit 73), so a link planted in /tmp
    /// cannot aim the write at another file; a root or unknown --user is refused (exit 77).
    @Test func writeRefusesSymbolicLinksAndUserMustBeUnprivileged() throws {
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-target-\(getpid())")
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-link-\(getpid()).pcap")
        try "keep me".write(to: target, atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(at: link)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        defer {
            try? FileManager.default.removeItem(at: link)
            try? FileManager.default.removeItem(at: target)
        }
        let refused = try runProcess(Paths.binary.path, ["live", "-i", "lo", "--duration", "1", "-w", link.path])
        #expect(refused.status == 73, "\(refused.stderr)")
        #expect(refused.stderr.contains("symbolic link"))
        #expect(try String(contentsOf: target, encoding: .utf8) == "keep me")
        #expect(
            try runProcess(Paths.binary.path, ["live", "-i", "lo", "--duration", "1", "--user", "root"]).status == 77
        )
        #expect(
            try runProcess(Paths.binary.path, ["live", "-i", "lo", "--duration", "1", "--user", "no-such-user-here"])
                .status == 77
        )
    }

    /// Ctrl-C (SIGINT) prints the final report.
    @Test func interruptPrintsTheFinalReport() throws {
        let (live, client) = try run(port: 14703, liveArguments: ["--interval", "1", "--duration", "30"]) { process in
            Thread.sleep(forTimeInterval: 1.5)
            kill(process.processIdentifier, SIGINT)
        }
        #expect(live.status == 0)
        #expect(live.stdout.contains("offers accepted/made: session_id"))
        #expect(live.stdout.contains("STICKINESS"))
        #expect(live.stdout.contains("\(client.count) TLS connections"))
    }

    /// `tcpdump -U -w - | tlsreuse -`: a live pipe on standard input streams: every record
    /// is out while tcpdump still runs.
    @Test(.enabled(if: toolAvailable("tcpdump"), "tcpdump is not installed"))
    func livePipeOnStandardInput() throws {
        let port = 14704
        let out = Pipe()
        let arrivals = ArrivalLog()
        arrivals.follow(out.fileHandleForReading)
        let pipeline = try Self.startShell(
            "tcpdump -i lo -U -s 0 -w - 'tcp port \(port)' 2>/dev/null | '\(Paths.binary.path)' handshakes --format "
                + "jsonl -q -",
            output: out
        )
        let server = try Self.startServer(port: port, afterCaptureStarts: 1.5)
        _ = try Self.reconnect(port: port)
        Thread.sleep(forTimeInterval: 1.5)
        let whileRunning = arrivals.lines.count
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        _ = try runProcess("pkill", ["-KILL", "-f", "tcpdump -i lo -U -s 0 -w - tcp port \(port)"])
        let lines = arrivals.waitForEnd()
        pipeline.waitUntilExit()
        let records = String(decoding: lines, as: UTF8.self).split(separator: "\n")
        #expect(records.count == 6)
        #expect(whileRunning == 6, "\(whileRunning) of 6 records while tcpdump ran")
    }

    /// `live --keylog`: a key log the client writes during the capture, readable by root
    /// only, opens the TLS 1.3 connections it names although parsing runs unprivileged
    /// (the file is opened first); a bad line appended mid-run is named with its line
    /// number; the records equal those read afterwards from the -w file with the key log.
    @Test func keyLogWrittenDuringTheCaptureOpensItsConnections() throws {
        let port = 14706
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tlsreuse-live-keylog-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = dir.appendingPathComponent("keys.log").path
        #expect(FileManager.default.createFile(atPath: keys, contents: nil, attributes: [.posixPermissions: 0o600]))
        let written = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tlsreuse-live-keys-\(getpid()).pcap"
        )
        defer { try? FileManager.default.removeItem(at: written) }
        let live = Process()
        live.executableURL = Paths.binary
        live.arguments = [
            "live", "-i", "lo", "--bpf", "tcp port \(port)", "--keylog", keys, "--format", "jsonl", "--duration", "6",
            "-w", written.path,
        ]
        let out = Pipe()
        let err = Pipe()
        live.standardOutput = out
        live.standardError = err
        try live.run()
        Thread.sleep(forTimeInterval: 1.0)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        server.arguments = [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", Self.certificate.cert, "-key", Self.certificate.key,
            "-tls1_3", "-num_tickets", "2", "-www", "-quiet",
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        Thread.sleep(forTimeInterval: 0.7)
        let session = dir.appendingPathComponent("session.pem").path
        var printed = ""
        for sessionOption in ["-sess_out", "-sess_in"] {
            printed += try runProcess(
                "/bin/sh",
                [
                    "-c",
                    "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 openssl s_client "
                        + "-connect 127.0.0.1:\(port) -tls1_3 -keylogfile '\(keys)' "
                        + "\(sessionOption) '\(session)' -ign_eof 2>&1",
                ]
            ).stdout
        }
        // HAND-MADE: a line no key log holds, appended while the capture runs.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: keys))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("NOT_A_LABEL 00 11\n".utf8))
        try handle.close()
        let badLine = try String(contentsOfFile: keys, encoding: .utf8).split(separator: "\n").count
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        live.waitUntilExit()
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        #expect(live.terminationStatus == 0, "\(stderr)")
        #expect(!stderr.contains("(uid 0)"))
        #expect(stderr.contains("key log: \(keys):\(badLine): unknown label NOT_A_LABEL"), "\(stderr)")
        #expect(printed.contains("New, TLSv1.3") && printed.contains("Reused, TLSv1.3"))
        func records(_ data: Data) -> [[String: Any]] {
            String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
            }
        }
        let streamed = records(stdout)
        try #require(streamed.count == 2)
        #expect(streamed.allSatisfy { $0["decrypted"] as? Bool == true })
        #expect(streamed.map { ($0["tickets_issued"] as? [Any])?.count } == [2, 1])
        #expect(streamed[1]["resumes"] as? String == streamed[0]["uid"] as? String)
        let replay = try runProcess(
            Paths.binary.path,
            ["handshakes", "--format", "jsonl", "-q", "--keylog", keys, written.path]
        )
        let read = records(Data(replay.stdout.utf8))
        #expect(read.count == streamed.count)
        for (a, b) in zip(streamed, read) {
            for key in ["uid", "decrypted", "resumes", "early_data_accepted"] {
                #expect("\(a[key] ?? "nil")" == "\(b[key] ?? "nil")", "\(key)")
            }
            let ticketsA = (a["tickets_issued"] as? [[String: Any]] ?? []).map { $0["digest"] as? String }
            let ticketsB = (b["tickets_issued"] as? [[String: Any]] ?? []).map { $0["digest"] as? String }
            #expect(ticketsA == ticketsB)
        }
    }
}
