import Foundation
import TestSupport
import Testing

/// scripts/probe-resumption, the README's how-to, run as written against servers on
/// loopback: nginx with a 4 s session timeout, and haproxy doing round robin over two
/// OpenSSL servers with their own certificates. Truth: what s_client printed (its log) and
/// haproxy's own choice of server.
@Suite(
    .enabled(
        if: getuid() == 0 && ["tcpdump", "openssl", "nginx", "haproxy", "python3"].allSatisfy(toolAvailable),
        "needs root, tcpdump, openssl, nginx, haproxy, python3"
    ),
    .serialized
)
struct ProbeScriptTests {
    static let script = Paths.repository.appendingPathComponent("scripts/probe-resumption").path
    /// Children of the test process inherit its blocked signals; the script is run as from a
    /// shell, with none blocked, so its tcpdump stops on SIGTERM as it would for a user.
    static let unblocked =
        "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, set()); os.execvp(sys.argv[1], "
        + "sys.argv[1:])"

    func workFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tlsreuse-probe-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        )
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let made = try runProcess(
            "openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                folder.appendingPathComponent("key.pem").path,
                "-out", folder.appendingPathComponent("cert.pem").path, "-days", "30", "-subj", "/CN=localhost",
            ]
        )
        #expect(made.status == 0)
        let second = try runProcess(
            "openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", folder.appendingPathComponent("key2.pem").path, "-out",
                folder.appendingPathComponent("cert2.pem").path,
                "-days", "30", "-subj", "/CN=backend-two",
            ]
        )
        #expect(second.status == 0)
        return folder
    }

    /// Starts a program in the background; the returned process is terminated by the caller.
    func background(_ executable: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 1)
        return process
    }

    /// SIGKILL: the servers inherit the test process's blocked SIGTERM.
    func stop(_ process: Process) {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func probe(
        _ target: String,
        intervals: String,
        _ folder: URL,
        extra: [String] = []
    ) throws -> (report: [String: Any], truth: [ClientVerdict]) {
        let out = folder.appendingPathComponent("probe")
        let run = try runProcess(
            "python3",
            ["-c", Self.unblocked, Self.script, target, "--intervals", intervals, "--out", out.path, "--no-report"]
                + extra
        )
        #expect(run.status == 0, "\(run.stderr)")
        let report = try runProcess(
            Paths.binary.path,
            [
                "report", "--format", "json", "-q", "--age-buckets", intervals,
                out.appendingPathComponent("probe.pcap").path,
            ]
        )
        #expect(report.status == 0, "\(report.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        return (json, try clientVerdicts(log: out.appendingPathComponent("client.log")))
    }

    @Test func nginxTimeoutIsBracketed() throws {
        let folder = try workFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try """
        daemon off;
        master_process off;
        error_log \(folder.path)/error.log;
        pid \(folder.path)/nginx.pid;
        events { worker_connections 64; }
        http {
            access_log off;
            server {
                listen 127.0.0.1:14720 ssl;
                ssl_certificate \(folder.path)/cert.pem;
                ssl_certificate_key \(folder.path)/key.pem;
                ssl_protocols TLSv1.2;
                ssl_session_cache shared:SSL:1m;
                ssl_session_timeout 4s;
                ssl_session_tickets off;
                location / { return 200 "hello\\n"; }
            }
        }
        """.write(to: folder.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        let nginx = try background(
            "nginx",
            ["-p", folder.path, "-c", folder.appendingPathComponent("nginx.conf").path]
        )
        defer { stop(nginx) }
        let (report, truth) = try probe("127.0.0.1:14720", intervals: "1,2,6", folder, extra: ["--tls", "1.2"])
        #expect(truth.map(\.reused) == [false, true, true, false])
        let service = try #require((report["services"] as? [[String: Any]])?.first)
        #expect((service["support"] as? [String: String])?["session_id"] == "yes")
        let lifetime = try #require(service["lifetime"] as? [String: Any])
        let atLeast = try #require(lifetime["at_least"] as? Double)
        let atMost = try #require(lifetime["at_most"] as? Double)
        #expect(atLeast < 4 && atMost > 4, "bracket \(atLeast)..\(atMost) holds the 4 s timeout")
        // Every probe offered the saved session at about its interval: the age counts from the
        // full handshake's ClientHello, so each client's start-up time moves it a little (more
        // on a loaded machine), and a bucket edge at the interval itself may fall either side.
        let buckets = try #require(service["by_age"] as? [[String: Any]])
        #expect(buckets.compactMap { $0["offers"] as? Int }.reduce(0, +) == 3)
        let records = try runProcess(
            Paths.binary.path,
            ["handshakes", "--format", "jsonl", "-q", folder.appendingPathComponent("probe/probe.pcap").path]
        )
        let ages = records.stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["session_age"] as? Double
        }
        #expect(ages.count == 3)
        for (age, interval) in zip(ages, [1.0, 2, 6]) {
            #expect(age > interval - 0.5 && age < interval + 1.5, "probe at \(interval) s: age \(age) s")
        }
    }

    @Test func roundRobinBalancerIsNotSticky() throws {
        let folder = try workFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var servers: [Process] = []
        for (port, name) in [(14722, ""), (14723, "2")] {
            servers.append(
                try background(
                    "openssl",
                    [
                        "s_server", "-accept", "127.0.0.1:\(port)", "-cert", folder.path + "/cert\(name).pem",
                        "-key", folder.path + "/key\(name).pem", "-tls1_2", "-no_ticket", "-www",
                    ]
                )
            )
        }
        try """
        global
            log stdout format raw local0
        defaults
            mode tcp
            log global
            option tcplog
            timeout connect 2s
            timeout client 10s
            timeout server 10s
        frontend fe
            bind 127.0.0.1:14721
            default_backend be
        backend be
            balance roundrobin
            server s1 127.0.0.1:14722
            server s2 127.0.0.1:14723

        """.write(to: folder.appendingPathComponent("haproxy.cfg"), atomically: true, encoding: .utf8)
        let haproxy = try background("haproxy", ["-f", folder.appendingPathComponent("haproxy.cfg").path, "-db"])
        defer { (servers + [haproxy]).forEach(stop) }
        let (report, truth) = try probe("127.0.0.1:14721", intervals: "1,2", folder)
        // Round robin: the first offer goes to the other server (refused), the second back.
        #expect(truth.map(\.reused) == [false, false, true])
        let service = try #require((report["services"] as? [[String: Any]])?.first)
        let stickiness = try #require(service["stickiness"] as? [String: Any])
        #expect(stickiness["verdict"] as? String == "not-sticky", "\(stickiness["evidence"] ?? "")")
        #expect((service["support"] as? [String: String])?["session_id"] == "yes")
    }
}
