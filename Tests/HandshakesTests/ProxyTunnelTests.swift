import Foundation
import Handshakes
import Reports
import TestSupport
import Testing

/// TLS through proxies (captures/proxy-tunnels.pcap): squid's HTTP CONNECT, with a 407 first
/// on its second port; dante's SOCKS 4 and 5; microsocks's SOCKS 5 with a password. Truth:
/// what s_client and curl printed while the capture ran, and tshark's dissection.
@Suite struct ProxyTunnelTests {
    static let capture = Paths.captures.appendingPathComponent("proxy-tunnels.pcap")

    /// Each client run's proxy kind and target, from its command line in the client log.
    static func requested() throws -> [(kind: String, host: String, port: Int, connections: Int)] {
        let log = String(
            decoding: try Data(contentsOf: Paths.captures.appendingPathComponent("proxy-tunnels.client.log")),
            as: UTF8.self
        )
        var runs: [(kind: String, host: String, port: Int, connections: Int)] = []
        for block in log.components(separatedBy: "### connection ").dropFirst() {
            let command = block.prefix { $0 != "\n" }
            let kind =
                command.contains("--socks4a")
                ? "refused"
                : command.contains("--socks4 ") ? "socks4" : command.contains("--socks5") ? "socks5" : "http-connect"
            // The target: s_client's -connect, or curl's URL.
            let target: Substring
            if let range = command.range(of: "-connect ") {
                target = command[range.upperBound...].prefix { $0 != " " }
            } else {
                let url = try #require(command.range(of: "https://"))
                target = command[url.upperBound...].prefix { $0 != "/" }
            }
            let colon = try #require(target.lastIndex(of: ":"))
            // A refused request made no tunnel; s_client -reconnect made six connections.
            let handshakes =
                kind == "refused"
                ? 0
                : block.components(separatedBy: "\nNew, ").count - 1
                    + block.components(separatedBy: "\nReused, ").count - 1
                    + block.components(separatedBy: "SSL connection using").count - 1
            runs.append((kind, String(target[..<colon]), Int(target[target.index(after: colon)...]) ?? 0, handshakes))
        }
        return runs
    }

    @Test func everyConnectionNamesItsTunnelAndTarget() throws {
        let records = try extractRecords(Self.capture).sorted { $0.timestampNanos < $1.timestampNanos }
        var expected: [String] = []
        for run in try Self.requested() where run.kind != "refused" {
            expected += Array(repeating: "\(run.kind) \(run.host):\(run.port)", count: run.connections)
        }
        #expect(expected.count == 10)
        #expect(
            records.map { "\($0.tunnel?.rawValue ?? "-") \($0.tunnelTargetHost ?? "-"):\($0.tunnelTargetPort ?? 0)" }
                == expected
        )
        // The record keeps the proxy's address: the client connected to it.
        #expect(records.allSatisfy { (14481...14484).contains($0.serverPort) })
    }

    /// tshark follows the same tunnels (decoded as HTTP and SOCKS on the proxy ports) and
    /// finds the same hellos, except one listed difference of tshark's: after dante's SOCKS 5
    /// reply without a name, tshark 4.0 shows the ClientHello as "Encrypted Handshake Message"
    /// (its ServerHello it reads), so that connection is tlsreuse's alone.
    @Test(.enabled(if: toolAvailable("tshark"), "tshark is not installed"))
    func tsharkAgrees() throws {
        let records = try extractRecords(Self.capture)
        let listed = Set(
            records.filter { $0.tunnel == .socks5 && $0.serverPort == 14483 }.map {
                "only tlsreuse: \($0.uid) \($0.client):\($0.clientPort)"
            }
        )
        let problems = try DifferentialTests.compare(Self.capture)
        #expect(problems.allSatisfy(listed.contains), "\(problems)")
    }

    /// Resumption is judged at the target: the six s_client connections through squid's open
    /// port and the curl run through its other port are one service, localhost:14480, with
    /// the five reconnects accepted; the SOCKS runs to 127.0.0.1:14480 are another.
    @Test func resumptionIsJudgedAtTheTarget() throws {
        let result = try runProcess(Paths.binary.path, ["report", "--format", "json", "-q", Self.capture.path])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let services = try #require(json["services"] as? [[String: Any]])
        let byName = Dictionary(
            uniqueKeysWithValues: services.map { ("\($0["server"] ?? ""):\($0["port"] ?? "")", $0) }
        )
        #expect(Set(byName.keys) == ["localhost:14480", "127.0.0.1:14480"])
        let named = try #require(byName["localhost:14480"])
        #expect(named["connections"] as? Int == 8)
        #expect((named["support"] as? [String: String])?["session_id"] == "yes")
    }
}
