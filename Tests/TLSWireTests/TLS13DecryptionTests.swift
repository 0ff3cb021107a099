import Foundation
import TLSWire
import TestSupport
import Testing

/// Opens the server's protected records once the ServerHello is in, with the key log's
/// secrets, as the Handshakes stage does; writes down what they carried.
struct DecryptingRecorder: TLSEventHandler {
    let keyLog: KeyLog
    let clientRandom: ClientRandom
    var handshakeTypes: [UInt8] = []
    var alerts: [UInt8] = []
    var ticketAgeAdds: [UInt32] = []
    var ticketLifetimes: [UInt32] = []
    var certificates: [[UInt8]] = []
    var undecryptable = 0

    mutating func handle(_ event: consuming TLSEvent, stream: Int) -> TLSDirective {
        switch event {
        case let .serverHello(hello):
            handshakeTypes.append(2)
            guard let secrets = keyLog.secrets(for: clientRandom), let handshake = secrets.serverHandshakeTraffic,
                let keys = TLS13Decryption(
                    suite: hello.cipherSuite,
                    handshakeSecret: handshake.bytes,
                    applicationSecret: secrets.serverApplicationTraffic?.bytes
                )
            else { return .proceed }
            return .decryptFromHere(keys)
        case .encryptedExtensions: handshakeTypes.append(8)
        case let .certificate(chain):
            handshakeTypes.append(11)
            certificates = chain.certificates
        case let .newSessionTicket(ticket):
            handshakeTypes.append(4)
            ticketAgeAdds.append(ticket.ticketAgeAdd ?? 0)
            ticketLifetimes.append(ticket.lifetimeHint)
        case let .handshake(type, _): handshakeTypes.append(type.rawValue)
        case let .alert(alert): alerts.append(alert.description.rawValue)
        case .undecryptable: undecryptable += 1
        default: break
        }
        return .proceed
    }
}

/// TLS 1.3 record protection (RFC 8446 5.2, 7.1-7.3) on the recorded tls13-keylog.pcap, with
/// the key log the client wrote: every connection's server side against tshark's decryption
/// of the same capture with the same key log.
@Suite(.enabled(if: toolAvailable("tshark"), "tshark decrypts the capture to compare with"))
struct TLS13DecryptionTests {
    static let capture = Paths.captures.appendingPathComponent("tls13-keylog.pcap").path
    static let keys = Paths.captures.appendingPathComponent("tls13-keylog.keys").path

    /// tshark's view of the server's records of one connection: handshake types in order,
    /// alert descriptions, tickets' age_add and lifetime.
    static func tshark(stream: Int) throws -> (types: [UInt8], alerts: [UInt8], ageAdds: [UInt32], lifetimes: [UInt32])
    {
        let result = try runProcess(
            "tshark",
            [
                "-r", capture, "-o", "tls.keylog_file:\(keys)", "-Y",
                "tcp.stream==\(stream) && tcp.srcport==14420 && tls",
                "-T", "fields", "-E", "separator=|", "-e", "tls.handshake.type", "-e", "tls.alert_message.desc",
                "-e", "tls.handshake.session_ticket_age_add", "-e", "tls.handshake.session_ticket_lifetime_hint",
            ]
        )
        var types: [UInt8] = []
        var alerts: [UInt8] = []
        var ageAdds: [UInt32] = []
        var lifetimes: [UInt32] = []
        for line in result.stdout.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false)
            func values(_ index: Int) -> [Substring] { fields[index].split(separator: ",") }
            types += values(0).compactMap { UInt8($0) }
            alerts += values(1).compactMap { UInt8($0) }
            ageAdds += values(2).compactMap { UInt32($0) }
            lifetimes += values(3).compactMap { UInt32($0) }
        }
        return (types, alerts, ageAdds, lifetimes)
    }

    @Test(arguments: 0..<7)
    func serverRecordsOpenAsTsharkOpensThem(stream: Int) throws {
        var keyLog = KeyLog()
        keyLog.add(text: try Data(contentsOf: URL(fileURLWithPath: Self.keys)), source: "keys")
        let (client, server) = try tsharkStreamBytes(Self.capture, stream: stream)
        let hello = try #require(decode(client).clientHellos.first)
        var recorder = DecryptingRecorder(keyLog: keyLog, clientRandom: try #require(ClientRandom(hello.random)))
        var decoder = TLSStreamDecoder(streamTag: 1)
        server.withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        let truth = try Self.tshark(stream: stream)
        #expect(!truth.types.isEmpty && truth.types.contains(20))  // tshark did decrypt the flight
        #expect(recorder.handshakeTypes == truth.types)
        #expect(recorder.alerts == truth.alerts)
        #expect(recorder.ticketAgeAdds == truth.ageAdds && !recorder.ticketAgeAdds.isEmpty)
        #expect(recorder.ticketLifetimes == truth.lifetimes)
        #expect(recorder.undecryptable == 0)
        // Full handshakes send the server's certificate; resumptions do not (RFC 8446 2.2).
        #expect(recorder.certificates.isEmpty == !truth.types.contains(11))
    }

    /// The connection that asked for a KeyUpdate: the server's records after its own
    /// KeyUpdate open only under the next traffic secret (RFC 8446 7.2).
    @Test func recordsAfterTheServersKeyUpdateOpen() throws {
        let truth = try Self.tshark(stream: 6)
        let update = try #require(truth.types.firstIndex(of: 24))
        #expect(update == truth.types.count - 1 && truth.alerts == [0])  // close_notify after it
        try serverRecordsOpenAsTsharkOpensThem(stream: 6)
    }

    /// With another connection's secrets the first protected record does not open: one
    /// `undecryptable`, nothing invented, and the direction reads on as ciphertext.
    @Test func wrongSecretsOpenNothing() throws {
        var keyLog = KeyLog()
        keyLog.add(text: try Data(contentsOf: URL(fileURLWithPath: Self.keys)), source: "keys")
        let (otherClient, _) = try tsharkStreamBytes(Self.capture, stream: 2)  // same suite as stream 6
        let (_, server) = try tsharkStreamBytes(Self.capture, stream: 6)
        let other = try #require(decode(otherClient).clientHellos.first)
        var recorder = DecryptingRecorder(keyLog: keyLog, clientRandom: try #require(ClientRandom(other.random)))
        var decoder = TLSStreamDecoder(streamTag: 1)
        server.withUnsafeBytes { decoder.feed($0, handler: &recorder) }
        #expect(recorder.undecryptable == 1)
        #expect(recorder.handshakeTypes == [2] && recorder.alerts.isEmpty && recorder.ticketAgeAdds.isEmpty)
    }
}
