import Handshakes
import Packets
import Resumption
import TLSWire

/// A backend as the capture shows it.
public struct BackendSummary: Sendable, Equatable {
    /// "127.0.0.1:14501", "certificate 3f2a9c01be77", "shape 2", ...
    public var id: String
    /// "back-side connection", "server address", "certificate" or "ServerHello shape".
    public var identifiedBy: String
    public var connections: Int
}

/// Whether resuming clients went back to the backend that holds their session.
public struct StickinessVerdict: Sendable {
    public enum Verdict: String, Sendable {
        case sticky
        case notSticky = "not-sticky"
        case shared
        case stickyOrShared = "sticky-or-shared"
        case singleBackend = "single-backend"
        case unknown
    }

    public var verdict: Verdict
    public var backends: [BackendSummary]
    /// Share of offers that landed on another backend than the one holding the session.
    public var offersElsewhere: Double?
    /// True when some offers' backends are unknown, so the share is a lower bound.
    public var offersElsewhereIsLowerBound = false
    /// Plain sentences a reader can check against the capture.
    public var evidence: [String]
    /// The services judged together (several addresses serving one name are one service).
    public var services: [ServiceKey]
}

/// Tells, per service, whether a load balancer sends returning clients back to the backend
/// that holds their session. Reads linked records only (front and direct connections; back
/// legs are already folded into their fronts by `LegPairer`).
///
/// Backends are told apart by the strongest signal the capture offers: the back-side
/// connection (both legs captured), several server addresses serving one name (DNS round
/// robin, a capture behind the balancer), the server certificate (TLS 1.2 and earlier), the
/// ServerHello shape with the server's TCP traits, and ticket key names. Where none tells
/// backends apart, offers refused younger than accepted ones show that some reached a
/// backend without the session.
public struct StickinessAnalysis {
    /// Connections kept per service for the verdict: the most recent ones (the oldest
    /// quarter is dropped when full), so a long live run judges on recent traffic.
    public static let maximumConnectionsPerService = 20_000
    /// Connections kept across all services; beyond it new services are counted only.
    public static let maximumConnections = 60_000

    struct Connection {
        var uid: String
        var timestampNanos: Int64
        var client: IPAddress
        var service: ServiceKey
        var legBackend: String?
        var certificate: String?
        /// The server host's TCP traits (TTL, SYN-ACK window and options): the same for
        /// full and abbreviated handshakes, different between hosts unless a balancer
        /// terminates TCP.
        var tcpShape: String
        /// Cipher and ServerHello extension order: comparable only among full handshakes, as
        /// abbreviated ones answer with other extensions.
        var helloShape: String
        var issuedKeyName: String?
        var offeredKeyName: String?
        var isTLS13: Bool
        var offer: Mechanism?
        var resumed: Bool?
        var sessionAge: Double?
        var resumes: String?
        var pskFirstOfferedBy: String?
    }

    private var connections: [ServiceKey: [Connection]] = [:]
    private var kept = 0
    private var omitted: [ServiceKey: Int] = [:]
    /// Connections to services first seen after the connection cap was reached: not judged.
    public private(set) var connectionsNotJudged = 0
    private var parent: [ServiceKey: ServiceKey] = [:]
    private var serviceOfName: [String: ServiceKey] = [:]

    public init() {}

    public mutating func add(_ record: HandshakeRecord) {
        guard record.backsideOf == nil else { return }
        let service = ServiceKey(server: record.server, port: record.serverPort)
        // Services first seen after the cap are counted only, so memory stays bounded.
        guard connections[service] != nil || kept < StickinessAnalysis.maximumConnections else {
            connectionsNotJudged += 1
            return
        }
        if parent[service] == nil { parent[service] = service }
        // One name on one port served from several addresses is one service.
        if let sni = record.sni?.lowercased() {
            let name = "\(sni)|\(record.serverPort)"
            if let other = serviceOfName[name] { union(service, other) } else { serviceOfName[name] = service }
        }
        if connections[service, default: []].count >= StickinessAnalysis.maximumConnectionsPerService {
            let dropped = StickinessAnalysis.maximumConnectionsPerService / 4
            connections[service]!.removeFirst(dropped)
            omitted[service, default: 0] += dropped
            kept -= dropped
        }
        kept += 1
        let traits = record.serverTraits
        let tcpShape = [traits.map { "ttl \($0.ttl)" } ?? "-", traits?.synAckWindow.map { "window \($0)" } ?? "-",
                        traits?.synAckOptions.map { "options \($0)" } ?? "-"].joined(separator: ", ")
        let helloShape = "cipher \(record.cipher.map { String($0.rawValue) } ?? "-"), extensions " + record.serverExtensions.map(String.init).joined(separator: ".")
        connections[service, default: []].append(Connection(
            uid: record.uid, timestampNanos: record.timestampNanos, client: record.client, service: service,
            legBackend: record.backend, certificate: record.certificateFingerprints.first.map { String($0.prefix(12)) },
            tcpShape: tcpShape, helloShape: helloShape, issuedKeyName: record.issuedTicketKeyName,
            offeredKeyName: record.offeredTicketKeyName ?? record.pskIdentities.first?.keyName,
            isTLS13: record.version?.isTLS13Family ?? false, offer: record.offer.flatMap(Mechanism.init(rawValue:)),
            resumed: record.resumed, sessionAge: record.sessionAge, resumes: record.resumes,
            pskFirstOfferedBy: record.pskFirstOfferedBy))
    }

    private mutating func root(_ key: ServiceKey) -> ServiceKey {
        var current = key
        while let next = parent[current], next != current { current = next }
        parent[key] = current
        return current
    }

    private mutating func union(_ a: ServiceKey, _ b: ServiceKey) {
        let ra = root(a), rb = root(b)
        if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
    }

    /// A verdict per service as of now (services judged together share one verdict).
    public mutating func verdicts() -> [ServiceKey: StickinessVerdict] {
        var groups: [ServiceKey: [ServiceKey]] = [:]
        for service in parent.keys { groups[root(service), default: []].append(service) }
        var verdicts: [ServiceKey: StickinessVerdict] = [:]
        for services in groups.values {
            let members = services.sorted()
            let all = members.flatMap { connections[$0] ?? [] }.sorted { $0.timestampNanos < $1.timestampNanos }
            var verdict = judge(all, services: members)
            let skipped = members.reduce(0) { $0 + (omitted[$1] ?? 0) }
            if skipped > 0 { verdict.evidence.append("judged on the latest \(all.count) connections; \(skipped) earlier ones not kept") }
            for service in members { verdicts[service] = verdict }
        }
        return verdicts
    }

    // MARK: judging one service

    private enum Scheme {
        case legs, addresses, certificates, tcpShapes, helloShapes, single

        var label: String {
            switch self {
            case .legs: "back-side connection"
            case .addresses: "server address"
            case .certificates: "certificate"
            case .tcpShapes: "TCP traits"
            case .helloShapes: "ServerHello shape"
            case .single: "none"
            }
        }
    }

    private func judge(_ all: [Connection], services: [ServiceKey]) -> StickinessVerdict {
        var evidence: [String] = []
        let endpoint = { (s: ServiceKey) in s.server.isIPv6 ? "[\(s.server)]:\(s.port)" : "\(s.server):\(s.port)" }
        let paired = all.filter { $0.legBackend != nil }
        let certificates = Set(all.compactMap(\.certificate))
        let tcpShapes = Set(all.map(\.tcpShape))
        let helloShapes = Set(all.filter { $0.resumed == false }.map(\.helloShape))
        let scheme: Scheme
        if !paired.isEmpty {
            scheme = .legs
            let backends = Set(paired.compactMap(\.legBackend)).sorted()
            evidence.append("both legs captured: \(paired.count) of \(all.count) connections paired with their back-side connection by ClientHello random; \(backends.count) backend\(backends.count == 1 ? "" : "s"): \(backends.joined(separator: ", "))")
        } else if services.count > 1 {
            scheme = .addresses
            evidence.append("\(services.count) server addresses serve the same name: \(services.map(endpoint).joined(separator: ", "))")
        } else if certificates.count > 1 {
            scheme = .certificates
            evidence.append("\(certificates.count) different server certificates in full handshakes: \(certificates.sorted().joined(separator: ", "))")
        } else if tcpShapes.count > 1 {
            scheme = .tcpShapes
            evidence.append("\(tcpShapes.count) different server TCP traits: \(tcpShapes.sorted().joined(separator: "; "))")
        } else if helloShapes.count > 1 {
            scheme = .helloShapes
            evidence.append("\(helloShapes.count) different ServerHello shapes in full handshakes: \(helloShapes.sorted().joined(separator: "; "))")
        } else {
            scheme = .single
            evidence.append("one server address\(certificates.count == 1 ? ", one certificate" : ""), one ServerHello shape, one set of TCP traits: one backend visible")
        }

        // Each connection's backend, where the scheme tells it.
        var backendOf: [String: String] = [:]
        for c in all {
            switch scheme {
            case .legs: if let b = c.legBackend { backendOf[c.uid] = b }
            case .addresses: backendOf[c.uid] = endpoint(c.service)
            case .certificates: if let cert = c.certificate { backendOf[c.uid] = "certificate \(cert)" }
            case .tcpShapes: backendOf[c.uid] = c.tcpShape
            case .helloShapes: if c.resumed == false { backendOf[c.uid] = c.helloShape }
            case .single: break // nothing tells backends apart: no offer's backend is known
            }
        }
        if scheme == .certificates {
            // Abbreviated handshakes carry no certificate: TCP traits or an issued ticket key
            // name seen with exactly one certificate identify the backend.
            var certsOfShape: [String: Set<String>] = [:], certsOfKey: [String: Set<String>] = [:]
            for c in all {
                guard let b = backendOf[c.uid] else { continue }
                certsOfShape[c.tcpShape, default: []].insert(b)
                if let k = c.issuedKeyName { certsOfKey[k, default: []].insert(b) }
            }
            for c in all where backendOf[c.uid] == nil {
                if let k = c.issuedKeyName, let owners = certsOfKey[k], owners.count == 1 { backendOf[c.uid] = owners.first }
                else if let owners = certsOfShape[c.tcpShape], owners.count == 1 { backendOf[c.uid] = owners.first }
            }
        }
        let shapeList = scheme == .tcpShapes ? tcpShapes.sorted() : helloShapes.sorted()
        let shapeIDs = Dictionary(uniqueKeysWithValues: shapeList.enumerated().map { ($1, "host \($0 + 1)") })
        func displayName(_ backend: String) -> String { shapeIDs[backend] ?? backend }

        var counts: [String: Int] = [:]
        for c in all { if let b = backendOf[c.uid] { counts[b, default: 0] += 1 } }
        let backends = counts.keys.sorted().map { BackendSummary(id: displayName($0), identifiedBy: scheme.label, connections: counts[$0]!) }

        // Ticket key names per backend: one name at several backends means shared keys.
        var backendsOfKey: [String: Set<String>] = [:]
        for c in all {
            guard let b = backendOf[c.uid] else { continue }
            if let k = c.issuedKeyName { backendsOfKey[k, default: []].insert(b) }
            if c.resumed == true, let k = c.offeredKeyName { backendsOfKey[k, default: []].insert(b) }
        }
        for (key, owners) in backendsOfKey.sorted(by: { $0.key < $1.key }) where owners.count > 1 {
            evidence.append("ticket key name \(key.prefix(12)) used by \(owners.count) backends (\(owners.sorted().map(displayName).joined(separator: ", "))): shared ticket keys")
        }
        let keyNames = Set(all.compactMap(\.issuedKeyName) + all.compactMap(\.offeredKeyName))
        if backendsOfKey.values.allSatisfy({ $0.count == 1 }), backendsOfKey.count > 1 {
            evidence.append("\(backendsOfKey.count) ticket key names, each used by one backend")
        } else if keyNames.count > 1, backendsOfKey.isEmpty {
            evidence.append("\(keyNames.count) ticket key names in use")
        }

        // Where each offer's session came from.
        let byUID = Dictionary(uniqueKeysWithValues: all.map { ($0.uid, $0) })
        func issuerBackend(_ c: Connection) -> String? {
            if let issuer = c.resumes { return byUID[issuer].flatMap { backendOf[$0.uid] } }
            guard c.isTLS13 else { return nil }
            // TLS 1.3 tickets arrive encrypted: the probable issuer is the client's last full
            // handshake with this service before the identity's first offer.
            let first = c.pskFirstOfferedBy.flatMap { byUID[$0] } ?? c
            let issuer = all.last { $0.client == c.client && $0.resumed == false && $0.offer == nil && $0.isTLS13 && $0.timestampNanos < first.timestampNanos }
            return issuer.flatMap { backendOf[$0.uid] }
        }

        let offers = all.filter { $0.offer != nil && $0.resumed != nil }
        var sameAccepted = 0, sameRefused = 0, otherAccepted = 0, otherRefused = 0, unknownAccepted = 0
        var unknownRefused: [Connection] = []
        for c in offers {
            let accepted = c.resumed == true
            if let serving = backendOf[c.uid], let issuer = issuerBackend(c) {
                switch (serving == issuer, accepted) {
                case (true, true): sameAccepted += 1
                case (true, false): sameRefused += 1
                case (false, true): otherAccepted += 1
                case (false, false): otherRefused += 1
                }
            } else if accepted {
                unknownAccepted += 1
            } else {
                unknownRefused.append(c)
            }
        }
        // Outcome pattern: refused younger than an accepted offer of the same mechanism.
        var oldestAccepted: [Mechanism: Double] = [:]
        for c in offers where c.resumed == true {
            if let m = c.offer, let age = c.sessionAge { oldestAccepted[m] = max(oldestAccepted[m] ?? 0, age) }
        }
        let youngRefused = unknownRefused.filter { c in
            guard let m = c.offer, let age = c.sessionAge, let limit = oldestAccepted[m] else { return false }
            return age < limit
        }
        let known = sameAccepted + sameRefused + otherAccepted + otherRefused

        if known > 0 {
            if otherAccepted + otherRefused > 0 {
                evidence.append("\(otherAccepted + otherRefused) of \(known) offers landed on another backend than the one that issued the session: \(otherAccepted) accepted, \(otherRefused) refused")
            }
            if sameAccepted + sameRefused > 0 {
                evidence.append("\(sameAccepted + sameRefused) offers returned to the issuing backend: \(sameAccepted) accepted\(sameRefused > 0 ? ", \(sameRefused) refused (expired or evicted)" : "")")
            }
        }
        if !youngRefused.isEmpty {
            let maxAge = youngRefused.compactMap(\.sessionAge).max() ?? 0
            let limit = oldestAccepted.values.max() ?? 0
            evidence.append("\(youngRefused.count) offers refused at ages up to \(formatAge(maxAge)) while offers up to \(formatAge(limit)) old were accepted: they reached a backend that does not hold the session")
        }
        if unknownAccepted > 0 {
            evidence.append("\(unknownAccepted) offers accepted in abbreviated handshakes, which do not show the backend")
        }

        let landedElsewhere = otherRefused + youngRefused.count
        // Of all answered offers, those shown to have reached another backend (a lower bound
        // when some offers' backends are unknown).
        let offersElsewhere: Double? = offers.isEmpty || (known == 0 && youngRefused.isEmpty) ? nil
            : Double(otherAccepted + otherRefused + youngRefused.count) / Double(offers.count)

        let visible = scheme == .single ? 1 : backends.count
        let verdict: StickinessVerdict.Verdict
        if offers.isEmpty {
            verdict = visible == 1 && !all.isEmpty ? .singleBackend : .unknown
            evidence.append("no resumption offers with an answer")
        } else if otherAccepted > 0 && landedElsewhere == 0 {
            verdict = .shared
        } else if landedElsewhere > 0 && otherAccepted == 0 {
            verdict = .notSticky
        } else if landedElsewhere > 0 && otherAccepted > 0 {
            verdict = landedElsewhere >= otherAccepted ? .notSticky : .shared
            evidence.append("mixed: some backends share sessions and some do not")
        } else if sameAccepted > 0 && visible > 1 {
            verdict = .sticky
        } else if visible <= 1 {
            verdict = .singleBackend
        } else if unknownAccepted > 0 {
            verdict = .stickyOrShared
        } else {
            verdict = .unknown
        }
        return StickinessVerdict(verdict: verdict, backends: backends, offersElsewhere: offersElsewhere,
                                 offersElsewhereIsLowerBound: offersElsewhere != nil && known < offers.count,
                                 evidence: evidence, services: services)
    }
}
