import Foundation
import Handshakes
import Reports
import TestSupport
import Testing

/// Every recorded capture, moved the way capture points move packets (DERIVED captures, see
/// `CaptureDerivation`), gives the same records as the original: consecutive data segments
/// of a direction swapped, and one direction's packets stamped later (two clocks joined by
/// timestamp). So does each with another sequence space shown in its handshakes (issue 17
/// item 4): a second SYN-ACK the client never acknowledges, or a SYN whose initial sequence
/// number the SYN-ACK does not acknowledge. Only the fields that hold times or point at
/// other records by uid may differ.
@Suite struct ReorderedCaptureTests {
    static let derivations: [CaptureDerivation] = [
        .swappedSegments,
        .delayed(responder: true, nanos: 30_000_000),
        .delayed(responder: false, nanos: 30_000_000),
        .secondSynAck,
        .synOfAnotherAttempt,
    ]

    /// Keys that hold capture times, ages or other records' uids.
    static let timeKeys: Set<String> = [
        "uid", "ts", "offer", "resumes", "session_age", "session_age_from", "psk_first_offered_by", "server_traits",
        "backside_of",
    ]

    /// Each record's fields without the time keys, by connection (endpoints and client random).
    static func comparable(_ records: [HandshakeRecord]) throws -> [String: [String: String]] {
        var writer = JSONWriter()
        var byConnection: [String: [String: String]] = [:]
        for record in records {
            writer.reset()
            writer.object(record.fields)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String: Any])
            var fields: [String: String] = [:]
            for (key, value) in object where !timeKeys.contains(key) {
                let data = try JSONSerialization.data(
                    withJSONObject: [value],
                    options: [.sortedKeys, .fragmentsAllowed]
                )
                fields[key] = String(decoding: data, as: UTF8.self)
            }
            byConnection[
                "\(record.client):\(record.clientPort)>\(record.server):\(record.serverPort) \(record.transport)"
                    + " \(fields["client_random"] ?? "")"
            ] = fields
        }
        return byConnection
    }

    @Test(arguments: Paths.recordedCaptures.map(\.lastPathComponent))
    func derivedVariantsGiveTheSameRecords(capture: String) throws {
        let original = Paths.captures.appendingPathComponent(capture)
        let expected = try Self.comparable(try extractRecords(original))
        for derivation in Self.derivations {
            let derived = FileManager.default.temporaryDirectory.appendingPathComponent(
                "tlsreuse-derived-\(getpid())-\(capture).pcapng"
            )
            defer {
                // KEEP_DERIVED=FOLDER keeps each derived capture there, to look at with tshark.
                if let folder = ProcessInfo.processInfo.environment["KEEP_DERIVED"] {
                    let kept = URL(fileURLWithPath: folder).appendingPathComponent(
                        "\(capture)-\(derivation.description.replacingOccurrences(of: " ", with: "-")).pcapng"
                    )
                    try? FileManager.default.removeItem(at: kept)
                    try? FileManager.default.copyItem(at: derived, to: kept)
                }
                try? FileManager.default.removeItem(at: derived)
            }
            try deriveCapture(original, derivation, to: derived)
            let (records, statistics) = try extractRecords([derived.path])
            let actual = try Self.comparable(records)
            let onlyOriginal = Set(expected.keys).subtracting(actual.keys).sorted()
            let onlyDerived = Set(actual.keys).subtracting(expected.keys).sorted()
            #expect(
                onlyOriginal.isEmpty && onlyDerived.isEmpty,
                "\(capture), \(derivation): only in the original \(onlyOriginal), only derived \(onlyDerived)"
            )
            var differing: [String] = []
            for (connection, want) in expected.sorted(by: { $0.key < $1.key }) {
                guard let got = actual[connection] else { continue }
                for (key, value) in want.sorted(by: { $0.key < $1.key }) where got[key] != value {
                    differing.append("\(connection) \(key): \(value) -> \(got[key] ?? "none")")
                }
            }
            #expect(
                differing.isEmpty,
                "\(capture), \(derivation): \(differing.count) fields differ: \(differing.prefix(4))"
            )
            #expect(
                statistics.reassembly.gaps == 0 && statistics.reassembly.outOfWindowSegments == 0,
                """
                \(capture), \(derivation): \(statistics.reassembly.gaps) gaps, \
                \(statistics.reassembly.outOfWindowSegments) segments out of window
                """
            )
            switch derivation {
            case .secondSynAck, .synOfAnotherAttempt:
                // The other space was shown, and left for the one the handshake completed in.
                #expect(
                    statistics.reassembly.flows == 0 || statistics.reassembly.sequenceSpacesAdopted > 0,
                    "\(capture), \(derivation): no sequence space adopted"
                )
            default: break
            }
        }
    }
}
