import Capture
import Handshakes
import HeapModule
import Linking
import Packets
import TLSWire

/// "yes", "no" or "unknown", with the counts it rests on (Reports puts them in words).
package struct Support: Sendable, Equatable {
    package enum Value: String, Sendable { case yes, no, unknown }
    /// What the value rests on: answered offers, or what full handshakes issued (a server
    /// that never issues a session ID or ticket supports none, wherever offers went).
    package enum Basis: Sendable { case offers, issuance, nothing }
    package var value: Value
    package var evidence: SupportEvidence
    package var basis: Basis
    /// Offers that landed on another backend than the one that issued their session, when
    /// some were refused there (lost to the balancer); set when support is judged on places.
    package var landedElsewhere: OfferCount?

    package init(value: Value, evidence: SupportEvidence, basis: Basis = .offers, landedElsewhere: OfferCount? = nil) {
        self.value = value
        self.evidence = evidence
        self.basis = basis
        self.landedElsewhere = landedElsewhere
    }
}

/// The counts behind a support value, for one mechanism at one service.
package enum SupportEvidence: Sendable, Equatable {
    /// Some offers were accepted.
    case offersAccepted(OfferCount)
    /// Offers were made and none was accepted.
    case noneAccepted(made: Int)
    /// No session ID in full handshakes that gave no ticket either (`refusedOffers` offers
    /// refused besides).
    case noSessionIDIssued(fullHandshakes: Int, refusedOffers: Int)
    /// No ticket in full handshakes whose client accepts tickets.
    case noTicketIssued(fullHandshakes: Int, refusedOffers: Int)
    /// No offer seen (TLS 1.3 tickets travel encrypted: their offers are the only sign).
    case noOffers
    /// Judged on places: none of `made` offers accepted, and nothing tells backends apart.
    case noneAcceptedBackendsUnknown(made: Int, youngestRefusedAge: Double?)
    /// Judged on places: the offers that returned to the backend that issued their session,
    /// and each backend's answer to the offers of its own sessions.
    case atIssuingBackend(OfferCount, byBackend: [String: OfferCount])
    /// Judged on places: every offer whose backend is known (`known` of `made`) landed on
    /// another backend than the issuing one and was refused.
    case lostToBalancer(known: Int, made: Int)
}

package struct OfferCount: Sendable, Equatable {
    package var made = 0
    package var accepted = 0
    package init() {}

    mutating func add(accepted isAccepted: Bool) {
        made += 1
        if isAccepted { accepted += 1 }
    }
}

/// Offers whose session age is known, grouped by age. `maxAge` nil is the last, open bucket.
package struct AgeBucket: Sendable, Equatable {
    package var maxAge: Double?
    package var offers = 0
    package var accepted = 0

    /// A probe made at a nominal interval arrives a little later (the client's connect and
    /// handshake): an age counts in the bucket of an edge up to 10% or 1 s past it, whichever
    /// is less, so probes at 5, 10 and 30 s land in the buckets that end at 5, 10 and 30 s.
    package static func tolerance(_ edge: Double) -> Double { min(edge * 0.1, 1) }

    /// The bucket of `age` among `edges` (the last, open bucket is `edges.count`).
    package static func index(of age: Double, edges: [Double]) -> Int {
        edges.firstIndex { age <= $0 + tolerance($0) } ?? edges.count
    }
}

/// One answered offer of a session whose issue was seen: its age and outcome.
package struct OfferAge: Sendable, Equatable {
    package var age: Double
    package var accepted: Bool
    package var mechanism: Mechanism
}

/// How long sessions live, as far as the offers show: the oldest accepted offer and the
/// youngest refused one older than every accepted offer.
package struct LifetimeBracket: Sendable, Equatable {
    package var atLeast: Double
    package var atMost: Double?
    package var mechanism: Mechanism
    package var acceptedOffers: Int
    package var refusedOffers: Int
    /// TLS 1.3: some ages count from the identity's first offer (no full handshake of the
    /// client before it), so they are lower bounds.
    package var fromFirstOffer = false
}

/// What a lifetime bracket rests on, or why there is none (Reports puts it in words).
package struct LifetimeBasis: Sendable, Equatable {
    /// Why the offers give no bracket.
    package enum Gap: Sendable, Equatable {
        /// No offer of a session whose issue was seen.
        case noOfferOfKnownIssue
        /// No offer was accepted.
        case noneAccepted(refused: Int, youngestRefusedAge: Double)
        /// Offers younger than the oldest accepted one were refused: acceptance does not
        /// follow age (several backends, or cache eviction).
        case acceptanceDoesNotFollowAge(refusedYounger: Int, oldestAccepted: Double)
    }

    package var mechanism: Mechanism?
    /// Nil when there is a bracket.
    package var gap: Gap?
    /// Refusals left out: the server answered them with a ticket under a new key name.
    package var refusalsUnderNewKeyName = 0
    /// TLS 1.3: offers whose age counts from the identity's first offer (no full handshake
    /// of the client before it), so it is low.
    package var agesFromFirstOffer = 0
    /// TLS 1.3: offers aged from their ticket's issue, the issuing connection read with a key log.
    package var agesFromTicketIssue = 0
    /// TLS 1.3: all offers in the bracket.
    package var offers = 0

    package init(mechanism: Mechanism?, gap: Gap?) {
        self.mechanism = mechanism
        self.gap = gap
    }
}

/// TLS 1.3 early data at one service (RFC 8446 4.2.10). The server says it accepted early
/// data in EncryptedExtensions, which only a key log opens; a full handshake rejects it
/// whatever the keys (4.2.10: early data needs the first PSK accepted).
package struct EarlyDataCount: Sendable, Equatable {
    /// ClientHellos with the early_data extension that the server answered.
    package var offered = 0
    package var accepted = 0
    package var rejected = 0
    /// Offers answered with a resumption whose EncryptedExtensions were not read (no key).
    package var answerUnknown = 0
    /// TLS 1.3 tickets read with a key log, and those that allow early data (max_early_data).
    package var ticketsRead = 0
    package var ticketsAllowing = 0
    /// The largest max_early_data_size a ticket announced.
    package var largestAllowed: UInt32 = 0

    package init() {}

    mutating func add(_ record: HandshakeRecord) {
        for ticket in record.issuedTickets {
            ticketsRead += 1
            if let allowed = ticket.maxEarlyData {
                ticketsAllowing += 1
                largestAllowed = max(largestAllowed, allowed)
            }
        }
        guard record.earlyDataOffered, let resumed = record.resumed else { return }
        offered += 1
        switch (resumed, record.earlyDataAccepted) {
        case (false, _), (true, .some(false)): rejected += 1
        case (true, .some(true)): accepted += 1
        case (true, .none): answerUnknown += 1
        }
    }
}

/// Everything the report says about one service.
package struct ServiceReuse: Sendable {
    package var key: ServiceKey
    package var names: [String] = []
    package var connections = 0
    package var full = 0
    package var resumed = 0
    package var undecided = 0
    package var offers: [Mechanism: OfferCount] = [:]
    package var support: [Mechanism: Support] = [:]
    package var byAge: [AgeBucket] = []
    package var byAgePerMechanism: [Mechanism: [AgeBucket]] = [:]
    package var lifetime: LifetimeBracket?
    package var lifetimeBasis = LifetimeBasis(mechanism: nil, gap: .noOfferOfKnownIssue)
    package var lifetimes: [Mechanism: (bracket: LifetimeBracket?, basis: LifetimeBasis)] = [:]
    /// Ticket lifetime hints sent (RFC 5077 3.3), with how often.
    package var ticketLifetimeHints: [UInt32: Int] = [:]
    /// TLS 1.3 early data (0-RTT, RFC 8446 4.2.10), offered and answered.
    package var earlyData = EarlyDataCount()
    /// TLS 1.2 renegotiations read with a key log (RFC 5246 7.4.1.1): connections that
    /// renegotiated, and the renegotiations, full and abbreviated.
    package var renegotiatingConnections = 0
    package var renegotiations = 0
    package var fullRenegotiations = 0
    package var abbreviatedRenegotiations = 0
    /// Connections per negotiated version (raw ProtocolVersion values).
    package var versionCounts: [UInt16: Int] = [:]
    /// Connections per version name ("TLSv1.2").
    package var versions: [String: Int] {
        Dictionary(versionCounts.map { (ProtocolVersion(rawValue: $0.key).description, $0.value) }, uniquingKeysWith: +)
    }
    package var firstSeenNanos: Int64 = .max
    package var lastSeenNanos: Int64 = .min
    /// Connections, offers and accepted offers over time.
    package var overTime = TimeSeries()
    /// The first answered offers with a known age (at most `maximumOfferAges`): with few
    /// offers, the report lists each one.
    package var offerAges: [OfferAge] = []
    package static let maximumOfferAges = 12
    /// What the report is computed from: acceptance by age per mechanism, and what full
    /// handshakes issued. Kept with the service, so a record finds them with its lookup.
    var ageStatistics: [Mechanism: AgeStatistics] = [:]
    var issuance = ReuseAnalysis.IssuanceCounts()
}

/// One connection in a client's sequence with a service.
package struct PairConnection: Sendable {
    package var uid: String
    package var timestampNanos: Int64
    package var verdict: PairVerdict
    package var offer: Mechanism?
    package var sessionAge: Double?
}

/// How one connection of a client's sequence went.
package enum PairVerdict: String, Sendable, CaseIterable {
    case full
    case resumed
    /// An offer was not accepted.
    case refused
    /// The handshake was not seen far enough to tell.
    case undecided
}

package struct PairSequence: Sendable {
    package var client: IPAddress
    package var service: ServiceKey
    package var connections: [PairConnection] = []
    /// Connections beyond `maximumPairConnections`, counted but not listed.
    package var omitted = 0
}

/// A pattern in how sessions were resumed that deserves a look.
package enum AnomalyKind: String, Sendable, CaseIterable, Comparable {
    /// A session resumed from another client address than the one it was issued to.
    case movedSession = "moved-session"
    /// One ticket or PSK identity offered many times (RFC 8446 8 replay concerns).
    case ticketReuse = "ticket-reuse"
    /// A session resumed under another server name than it was issued for.
    case sniChanged = "sni-changed"
    /// A TLS 1.3 ticket offered after the lifetime its server announced (RFC 8446 4.6.1:
    /// clients must not cache it longer); read with a key log.
    case ticketPastLifetime = "ticket-past-lifetime"
    /// The ticket age a TLS 1.3 client gave differs from the capture's by more than
    /// `ReuseAnalysis.ticketAgeTolerance` (the client's clock, or a replay, RFC 8446 8.3);
    /// read with a key log.
    case ageMismatch = "age-mismatch"

    package static func < (a: AnomalyKind, b: AnomalyKind) -> Bool { a.rawValue < b.rawValue }
}

/// What an anomaly shows, as values (Reports says it in words).
package enum AnomalyFacts: Sendable, Equatable {
    /// A TLS 1.3 PSK identity (its digest) offered again and again.
    case ticketReuse(identity: String)
    case movedSession(mechanism: Mechanism, issuedTo: IPAddress, resumedFrom: IPAddress)
    case sniChanged(issuedUnder: String?, resumedUnder: String?)
    case ticketPastLifetime(lifetime: UInt32, age: Double, accepted: Bool)
    case ageMismatch(clientAge: Double, captureAge: Double)
}

package struct Anomaly: Sendable {
    package var kind: AnomalyKind
    /// The connections involved (for ticket-reuse, the first ones).
    package var uids: [String]
    package var facts: AnomalyFacts
    /// For ticket-reuse: how many times the identity was offered.
    package var offers = 0
}

/// Analysis options.
package struct ReuseOptions: Sendable {
    /// Upper edges of the session-age buckets, in seconds (`--age-buckets`).
    package var ageBucketEdges: [Double] = [5, 10, 30, 300, 3600]
    /// Connections listed per client and service pair.
    package var maximumPairConnections = 1000
    /// Anomalies listed per kind (all are counted).
    package var maximumAnomaliesPerKind = 1000
    /// Client and service pairs followed; further pairs are counted only.
    package var maximumPairs = 20_000
    /// Connections listed across all pairs; further ones are counted only.
    package var maximumListedPairConnections = 200_000
    /// Services reported; connections to further services are counted only.
    package var maximumServices = 10_000
    /// Bytes for services, their statistics and the pairs (the budget's part,
    /// `MemoryBudget.reuseAnalysis`). Past it no new service, pair, name, lifetime hint or
    /// refused age is kept; connections and offers are still counted (`notKept`).
    package var maximumBytes = MemoryBudget().reuseAnalysis

    package init() {}
}

/// Acceptance by age for one mechanism at one service, in bounded memory: bucket counts,
/// and for the lifetime bracket the oldest accepted age, how many refusals were younger
/// than it, and the youngest refused ages above it (a bounded min-heap).
struct AgeStatistics {
    static let maximumRefusedAbove = 1024

    var buckets: [AgeBucket]
    var oldestAccepted: Double?
    var accepted = 0
    var refused = 0
    /// Refusals younger than the oldest accepted offer: acceptance does not follow age.
    var refusedBelow = 0
    /// Refused ages not younger than the oldest accepted one, smallest kept.
    var refusedAbove = YoungestAges()
    /// Refusals left out: the server answered with a ticket under a new key name.
    var keyChanges = 0
    /// TLS 1.3 ages counted from the identity's first offer, not from a full handshake.
    var fromFirstOffer = 0
    var fromTicketIssue = 0

    init(edges: [Double]) { buckets = edges.map { AgeBucket(maxAge: $0) } + [AgeBucket(maxAge: nil)] }

    /// Refused ages kept before the memory bound stops a heap from growing.
    static let refusedAboveKeptWhenFull = 16

    /// `mayGrow` false (memory bound reached) keeps the refused ages at what they are, or 16.
    mutating func add(
        age: Double,
        accepted isAccepted: Bool,
        keyChanged: Bool,
        edges: [Double],
        mayGrow: Bool = true,
        fromFirstOffer firstOffer: Bool = false,
        fromTicketIssue ticketIssue: Bool = false
    ) {
        if firstOffer { fromFirstOffer += 1 }
        if ticketIssue { fromTicketIssue += 1 }
        let index = AgeBucket.index(of: age, edges: edges)
        buckets[index].offers += 1
        if isAccepted { buckets[index].accepted += 1 }
        if keyChanged {
            keyChanges += 1
            return
        }
        if isAccepted {
            accepted += 1
            if age > (oldestAccepted ?? -1) {
                oldestAccepted = age
                while let youngest = refusedAbove.minimum, youngest < age {
                    refusedAbove.popMinimum()
                    refusedBelow += 1
                }
            }
        } else {
            refused += 1
            if let oldest = oldestAccepted, age < oldest {
                refusedBelow += 1
            } else {
                let limit =
                    mayGrow
                    ? AgeStatistics.maximumRefusedAbove
                    : max(refusedAbove.count, AgeStatistics.refusedAboveKeptWhenFull)
                refusedAbove.insert(age, keepingAtMost: limit)
            }
        }
    }

    var hasSamples: Bool { accepted + refused > 0 }

    /// The lifetime bracket, or nil, with what it rests on or why there is none.
    func bracket(_ mechanism: Mechanism) -> (LifetimeBracket?, LifetimeBasis) {
        var basis = LifetimeBasis(mechanism: mechanism, gap: nil)
        basis.refusalsUnderNewKeyName = keyChanges
        guard hasSamples else {
            basis.gap = .noOfferOfKnownIssue
            return (nil, basis)
        }
        guard let oldest = oldestAccepted else {
            basis.gap = .noneAccepted(refused: refused, youngestRefusedAge: refusedAbove.minimum ?? 0)
            return (nil, basis)
        }
        if refusedBelow > 0 {
            basis.gap = .acceptanceDoesNotFollowAge(refusedYounger: refusedBelow, oldestAccepted: oldest)
            return (nil, basis)
        }
        let atMost = refusedAbove.minimum.flatMap { $0 > oldest ? $0 : nil }
        var bracket = LifetimeBracket(
            atLeast: oldest,
            atMost: atMost,
            mechanism: mechanism,
            acceptedOffers: accepted,
            refusedOffers: refused
        )
        // Tickets travel encrypted (RFC 8446 4.6.1): their issue is not seen.
        if mechanism == .psk {
            basis.agesFromFirstOffer = fromFirstOffer
            basis.agesFromTicketIssue = fromTicketIssue
            basis.offers = accepted + refused
        }
        bracket.fromFirstOffer = mechanism == .psk && fromFirstOffer > 0
        return (bracket, basis)
    }
}

/// The youngest refused ages, at most a fixed number: when full, the oldest is dropped
/// (a min-max heap: both ends in O(log n)).
struct YoungestAges {
    private var heap = Heap<Double>()

    var minimum: Double? { heap.min }
    var count: Int { heap.count }

    mutating func insert(_ value: Double, keepingAtMost limit: Int) {
        if heap.count >= limit {
            guard let largest = heap.max, value < largest else { return }
            heap.removeMax()
        }
        heap.insert(value)
    }

    mutating func popMinimum() { heap.removeMin() }
}

/// Per-service reuse analysis over linked handshake records (records in ClientHello order,
/// already passed through `SessionLinker`). Memory is bounded: per service and mechanism a
/// few counters, pairs and services up to a cap, anomalies up to a cap per kind.
package struct ReuseAnalysis {
    package let options: ReuseOptions
    package private(set) var services: [ServiceKey: ServiceReuse] = [:]
    package private(set) var pairs: [PairKey: PairSequence] = [:]
    package private(set) var anomalies: [Anomaly] = []
    package private(set) var anomalyCounts: [AnomalyKind: Int] = [:]
    /// Connections to services beyond `maximumServices`, and pairs beyond `maximumPairs`.
    package private(set) var connectionsToOtherServices = 0
    package private(set) var omittedPairs = 0
    private var listedPairConnections = 0
    /// What the analysis holds, as it counts against `options.maximumBytes`.
    private var heldBytes = 0
    /// Items not kept because the memory bound was reached: services, pairs, names, hints,
    /// listed connections, refused ages.
    package private(set) var notKept = 0

    /// What a service costs before its names and time bins: its counters and tables, three
    /// mechanisms' statistics with their bounded first refused ages.
    static let serviceBytes = 4096
    /// A kept name beyond its bytes, a time bin, a lifetime hint, a refused age, a pair, a
    /// listed pair connection.
    static let nameBytes = 64, binBytes = MemoryLayout<TimeSeries.Bin>.stride, hintBytes = 48, ageBytes = 16
    static let pairBytes = 256, listedBytes = MemoryLayout<PairConnection>.stride * 3 / 2

    private var full: Bool { heldBytes >= options.maximumBytes }
    /// The last record's service and pair, with their places in `services` and `pairs`
    /// (`admit`).
    private var lastService: (key: ServiceKey, index: Dictionary<ServiceKey, ServiceReuse>.Index)?
    private var lastPair: (key: PairKey, index: Dictionary<PairKey, PairSequence>.Index)?
    /// Index in `anomalies` of each TLS 1.3 identity's ticket-reuse anomaly.
    private var ticketReuseAnomaly: [String: Int] = [:]

    package struct PairKey: Hashable, Sendable {
        package var client: IPAddress
        package var service: ServiceKey

        /// Five words and the host name into the seeded hash, as `ServiceKey` does.
        package func hash(into hasher: inout Hasher) {
            hasher.combine(client.high)
            hasher.combine(client.low)
            hasher.combine(service.server.high)
            hasher.combine(service.server.low)
            hasher.combine(
                UInt64(service.port) | (service.server.isIPv6 ? 1 << 16 : 0) | (service.host == nil ? 0 : 1 << 17)
                    | (client.isIPv6 ? 1 << 18 : 0)
            )
            if let host = service.host { hasher.combine(host) }
        }
    }

    /// What a service's full handshakes issued (TLS 1.2 and earlier).
    struct IssuanceCounts {
        /// Full handshakes in which no ticket was issued: the session ID is the only way back.
        var fullWithoutTicket = 0
        var fullWithoutTicketIssuingSessionID = 0
        /// Full handshakes whose client accepts tickets.
        var fullWithTicketClient = 0
        var ticketsIssued = 0

        /// One full handshake (TLS 1.2 and earlier).
        mutating func add(ticketClient: Bool, ticketIssued: Bool, issuingSessionID: Bool) {
            if ticketClient { fullWithTicketClient += 1 }
            if ticketIssued {
                ticketsIssued += 1
            } else {
                fullWithoutTicket += 1
                if issuingSessionID { fullWithoutTicketIssuingSessionID += 1 }
            }
        }
    }

    /// uids listed in one ticket-reuse anomaly (all offers are counted).
    static let maximumUIDsPerAnomaly = 50

    package init(options: ReuseOptions = ReuseOptions()) { self.options = options }

    /// The index of `key` in `table`: an entry already there, or a new one from `make` while
    /// the table is under `limit` entries and the analysis under its memory part (its
    /// `bytes` counted). Nil when it does not fit (counted in `notKept` past the memory part).
    /// `last` holds the key admitted last with its index: consecutive records nearly always
    /// share it, and then no lookup is made. Only this adds keys, so the index stays valid.
    private mutating func admit<Key, Value>(
        _ key: Key,
        into table: WritableKeyPath<ReuseAnalysis, [Key: Value]>,
        last: WritableKeyPath<ReuseAnalysis, (key: Key, index: Dictionary<Key, Value>.Index)?>,
        limit: Int,
        bytes: Int,
        _ make: () -> Value
    ) -> Dictionary<Key, Value>.Index? {
        if let remembered = self[keyPath: last], remembered.key == key { return remembered.index }
        if let known = self[keyPath: table].index(forKey: key) {
            self[keyPath: last] = (key, known)
            return known
        }
        guard self[keyPath: table].count < limit, !full else {
            if full { notKept += 1 }
            return nil
        }
        heldBytes += bytes
        self[keyPath: table][key] = make()
        let index = self[keyPath: table].index(forKey: key)!
        self[keyPath: last] = (key, index)
        return index
    }

    /// Adds one linked record. `link` is what `SessionLinker.link` returned for it.
    package mutating func add(_ record: HandshakeRecord, link: SessionLink?) {
        let key = ServiceKey(of: record)
        // Looked up once; then changed in place through its index (no copy, no rehash).
        guard
            let index = admit(
                key,
                into: \.services,
                last: \.lastService,
                limit: options.maximumServices,
                bytes: Self.serviceBytes,
                { ServiceReuse(key: key) }
            )
        else {
            connectionsToOtherServices += 1
            return
        }
        heldBytes += Self.update(&services.values[index], with: record, full: full, notKept: &notKept)
        addOffer(record, index: index)
        let answeredOffer = record.offer != nil && record.resumed != nil
        let addedBins = services.values.withValue(at: index) { service in
            let bins = service.overTime.bins.count
            service.overTime.add(at: record.timestampNanos, offer: answeredOffer, accepted: record.resumed == true)
            return service.overTime.bins.count - bins
        }
        heldBytes += addedBins * Self.binBytes
        addToPair(record, service: key)
        noteAnomalies(record, link: link)
    }

    /// Returns the bytes it added.
    private static func update(
        _ service: inout ServiceReuse,
        with record: HandshakeRecord,
        full: Bool,
        notKept: inout Int
    ) -> Int {
        var added = 0
        service.connections += 1
        if let sni = record.keptServerName, service.names.count < 64, !service.names.contains(sni) {
            if full {
                notKept += 1
            } else {
                service.names.append(sni)
                added += nameBytes + sni.utf8.count
            }
        }
        if let version = record.version { service.versionCounts[version.rawValue, default: 0] += 1 }
        service.firstSeenNanos = min(service.firstSeenNanos, record.timestampNanos)
        service.lastSeenNanos = max(service.lastSeenNanos, record.timestampNanos)
        switch record.resumed {
        case .some(true): service.resumed += 1
        case .some(false): service.full += 1
        case .none: service.undecided += 1
        }
        service.earlyData.add(record)
        if !record.renegotiations.isEmpty {
            service.renegotiatingConnections += 1
            for renegotiation in record.renegotiations {
                service.renegotiations += 1
                if renegotiation.resumed == false { service.fullRenegotiations += 1 }
                if renegotiation.resumed == true { service.abbreviatedRenegotiations += 1 }
            }
        }
        // TLS 1.2 lifetime hints, and TLS 1.3 ticket lifetimes read with a key log.
        func count(_ hint: UInt32) {
            if service.ticketLifetimeHints[hint] != nil {
                service.ticketLifetimeHints[hint]! += 1
            } else if service.ticketLifetimeHints.count < 64 {
                if full {
                    notKept += 1
                } else {
                    service.ticketLifetimeHints[hint] = 1
                    added += hintBytes
                }
            }
        }
        if let hint = record.ticketLifetimeHint { count(hint) }
        for ticket in record.issuedTickets { count(ticket.lifetime) }
        return added
    }

    private mutating func addOffer(_ record: HandshakeRecord, index: Dictionary<ServiceKey, ServiceReuse>.Index) {
        let mechanism = record.offer
        // An offer counts when the server answered; an undecided connection says nothing.
        if let mechanism, let resumed = record.resumed {
            services.values.withValue(at: index) { service in
                // One lookup, changed in place.
                service.offers[mechanism, default: OfferCount()].add(accepted: resumed)
            }
            if let age = record.sessionAge {
                services.values.withValue(at: index) { service in
                    if service.offerAges.count < ServiceReuse.maximumOfferAges {
                        service.offerAges.append(OfferAge(age: age, accepted: resumed, mechanism: mechanism))
                    }
                }
                let keyChanged =
                    !resumed && mechanism == .ticket && record.issuedTicketKeyName != nil
                    && record.offeredTicketKeyName != nil && record.issuedTicketKeyName != record.offeredTicketKeyName
                let (full, edges) = (self.full, options.ageBucketEdges)
                // One lookup, changed in place (reading the statistics back out copied them).
                let (fromFirstOffer, fromTicketIssue) = (
                    record.sessionAgeFrom == .firstOffer, mechanism == .psk && record.sessionAgeFrom == .issue
                )
                let grown = services.values.withValue(at: index) { service in
                    service.ageStatistics[mechanism, default: AgeStatistics(edges: edges)].withValue { ages in
                        let kept = ages.refusedAbove.count
                        ages.add(
                            age: age,
                            accepted: resumed,
                            keyChanged: keyChanged,
                            edges: edges,
                            mayGrow: !full,
                            fromFirstOffer: fromFirstOffer,
                            fromTicketIssue: fromTicketIssue
                        )
                        return ages.refusedAbove.count - kept
                    }
                }
                heldBytes += max(grown * Self.ageBytes, 0)
            }
        }
        if record.resumed == false, let version = record.version, !version.isTLS13Family {
            let (ticketClient, ticketIssued) = (record.ticketSupported, record.ticketIssued)
            let issuingSessionID = !ticketIssued && !(record.serverSessionID?.isEmpty ?? true)
            services.values.withValue(at: index) { service in
                service.issuance.add(
                    ticketClient: ticketClient,
                    ticketIssued: ticketIssued,
                    issuingSessionID: issuingSessionID
                )
            }
        }
    }

    private mutating func addToPair(_ record: HandshakeRecord, service: ServiceKey) {
        let key = PairKey(client: record.client, service: service)
        guard
            let index = admit(
                key,
                into: \.pairs,
                last: \.lastPair,
                limit: options.maximumPairs,
                bytes: Self.pairBytes,
                { PairSequence(client: key.client, service: service) }
            )
        else {
            omittedPairs += 1
            return
        }
        // Changed in place: a copy of the sequence would copy its array on every append.
        if pairs.values.withValue(at: index, { $0.connections.count }) < options.maximumPairConnections,
            listedPairConnections < options.maximumListedPairConnections, !full
        {
            let verdict: PairVerdict
            switch record.resumed {
            case .some(true): verdict = .resumed
            case .some(false): verdict = record.offer == nil ? .full : .refused
            case .none: verdict = .undecided
            }
            listedPairConnections += 1
            heldBytes += Self.listedBytes
            pairs.values[index].connections.append(
                PairConnection(
                    uid: record.uid,
                    timestampNanos: record.timestampNanos,
                    verdict: verdict,
                    offer: record.offer,
                    sessionAge: record.sessionAge
                )
            )
        } else {
            pairs.values[index].omitted += 1
        }
    }

    /// How far a client's ticket age may be from the capture's before it is an anomaly: 10 s
    /// (clients count whole seconds, and the ticket arrives a round trip after the handshake)
    /// and 1% of the age (clock drift).
    package static func ticketAgeTolerance(_ age: Double) -> Double { 10 + age / 100 }

    private mutating func noteAnomalies(_ record: HandshakeRecord, link: SessionLink?) {
        guard let link else { return }
        // A link to the ticket's issue (key log) is no second offer; one to a first offer is.
        if link.mechanism == .psk, let firstOffer = record.pskFirstOfferedBy {
            // RFC 8446 8.1: tickets should be offered once; a second offer of an identity
            // is a replay or a privacy leak across connections.
            if let index = ticketReuseAnomaly[link.key] {
                if anomalies[index].uids.count < ReuseAnalysis.maximumUIDsPerAnomaly {
                    anomalies[index].uids.append(record.uid)
                }
                anomalies[index].offers += 1
            } else {
                let anomaly = Anomaly(
                    kind: .ticketReuse,
                    uids: [firstOffer, record.uid],
                    facts: .ticketReuse(identity: link.key),
                    offers: 2
                )
                if note(anomaly) { ticketReuseAnomaly[link.key] = anomalies.count - 1 }
            }
        }
        if let lifetime = link.ticketLifetime, let age = record.sessionAge, age > Double(lifetime) {
            note(
                Anomaly(
                    kind: .ticketPastLifetime,
                    uids: [link.issuerUID, record.uid],
                    facts: .ticketPastLifetime(lifetime: lifetime, age: age, accepted: record.resumed == true)
                )
            )
        }
        if let clientAge = record.clientTicketAge, let age = record.sessionAge,
            abs(clientAge - age) > ReuseAnalysis.ticketAgeTolerance(age)
        {
            note(
                Anomaly(
                    kind: .ageMismatch,
                    uids: [link.issuerUID, record.uid],
                    facts: .ageMismatch(clientAge: clientAge, captureAge: age)
                )
            )
        }
        guard record.resumed == true else { return }
        if link.issuerClient != record.client {
            note(
                Anomaly(
                    kind: .movedSession,
                    uids: [link.issuerUID, record.uid],
                    facts: .movedSession(
                        mechanism: link.mechanism,
                        issuedTo: link.issuerClient,
                        resumedFrom: record.client
                    )
                )
            )
        }
        if link.issuerSNI != record.keptServerName {
            note(
                Anomaly(
                    kind: .sniChanged,
                    uids: [link.issuerUID, record.uid],
                    facts: .sniChanged(issuedUnder: link.issuerSNI, resumedUnder: record.keptServerName)
                )
            )
        }
    }

    /// Counts the anomaly; lists it while its kind is under the cap. Returns whether listed.
    @discardableResult
    private mutating func note(_ anomaly: Anomaly) -> Bool {
        anomalyCounts[anomaly.kind, default: 0] += 1
        guard anomalyCounts[anomaly.kind]! <= options.maximumAnomaliesPerKind else { return false }
        anomalies.append(anomaly)
        return true
    }

    /// The report as of now. Does not change the analysis: a live run asks for one per interval.
    package func report() -> ReuseReport {
        var finished: [ServiceReuse] = []
        for base in services.values {
            var service = base
            let statistics = base.ageStatistics
            let counts = base.issuance
            var combined = options.ageBucketEdges.map { AgeBucket(maxAge: $0) } + [AgeBucket(maxAge: nil)]
            for mechanism in Mechanism.allCases {
                service.support[mechanism] = support(mechanism, service.offers[mechanism] ?? OfferCount(), counts)
                let ageStatistics = statistics[mechanism] ?? AgeStatistics(edges: options.ageBucketEdges)
                service.byAgePerMechanism[mechanism] = ageStatistics.buckets
                for (index, bucket) in ageStatistics.buckets.enumerated() {
                    combined[index].offers += bucket.offers
                    combined[index].accepted += bucket.accepted
                }
                service.lifetimes[mechanism] = ageStatistics.bracket(mechanism)
            }
            service.byAge = combined
            // The service's lifetime: from the mechanism with the most offers of known age.
            let sampleCount = { (m: Mechanism) in
                (statistics[m]?.accepted ?? 0) + (statistics[m]?.refused ?? 0) + (statistics[m]?.keyChanges ?? 0)
            }
            if let main = Mechanism.allCases.max(by: { sampleCount($0) < sampleCount($1) }), sampleCount(main) > 0,
                let entry = service.lifetimes[main]
            {
                service.lifetime = entry.bracket
                service.lifetimeBasis = entry.basis
            }
            finished.append(service)
        }
        return ReuseReport(
            services: finished.sorted { $0.key < $1.key },
            pairs: pairs.values.sorted { ($0.service, $0.client) < ($1.service, $1.client) },
            anomalies: anomalies,
            anomalyCounts: anomalyCounts,
            ageBucketEdges: options.ageBucketEdges,
            connectionsToOtherServices: connectionsToOtherServices,
            omittedPairs: omittedPairs,
            notKeptForMemory: notKept > 0 ? [(key: "reuse_statistics", count: notKept)] : []
        )
    }

    private func support(_ mechanism: Mechanism, _ offers: OfferCount, _ counts: IssuanceCounts) -> Support {
        if offers.accepted > 0 { return Support(value: .yes, evidence: .offersAccepted(offers)) }
        switch mechanism {
        case .sessionID where counts.fullWithoutTicket > 0 && counts.fullWithoutTicketIssuingSessionID == 0:
            return Support(
                value: .no,
                evidence: .noSessionIDIssued(fullHandshakes: counts.fullWithoutTicket, refusedOffers: offers.made),
                basis: .issuance
            )
        case .ticket where counts.fullWithTicketClient > 0 && counts.ticketsIssued == 0:
            return Support(
                value: .no,
                evidence: .noTicketIssued(fullHandshakes: counts.fullWithTicketClient, refusedOffers: offers.made),
                basis: .issuance
            )
        case _ where offers.made > 0:
            return Support(value: .no, evidence: .noneAccepted(made: offers.made))
        default:
            return Support(value: .unknown, evidence: .noOffers, basis: .nothing)
        }
    }
}

/// The finished analysis.
package struct ReuseReport: Sendable {
    package var services: [ServiceReuse]
    package var pairs: [PairSequence]
    package var anomalies: [Anomaly]
    package var anomalyCounts: [AnomalyKind: Int]
    package var ageBucketEdges: [Double]
    /// Connections to services beyond the cap, and client/service pairs beyond the cap.
    package var connectionsToOtherServices = 0
    package var omittedPairs = 0
    /// What the analysis stages could not keep within their parts of the memory budget,
    /// by name (zero counts left out); filled by whoever runs the stages.
    package var notKeptForMemory: [(key: String, count: Int)] = []
}

extension AgeStatistics {
    /// Runs `body` on the statistics in place and returns what it returns.
    mutating func withValue<Result>(_ body: (inout AgeStatistics) -> Result) -> Result { body(&self) }
}

extension Dictionary.Values {
    /// Runs `body` on the value at `index` in place. Reading a field through the subscript
    /// would copy the whole value first, retaining and releasing every array and string in it.
    mutating func withValue<Result>(at index: Dictionary.Index, _ body: (inout Value) -> Result) -> Result {
        body(&self[index])
    }
}
