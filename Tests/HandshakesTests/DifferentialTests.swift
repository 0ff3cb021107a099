import Foundation
import Handshakes
import TestSupport
import Testing

/// tlsreuse against independent dissectors: tshark on every capture, and Zeek's ssl.log
/// where the peer corpus carries one.
@Suite struct DifferentialTests {
    /// Peer-corpus captures where tshark finds a TLS connection tlsreuse deliberately does not
    /// report yet, with the reason.
    static let listedTsharkDifferences: [String: String] = [:]

    static func compare(_ capture: URL) throws -> [String] {
        let records = try extractRecords(capture)
        var proxyPorts: [Int: String] = [:]
        for record in records {
            if let tunnel = record.tunnel {
                proxyPorts[Int(record.serverPort)] = tunnel == .httpConnect ? "http" : "socks"
            }
        }
        let dissected = try tsharkHandshakes(
            capture.path,
            tlsPorts: Set(
                records.filter { $0.starttls == nil && $0.tunnel == nil && $0.transport == .tcp }.map {
                    Int($0.serverPort)
                }
            ),
            quicPorts: Set(records.filter { $0.transport == .quic }.map { Int($0.serverPort) }),
            proxyPorts: proxyPorts
        )
        var unmatched = dissected
        var problems: [String] = []
        for record in records {
            guard
                let index = unmatched.firstIndex(where: {
                    $0.client == record.client.description && $0.clientPort == Int(record.clientPort)
                        && $0.server == record.server.description && $0.serverPort == Int(record.serverPort)
                })
            else {
                problems.append("only tlsreuse: \(record.uid) \(record.client):\(record.clientPort)")
                continue
            }
            let other = unmatched.remove(at: index)
            if record.sni != other.sni {
                problems.append("\(other) sni: \(String(describing: record.sni)) vs \(String(describing: other.sni))")
            }
            if record.clientSessionID.hex != other.clientSessionID {
                problems.append("\(other) client session id differs")
            }
            if (record.serverSessionID?.hex ?? "") != (other.serverSessionID ?? "") {
                problems.append("\(other) server session id differs")
            }
            if record.version.map({ Int($0.rawValue) }) != other.version {
                problems.append(
                    "\(other) version: \(String(describing: record.version)) vs \(String(describing: other.version))"
                )
            }
            if record.cipher.map({ Int($0.rawValue) }) != other.cipher {
                problems.append(
                    "\(other) cipher: \(String(describing: record.cipher?.rawValue)) vs "
                        + "\(String(describing: other.cipher))"
                )
            }
        }
        problems += unmatched.map { "only tshark: \($0)" }
        return problems
    }

    @Test(
        .enabled(if: toolAvailable("tshark"), "tshark is not installed"),
        arguments: Paths.recordedCaptures.map(\.lastPathComponent)
    )
    func recordedCapturesAgreeWithTshark(capture: String) throws {
        // proxy-tunnels.pcap holds one difference of tshark's own, listed in ProxyTunnelTests.
        guard capture != "proxy-tunnels.pcap" else { return }
        let problems = try Self.compare(Paths.captures.appendingPathComponent(capture))
        #expect(problems.isEmpty, "\(capture):\n\(problems.joined(separator: "\n"))")
    }

    @Test(
        .enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present: skipped"),
        .enabled(if: toolAvailable("tshark"), "tshark is not installed")
    )
    func peerCorpusAgreesWithTshark() throws {
        #expect(try Self.agreeWithTshark(Paths.peerCaptures, listed: Self.listedTsharkDifferences) > 50)
    }

    /// Compares each capture with tshark; a listed capture must still differ (else its entry
    /// is stale), and only by handshakes tshark alone finds. The number compared in full.
    static func agreeWithTshark(_ captures: [URL], listed: [String: String]) throws -> Int {
        var compared = 0
        for capture in captures {
            let problems = try compare(capture)
            if let reason = listed[capture.lastPathComponent] {
                #expect(
                    !problems.isEmpty,
                    "\(capture.lastPathComponent) is listed (\(reason)) but now agrees: remove it from the list"
                )
                #expect(
                    problems.allSatisfy { $0.hasPrefix("only tshark") },
                    "\(capture.lastPathComponent): \(problems)"
                )
                continue
            }
            #expect(problems.isEmpty, "\(capture.lastPathComponent):\n\(problems.joined(separator: "\n"))")
            compared += 1
        }
        return compared
    }

    /// suricata-verify captures where tshark finds a handshake tlsreuse does not, by design.
    static let listedSuricataTsharkDifferences: [String: String] = [
        "firewall__app-layer-protocol-negated-unknown-shortcircuit__input.pcap":
            "32 bytes that are not TLS open the client's stream before a ClientHello: tlsreuse takes a "
            + "connection for TLS only when its first bytes are, tshark tries each segment on port 443 anew"
    ]

    /// suricata-verify's captures, where tshark finds TLS or QUIC, agree with tshark.
    @Test(
        .enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present: skipped"),
        .enabled(if: toolAvailable("tshark"), "tshark is not installed")
    )
    func suricataVerifyAgreesWithTshark() throws {
        #expect(try Self.agreeWithTshark(Paths.suricataCaptures, listed: Self.listedSuricataTsharkDifferences) > 500)
    }

    /// Checks in suricata-verify's test.yaml that no record matches, by test, with the reason:
    /// differences of definition, not gaps.
    static let listedSuricataDifferences: [String: String] = [
        "bug-5713-02-ja4.test.yaml":
            "JA4 of a hello without signature algorithms: the JA4 spec ends the hashed extension list "
            + "without an underscore (its example: 6d807ffa2a79), Suricata adds one"
    ]

    /// The TLS and QUIC fields suricata-verify's checks expect (SNI, version, JA3, JA3S, JA4,
    /// session_resumed, certificate subject, issuer, validity, names) are each found on a
    /// record of the same capture (suricata_checks.py says what is compared and how).
    @Test(
        .enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present: skipped"),
        .enabled(if: toolAvailable("python3"), "python3 is not installed")
    )
    func suricataVerifyChecksFindTheirRecords() throws {
        let script = Paths.repository.appendingPathComponent("Tests/HandshakesTests/suricata_checks.py").path
        let result = try runProcess(
            "python3",
            [script, Paths.peerCorpus.appendingPathComponent("suricata-verify").path, Paths.binary.path]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let mismatches = try #require(json["mismatches"] as? [[String: Any]])
        #expect((json["compared"] as? Int ?? 0) >= 30)
        for mismatch in mismatches {
            let test = mismatch["test"] as? String ?? ""
            #expect(Self.listedSuricataDifferences[test] != nil, "\(test): no record has \(mismatch["fields"] ?? "")")
        }
        let failing = Set(mismatches.compactMap { $0["test"] as? String })
        for (test, reason) in Self.listedSuricataDifferences {
            #expect(failing.contains(test), "\(test) is listed (\(reason)) but now agrees: remove it from the list")
        }
    }

    /// Zeek's ssl.log columns: ts uid id.orig_h id.orig_p id.resp_h id.resp_p version cipher
    /// curve server_name resumed last_alert next_protocol established ...
    struct ZeekRow {
        var client: String, clientPort: Int, version: String, cipher: String, serverName: String?
        var resumed: Bool, lastAlert: String?, established: Bool
    }

    static func zeekRows(_ log: URL) throws -> [ZeekRow] {
        try String(contentsOf: log, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap {
            line in
            let c = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard c.count >= 14 else { return nil }
            return ZeekRow(
                client: c[2],
                clientPort: Int(c[3]) ?? 0,
                version: c[6],
                cipher: c[7],
                serverName: c[9] == "-" ? nil : c[9],
                resumed: c[10] == "T",
                lastAlert: c[11] == "-" ? nil : c[11],
                established: c[13] == "T"
            )
        }
    }

    /// Known Zeek errors and deliberate differences, by trace.
    static let listedZeekDifferences: [String: String] = [
        "tls__chrome-63.0.3211.0-canary-tls_experiment.pcap":
            "Zeek reports resumed=T for Chrome's 0x7e01 experiment: the session-ID echo is compatibility mode and no "
            + "pre_shared_key was used (peer-corpus README)",
        "tls__tls-1.2-handshake-failure.pcap":
            "no ServerHello: tlsreuse reports resumed=null (not seen far enough to decide), Zeek F",
    ]

    @Test(.enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present: skipped"))
    func zeekAgreesOnVersionResumedEstablished() throws {
        let expected = Paths.peerCorpus.appendingPathComponent("zeek/expected")
        let logs = try FileManager.default.contentsOfDirectory(atPath: expected.path).filter { $0.hasPrefix("tls__") }
            .sorted()
        var rowsCompared = 0
        for log in logs {
            let trace = String(log.dropLast(".ssl.log".count))
            let rows = try Self.zeekRows(expected.appendingPathComponent(log))
            let records = try extractRecords(Paths.peerCorpus.appendingPathComponent("zeek/traces/\(trace)"))
            for row in rows {
                let record = try #require(
                    records.first { $0.client.description == row.client && Int($0.clientPort) == row.clientPort },
                    "\(trace): no record for \(row.client):\(row.clientPort)"
                )
                let zeekVersions = [
                    "SSLv3": "SSLv3", "TLSv10": "TLSv1.0", "TLSv11": "TLSv1.1", "TLSv12": "TLSv1.2",
                    "TLSv13": "TLSv1.3",
                ]
                if let version = zeekVersions[row.version] {
                    #expect(record.version?.description == version, "\(trace) version")
                } else if row.version == "-" {
                    #expect(record.version == nil, "\(trace) version")
                }
                #expect(record.cipher?.description == (row.cipher == "-" ? nil : row.cipher), "\(trace) cipher")
                #expect(record.sni == row.serverName, "\(trace) sni")
                #expect(record.alert == row.lastAlert, "\(trace) alert")
                #expect(record.established == row.established, "\(trace) established")
                if let reason = Self.listedZeekDifferences[trace] {
                    #expect(record.resumed != row.resumed, "\(trace) is listed (\(reason)) but now agrees")
                } else {
                    #expect(record.resumed == row.resumed, "\(trace) resumed")
                }
                rowsCompared += 1
            }
        }
        #expect(rowsCompared >= 10)
    }

    /// suricata-verify's captures, broken and hostile ones included, are read without a crash:
    /// exit 0, or 1 with the one line that names a damaged file (corrupt records, a file cut
    /// short). Its Cisco HDLC capture (link type 104) is decoded, not skipped.
    @Test(.enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present: skipped"))
    func suricataVerifyRunsCleanly() throws {
        var damaged = 0
        for capture in Paths.suricataCaptures {
            let result = try runProcess(Paths.binary.path, ["handshakes", "--format", "jsonl", "-q", capture.path])
            if result.status == 1,
                result.stderr.contains("corrupt packet record") || result.stderr.contains("file ends inside")
            {
                damaged += 1
                continue
            }
            #expect(result.status == 0, "\(capture.lastPathComponent): exit \(result.status): \(result.stderr)")
        }
        #expect(damaged < 10)
        let hdlc = Paths.peerCorpus.appendingPathComponent("suricata-verify/pcaps/decode-chdlc-01__hdlc-http_1tx.pcap")
        let (_, statistics) = try extractRecords([hdlc.path])
        #expect(statistics.decode.unsupportedLinkTypePackets == 0 && statistics.reassembly.flows == 1)
    }

    /// Every capture in the peer corpus is read without a crash and with exit status 0.
    @Test(.enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present: skipped"))
    func peerCorpusRunsCleanly() throws {
        for capture in Paths.peerCaptures {
            let result = try runProcess(Paths.binary.path, ["handshakes", "--format", "jsonl", "-q", capture.path])
            #expect(result.status == 0, "\(capture.lastPathComponent): exit \(result.status): \(result.stderr)")
        }
    }
}
