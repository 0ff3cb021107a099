import Handshakes
import Packets
import TLSWire

/// A server address and port: one service in the report.
public struct ServiceKey: Hashable, Sendable, Comparable {
    public var server: IPAddress
    public var port: UInt16
    public init(server: IPAddress, port: UInt16) {
        self.server = server
        self.port = port
    }
    public static func < (a: ServiceKey, b: ServiceKey) -> Bool { (a.server, a.port) < (b.server, b.port) }
}

/// "yes", "no" or "unknown", with the reason a reader can check.
public struct Support: Sendable, Equatable {
    public enum Value: String, Sendable { case yes, no, unknown }
    public var value: Value
    public var reason: String
    public init(value: Value, reason: String) {
        self.value = value
        self.reason = reason
    }
}

public struct OfferCount: Sendable, Equatable {
    public var made = 0
    public var accepted = 0
    public init() {}
}

/// Offers whose session age is known, grouped by age. `maxAge` nil is the last, open bucket.
public struct AgeBucket: Sendable, Equatable {
    public var maxAge: Double?
    public var offers = 0
    public var accepted = 0
}

/// How long sessions live, as far as the offers show: the oldest accepted offer and the
/// youngest refused one older than every accepted offer.
public struct LifetimeBracket: Sendable, Equatable {
    public var atLeast: Double
    public var atMost: Double?
    public var mechanism: Mechanism
    public var acceptedOffers: Int
    public var refusedOffers: Int
}

/// Everything the report says about one service.
public struct ServiceReuse: Sendable {
    public var key: ServiceKey
    public var names: [String] = []
    public var connections = 0
    public var full = 0
    public var resumed = 0
    public var undecided = 0
    public var offers: [Mechanism: OfferCount] = [:]
    public var support: [Mechanism: Support] = [:]
    public var byAge: [AgeBucket] = []
    public var byAgePerMechanism: [Mechanism: [AgeBucket]] = [:]
    public var lifetime: LifetimeBracket?
    public var lifetimeReason: String?
    public var lifetimes: [Mechanism: (bracket: LifetimeBracket?, reason: String?)] = [:]
    /// Ticket lifetime hints sent (RFC 5077 3.3), with how often.
    public var ticketLifetimeHints: [UInt32: Int] = [:]
    public var versions: [String: Int] = [:]
    public var firstSeenNanos: Int64 = .max
    public var lastSeenNanos: Int64 = .min
}

/// One connection in a client's sequence with a service.
public struct PairConnection: Sendable {
    public var uid: String
    public var timestampNanos: Int64
    /// "full", "resumed", "refused" (an offer was not accepted) or "undecided".
    public var verdict: String
    public var offer: String?
    public var sessionAge: Double?
}

public struct PairSequence: Sendable {
    public var client: IPAddress
    public var service: ServiceKey
    public var connections: [PairConnection] = []
    /// Connections beyond `maximumPairConnections`, counted but not listed.
    public var omitted = 0
}

public struct Anomaly: Sendable {
    /// "moved-session", "ticket-reuse" or "sni-changed".
    public var kind: String
    public var uids: [String]
    public var detail: String
}

/// Analysis options.
public struct ReuseOptions: Sendable {
    /// Upper edges of the session-age buckets, in seconds (`--age-buckets`).
    public var ageBucketEdges: [Double] = [5, 10, 30, 300, 3600]
    /// Connections listed per client and service pair.
    public var maximumPairConnections = 1000
    /// Anomalies listed per kind (all are counted).
    public var maximumAnomaliesPerKind = 1000

    public init() {}
}

/// Per-service reuse analysis over linked handshake records (records in ClientHello order,
/// already passed through `SessionLinker`).
public struct ReuseAnalysis {
    public let options: ReuseOptions
    public private(set) var services: [ServiceKey: ServiceReuse] = [:]
    public private(set) var pairs: [PairKey: PairSequence] = [:]
    public private(set) var anomalies: [Anomaly] = []
    public private(set) var anomalyCounts: [String: Int] = [:]
    private var ageSamples: [ServiceKey: [Mechanism: [AgeSample]]] = [:]

    /// One offer of a session whose issue (or first offer) was seen.
    struct AgeSample {
        var age: Double
        var accepted: Bool
        /// Refused, and the same connection was issued a ticket under a different key name:
        /// the server's ticket key changed, which says nothing about session lifetime.
        var keyChanged = false
    }
    private var issuance: [ServiceKey: IssuanceCounts] = [:]

    public struct PairKey: Hashable, Sendable {
        public var client: IPAddress
        public var service: ServiceKey
    }

    /// What a service's full handshakes issued (TLS 1.2 and earlier).
    struct IssuanceCounts {
        /// Full handshakes in which no ticket was issued: the session ID is the only way back.
        var fullWithoutTicket = 0
        var fullWithoutTicketIssuingSessionID = 0
        /// Full handshakes whose client accepts tickets.
        var fullWithTicketClient = 0
        var ticketsIssued = 0
    }

    public init(options: ReuseOptions = ReuseOptions()) { self.options = options }

    /// Adds one linked record. `link` is what `SessionLinker.link` returned for it.
    public mutating func add(_ record: HandshakeRecord, link: SessionLink?) {
        let key = ServiceKey(server: record.server, port: record.serverPort)
        var service = services[key] ?? ServiceReuse(key: key)
        service.connections += 1
        if let sni = record.sni, !service.names.contains(sni) { service.names.append(sni) }
        if let version = record.version { service.versions[version.description, default: 0] += 1 }
        service.firstSeenNanos = min(service.firstSeenNanos, record.timestampNanos)
        service.lastSeenNanos = max(service.lastSeenNanos, record.timestampNanos)
        switch record.resumed {
        case .some(true): service.resumed += 1
        case .some(false): service.full += 1
        case .none: service.undecided += 1
        }
        if let hint = record.ticketLifetimeHint { service.ticketLifetimeHints[hint, default: 0] += 1 }

        let mechanism = record.offer.flatMap(Mechanism.init(rawValue:))
        // An offer counts when the server answered; an undecided connection says nothing.
        if let mechanism, let resumed = record.resumed {
            service.offers[mechanism, default: OfferCount()].made += 1
            if resumed { service.offers[mechanism, default: OfferCount()].accepted += 1 }
            if let age = record.sessionAge {
                let keyChanged = !resumed && mechanism == .ticket && record.issuedTicketKeyName != nil
                    && record.offeredTicketKeyName != nil && record.issuedTicketKeyName != record.offeredTicketKeyName
                ageSamples[key, default: [:]][mechanism, default: []].append(AgeSample(age: age, accepted: resumed, keyChanged: keyChanged))
            }
        }
        if record.resumed == false, let version = record.version, !version.isTLS13Family {
            var counts = issuance[key] ?? IssuanceCounts()
            if record.ticketSupported { counts.fullWithTicketClient += 1 }
            if record.ticketIssued { counts.ticketsIssued += 1 } else {
                counts.fullWithoutTicket += 1
                if !(record.serverSessionID ?? "").isEmpty { counts.fullWithoutTicketIssuingSessionID += 1 }
            }
            issuance[key] = counts
        }
        services[key] = service
        addToPair(record, service: key)
        noteAnomalies(record, link: link)
    }

    private mutating func addToPair(_ record: HandshakeRecord, service: ServiceKey) {
        let key = PairKey(client: record.client, service: service)
        var pair = pairs[key] ?? PairSequence(client: record.client, service: service)
        let verdict: String
        switch record.resumed {
        case .some(true): verdict = "resumed"
        case .some(false): verdict = record.offer == nil ? "full" : "refused"
        case .none: verdict = "undecided"
        }
        if pair.connections.count < options.maximumPairConnections {
            pair.connections.append(PairConnection(uid: record.uid, timestampNanos: record.timestampNanos, verdict: verdict,
                                                   offer: record.offer, sessionAge: record.sessionAge))
        } else {
            pair.omitted += 1
        }
        pairs[key] = pair
    }

    private mutating func noteAnomalies(_ record: HandshakeRecord, link: SessionLink?) {
        guard record.resumed == true, let link else { return }
        if link.issuerClient != record.client {
            note(Anomaly(kind: "moved-session", uids: [link.issuerUID, record.uid],
                         detail: "\(link.mechanism.rawValue) issued to \(link.issuerClient) resumed from \(record.client)"))
        }
        if link.issuerSNI != record.sni {
            note(Anomaly(kind: "sni-changed", uids: [link.issuerUID, record.uid],
                         detail: "issued under \(link.issuerSNI ?? "no SNI"), resumed under \(record.sni ?? "no SNI")"))
        }
    }

    private mutating func note(_ anomaly: Anomaly) {
        anomalyCounts[anomaly.kind, default: 0] += 1
        if anomalyCounts[anomaly.kind]! <= options.maximumAnomaliesPerKind { anomalies.append(anomaly) }
    }

    /// Completes the per-service figures. `identityOffers` is the linker's TLS 1.3 offers
    /// per identity: an identity offered more than once is the ticket-reuse anomaly.
    public mutating func finish(identityOffers: [String: [String]]) -> ReuseReport {
        for (digest, uids) in identityOffers.sorted(by: { $0.value.first ?? "" < $1.value.first ?? "" }) where uids.count > 1 {
            note(Anomaly(kind: "ticket-reuse", uids: uids, detail: "TLS 1.3 PSK identity \(digest) offered \(uids.count) times"))
        }
        for key in services.keys {
            var service = services[key]!
            let samples = ageSamples[key] ?? [:]
            let counts = issuance[key] ?? IssuanceCounts()
            for mechanism in Mechanism.allCases {
                service.support[mechanism] = support(mechanism, service.offers[mechanism] ?? OfferCount(), counts)
                let mechanismSamples = samples[mechanism] ?? []
                service.byAgePerMechanism[mechanism] = buckets(mechanismSamples)
                let (bracket, reason) = ReuseAnalysis.bracket(mechanismSamples, mechanism)
                service.lifetimes[mechanism] = (bracket, reason)
            }
            service.byAge = buckets(samples.values.flatMap { $0 })
            // The service's lifetime: from the mechanism with the most offers of known age.
            if let main = Mechanism.allCases.max(by: { (samples[$0]?.count ?? 0) < (samples[$1]?.count ?? 0) }),
               let entry = service.lifetimes[main], !(samples[main] ?? []).isEmpty {
                service.lifetime = entry.bracket
                service.lifetimeReason = entry.reason
            } else {
                service.lifetimeReason = "no offer of a session whose issue was seen"
            }
            services[key] = service
        }
        return ReuseReport(services: services.values.sorted { $0.key < $1.key },
                           pairs: pairs.values.sorted { ($0.service, $0.client) < ($1.service, $1.client) },
                           anomalies: anomalies, anomalyCounts: anomalyCounts, ageBucketEdges: options.ageBucketEdges)
    }

    private func support(_ mechanism: Mechanism, _ offers: OfferCount, _ counts: IssuanceCounts) -> Support {
        let name = ["session_id": "session ID", "ticket": "ticket", "psk": "TLS 1.3 PSK"][mechanism.rawValue]!
        if offers.accepted > 0 { return Support(value: .yes, reason: "\(offers.accepted) of \(offers.made) \(name) offers accepted") }
        if offers.made > 0 { return Support(value: .no, reason: "none of \(offers.made) \(name) offers accepted") }
        switch mechanism {
        case .sessionID where counts.fullWithoutTicket > 0 && counts.fullWithoutTicketIssuingSessionID == 0:
            return Support(value: .no, reason: "no session ID issued in \(counts.fullWithoutTicket) full handshakes that gave no ticket either")
        case .ticket where counts.fullWithTicketClient > 0 && counts.ticketsIssued == 0:
            return Support(value: .no, reason: "no ticket issued in \(counts.fullWithTicketClient) full handshakes whose client accepts tickets")
        case .psk:
            return Support(value: .unknown, reason: "no PSK offers (TLS 1.3 tickets travel encrypted)")
        default:
            return Support(value: .unknown, reason: "no \(name) offers seen")
        }
    }

    private func buckets(_ samples: [AgeSample]) -> [AgeBucket] {
        var buckets = options.ageBucketEdges.map { AgeBucket(maxAge: $0) } + [AgeBucket(maxAge: nil)]
        for sample in samples {
            let index = options.ageBucketEdges.firstIndex { sample.age <= $0 } ?? options.ageBucketEdges.count
            buckets[index].offers += 1
            if sample.accepted { buckets[index].accepted += 1 }
        }
        return buckets
    }

    /// The lifetime bracket, or nil with the reason the offers do not support one.
    static func bracket(_ all: [AgeSample], _ mechanism: Mechanism) -> (LifetimeBracket?, String?) {
        let keyChanges = all.filter(\.keyChanged).count
        let samples = all.filter { !$0.keyChanged }
        let keyNote = keyChanges > 0 ? "; \(keyChanges) refusals left out: the server issued a ticket under a new key name" : ""
        let accepted = samples.filter(\.accepted).map(\.age)
        let refused = samples.filter { !$0.accepted }.map(\.age)
        guard !samples.isEmpty else { return (nil, "no offer of a session whose issue was seen" + keyNote) }
        guard let oldestAccepted = accepted.max() else {
            return (nil, "no offer was accepted (\(refused.count) refused, youngest \(formatAge(refused.min()!)))" + keyNote)
        }
        let contradicting = refused.filter { $0 < oldestAccepted }
        if !contradicting.isEmpty {
            return (nil, "\(contradicting.count) offers refused younger than the oldest accepted (\(formatAge(oldestAccepted))): acceptance does not follow age (several backends, or cache eviction)" + keyNote)
        }
        let atMost = refused.filter { $0 > oldestAccepted }.min()
        let bracket = LifetimeBracket(atLeast: oldestAccepted, atMost: atMost, mechanism: mechanism,
                                      acceptedOffers: accepted.count, refusedOffers: refused.count)
        var reason: String? = atMost == nil ? "no refused offer older than the oldest accepted: lower bound only" : nil
        if mechanism == .psk, atMost != nil {
            reason = "TLS 1.3 ages count from the identity's first offer, and a refusal may also mean new ticket keys (tickets travel encrypted)"
        }
        if keyChanges > 0 { reason = (reason ?? "") + keyNote }
        return (bracket, reason)
    }
}

/// "3.2 s", "4 min", "2.0 h": an age for people.
public func formatAge(_ seconds: Double) -> String {
    if seconds < 0.1 { return "\(Int((seconds * 1000).rounded())) ms" }
    if seconds < 120 {
        if seconds < 10, seconds != seconds.rounded(.down) { return "\(Double(Int(seconds * 10)) / 10) s" }
        return "\(Int(seconds)) s"
    }
    if seconds < 7200 { return "\(Int(seconds / 60)) min" }
    return "\(Double(Int(seconds / 360)) / 10) h"
}

/// The finished analysis.
public struct ReuseReport: Sendable {
    public var services: [ServiceReuse]
    public var pairs: [PairSequence]
    public var anomalies: [Anomaly]
    public var anomalyCounts: [String: Int]
    public var ageBucketEdges: [Double]
}
