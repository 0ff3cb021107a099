import Foundation
import Handshakes
import TLSWire
import TestSupport
import Testing

@Suite struct StartTLSTests {
    /// Real servers from Debian's packages (captures/record.sh record_starttls): each
    /// connection is named by its protocol. RecordedCaptureTests checks every verdict
    /// against s_client and DifferentialTests every hello against tshark.
    @Test func recordedServers() throws {
        let records = try extractRecords(Paths.captures.appendingPathComponent("starttls.pcap"))
        let expected: [UInt16: String] = [
            25: "smtp", 14441: "imap", 14442: "pop3", 14443: "postgres", 14444: "ldap", 14445: "ftp",
        ]
        #expect(records.count == 36)
        for record in records {
            #expect(record.starttls?.rawValue == expected[record.serverPort], "\(record.serverPort)")
            #expect(record.established)
        }
        // postfix resumes by ticket; dovecot's login processes each have their own ticket keys.
        #expect(records.filter { $0.serverPort == 25 }.map(\.resumed) == [false] + Array(repeating: true, count: 5))
        #expect(records.filter { $0.serverPort == 14441 }.allSatisfy { $0.resumed == false && $0.ticketIssued })
    }

    /// The upgrades in the Zeek suite's captures: FTP, MySQL, PostgreSQL (twice) and XMPP.
    @Test(.enabled(if: Paths.peerCorpusPresent, "../shared/peer-corpus is not present"))
    func peerCorpusUpgrades() throws {
        let traces = Paths.peerCorpus.appendingPathComponent("zeek/traces")
        let expected = [
            "ftp__ftp-auth-tls.pcap": "ftp", "mysql__tls-12-amazon-rds.pcap": "mysql",
            "postgresql__psql-aws-ssl-preferred.pcap": "postgres", "postgresql__psql-aws-ssl-require.pcap": "postgres",
            "tls__xmpp-starttls.pcap": "xmpp",
        ]
        for (capture, kind) in expected {
            let records = try extractRecords(traces.appendingPathComponent(capture))
            #expect(!records.isEmpty, "\(capture)")
            #expect(records.allSatisfy { $0.starttls?.rawValue == kind && $0.established }, "\(capture)")
        }
    }

    /// The plaintext of the real SMTP connection, as tshark follows it.
    func smtpConversation() throws -> (client: [UInt8], server: [UInt8]) {
        try tsharkStreamBytes(Paths.captures.appendingPathComponent("starttls.pcap").path, stream: 0)
    }

    func detect(client: [UInt8], server: [UInt8], pieces: Int = 1) -> StartTLSDetector.Outcome {
        var detector = StartTLSDetector()
        var outcome = StartTLSDetector.Outcome.undecided
        // Server greeting first, then alternating pieces, as the conversation goes.
        for piece in 0..<pieces {
            let s = server[(server.count * piece / pieces)..<(server.count * (piece + 1) / pieces)]
            let c = client[(client.count * piece / pieces)..<(client.count * (piece + 1) / pieces)]
            outcome = Array(s).withUnsafeBytes { detector.add($0, fromClient: false) }
            outcome = Array(c).withUnsafeBytes { detector.add($0, fromClient: true) }
        }
        return outcome
    }

    @Test(.enabled(if: toolAvailable("tshark"), "tshark is not installed"))
    func smtpOffsetsPointAtTheHellos() throws {
        let (client, server) = try smtpConversation()
        guard case let .upgraded(kind, clientOffset, serverOffset) = detect(client: client, server: server) else {
            Issue.record("no upgrade found")
            return
        }
        #expect(kind == .smtp)
        #expect(client[clientOffset] == 0x16 && client[clientOffset + 5] == 1)  // ClientHello record
        #expect(server[serverOffset] == 0x16 && server[serverOffset + 5] == 2)  // ServerHello record
        #expect(
            detect(client: client, server: server, pieces: 7)
                == .upgraded(.smtp, clientOffset: clientOffset, serverOffset: serverOffset)
        )
    }

    /// DERIVED from the real dovecot IMAP and POP3 conversations: commands in lower case, and
    /// IMAP's tagged reply in lower case, are the same upgrade at the same offsets (IMAP atoms
    /// are case-insensitive, RFC 3501 9; POP3 keywords too, but servers must send "+OK" in
    /// upper case, RFC 1939 3).
    @Test(.enabled(if: toolAvailable("tshark"), "tshark is not installed"))
    func lowerCaseCommandsAndRepliesUpgradeAlike() throws {
        let path = Paths.captures.appendingPathComponent("starttls.pcap").path
        func lowered(_ bytes: [UInt8], _ from: String, _ to: String) -> [UInt8] {
            var text = String(decoding: bytes, as: UTF8.self)
            guard let range = text.range(of: from) else { return bytes }
            text.replaceSubrange(range, with: to)
            // The TLS bytes after the plaintext stay as they were.
            let prefix = Array(
                text.utf8.prefix(
                    text.utf8.distance(from: text.utf8.startIndex, to: range.lowerBound.samePosition(in: text.utf8)!)
                        + to.utf8.count
                )
            )
            return prefix + bytes[prefix.count...]
        }
        for (stream, kind, clientFrom, serverFrom) in [
            (6, StartTLSProtocol.imap, ". STARTTLS", ". OK Begin"), (12, .pop3, "STLS", ""),
        ] {
            let (client, server) = try tsharkStreamBytes(path, stream: stream)
            let original = detect(client: client, server: server)
            guard case .upgraded(kind, _, _) = original else {
                Issue.record("stream \(stream): \(original)")
                continue
            }
            let lowerClient = lowered(client, clientFrom, clientFrom.lowercased())
            let lowerServer = serverFrom.isEmpty ? server : lowered(server, serverFrom, serverFrom.lowercased())
            #expect(lowerClient != client && (serverFrom.isEmpty || lowerServer != server))
            #expect(detect(client: lowerClient, server: lowerServer) == original, "stream \(stream)")
            #expect(detect(client: lowerClient, server: lowerServer, pieces: 5) == original, "stream \(stream)")
        }
    }

    /// DERIVED from the real SMTP conversation: the server refuses STARTTLS (454), and a
    /// conversation that never upgrades within the plaintext bound is given up.
    @Test(.enabled(if: toolAvailable("tshark"), "tshark is not installed"))
    func refusedAndEndlessPlaintextAreNotFollowed() throws {
        let (client, server) = try smtpConversation()
        var text = String(decoding: server, as: UTF8.self)
        guard let ready = text.range(of: "220 2.0.0 Ready to start TLS") else {
            Issue.record("the capture's reply changed")
            return
        }
        text.replaceSubrange(ready, with: "454 4.7.0 TLS not available")
        let refused = Array(
            text.utf8.prefix(
                text.utf8.distance(from: text.utf8.startIndex, to: ready.lowerBound.samePosition(in: text.utf8)!) + 30
            )
        )
        #expect(detect(client: client, server: refused) == .notStartTLS)
        let chatter =
            Array(server.prefix(40)) + Array(repeating: UInt8(ascii: "a"), count: StartTLSDetector.maximumPlaintext)
        #expect(detect(client: Array("EHLO x\r\n".utf8), server: chatter) == .notStartTLS)
    }
}
