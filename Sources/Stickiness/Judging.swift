import Handshakes
import Packets
import Resumption

// Judging one service, in phases: which signal tells backends apart, each connection's
// backend, what ticket key names show, where each offer went, and the verdict.

/// What tells the backends of a service apart, strongest first.
package enum BackendSignal: Sendable, Equatable {
    /// Both legs captured: each connection's back-side connection.
    case legs
    case addresses
    case certificates
    case tcpShapes
    case helloShapes
    /// Nothing: one backend visible.
    case single
}

/// The distinct backend signals among a service's connections.
private struct Signals {
    var paired: [StickinessAnalysis.Connection]
    var certificates: Set<Int32>
    var tcpShapes: Set<Int32>
    var helloShapes: Set<Int32>

    init(_ all: [StickinessAnalysis.Connection]) {
        paired = all.filter { $0.legBackend >= 0 }
        certificates = Set(all.map(\.certificate).filter { $0 >= 0 })
        tcpShapes = Set(all.map(\.tcpShape).filter { $0 >= 0 })
        helloShapes = Set(all.filter { $0.resumed == false }.map(\.helloShape))
    }
}

/// How a backend is named in the report: an address, "host N" for shapes, else its text.
private struct BackendNaming {
    let scheme: BackendSignal
    let services: [ServiceKey]
    let shapeIDs: [Int32: String]
    let interned: StickinessAnalysis.Interned

    init(_ scheme: BackendSignal, _ services: [ServiceKey], _ signals: Signals, _ interned: StickinessAnalysis.Interned)
    {
        self.scheme = scheme
        self.services = services
        self.interned = interned
        let shapes = (scheme == .tcpShapes ? signals.tcpShapes : signals.helloShapes).sorted {
            interned.text($0) < interned.text($1)
        }
        shapeIDs = Dictionary(uniqueKeysWithValues: shapes.enumerated().map { ($1, "host \($0 + 1)") })
    }

    func name(_ backend: Int32) -> String {
        switch scheme {
        case .addresses: services[Int(backend)].description
        case .tcpShapes, .helloShapes: shapeIDs[backend] ?? interned.text(backend)
        default: interned.text(backend)
        }
    }
}

/// Where the answered offers went: back to the backend that issued the session, elsewhere,
/// or to a backend the capture does not show.
private struct OfferTally {
    var offers: [Int] = []
    var sameAccepted = 0
    var sameRefused = 0
    var otherAccepted = 0
    var otherRefused = 0
    var unknownAccepted = 0
    var unknownRefused: [Int] = []
    var places: [Mechanism: OfferPlaces] = [:]
    var atIssuerOffers: [(mechanism: Mechanism, backend: Int32, accepted: Bool)] = []
    /// Per mechanism, the oldest accepted offer's age.
    var oldestAccepted: [Mechanism: Double] = [:]
    /// Offers refused younger than an accepted offer of their mechanism (backend unknown).
    var youngRefused: [Int] = []

    var known: Int { sameAccepted + sameRefused + otherAccepted + otherRefused }
    var landedElsewhere: Int { otherRefused + youngRefused.count }
}

extension StickinessAnalysis {
    /// `all` is in time order. Backends are numbered: an interned id, or for the address
    /// scheme the index of the connection's service in `services`.
    /// `unanswered` counts, per service, the connections not kept because no server answered
    /// them (`StickinessAnalysis.add`): they still went to their address.
    func judge(_ all: [Connection], services: [ServiceKey], unanswered: [Int] = []) -> StickinessVerdict {
        let signals = Signals(all)
        let (scheme, schemeEvidence) = chooseBackendSignal(
            all,
            services: services,
            signals,
            unanswered: unanswered.reduce(0, +)
        )
        var evidence = [schemeEvidence]
        let backendOf = backends(of: all, services: services, scheme: scheme)
        let naming = BackendNaming(scheme, services, signals, interned)
        var counts: [Int32: Int] = [:]
        for b in backendOf where b >= 0 { counts[b, default: 0] += 1 }
        if scheme == .addresses {
            for (index, count) in unanswered.enumerated() where count > 0 { counts[Int32(index), default: 0] += count }
        }
        let backends = counts.map {
            BackendSummary(id: naming.name($0.key), identifiedBy: scheme, connections: $0.value)
        }.sorted { $0.id < $1.id }
        evidence += keyNameEvidence(all, backendOf: backendOf, naming: naming)
        var tally = Self.tally(all, backendOf: backendOf)
        evidence += Self.placeEvidence(all, tally)
        // Only a capture that tells backends apart can show a single one; with nothing to
        // tell them apart, one backend and several sticky or sharing ones look alike.
        let backendsKnown = scheme != .single
        let (verdict, verdictEvidence) = Self.decide(
            tally,
            backendCount: backends.count,
            backendsKnown: backendsKnown,
            backendOf: backendOf
        )
        evidence += verdictEvidence
        // Of all answered offers, those shown to have reached another backend (a lower bound
        // when some offers' backends are unknown).
        let offersElsewhere: Double? =
            tally.offers.isEmpty || (tally.known == 0 && tally.youngRefused.isEmpty)
            ? nil
            : Double(tally.otherAccepted + tally.otherRefused + tally.youngRefused.count) / Double(tally.offers.count)
        var result = StickinessVerdict(
            verdict: verdict,
            backends: backends,
            offersElsewhere: offersElsewhere,
            offersElsewhereIsLowerBound: offersElsewhere != nil && tally.known < tally.offers.count,
            evidence: evidence,
            services: services
        )
        result.backendsKnown = backendsKnown
        for offer in tally.atIssuerOffers {
            let name = naming.name(offer.backend)
            tally.places[offer.mechanism]?.atIssuerByBackend[name, default: OfferCount()].made += 1
            if offer.accepted {
                tally.places[offer.mechanism]?.atIssuerByBackend[name, default: OfferCount()].accepted += 1
            }
        }
        result.offerPlaces = tally.places
        return result
    }

    /// The strongest signal that tells backends apart, and the evidence that says so.
    private func chooseBackendSignal(
        _ all: [Connection],
        services: [ServiceKey],
        _ signals: Signals,
        unanswered: Int
    ) -> (BackendSignal, StickinessEvidence) {
        if !signals.paired.isEmpty {
            let backends = Set(signals.paired.map(\.legBackend)).map(interned.text).sorted()
            return (.legs, .legsPaired(paired: signals.paired.count, of: all.count + unanswered, backends: backends))
        }
        if services.count > 1 { return (.addresses, .addresses(services)) }
        if signals.certificates.count > 1 {
            let names = signals.certificates.map { interned.text($0).replacingPrefix("certificate ") }.sorted()
            return (.certificates, .certificates(names))
        }
        if signals.tcpShapes.count > 1 {
            return (.tcpShapes, .tcpTraits(signals.tcpShapes.map(interned.text).sorted()))
        }
        if signals.helloShapes.count > 1 {
            return (.helloShapes, .helloShapes(signals.helloShapes.map(interned.text).sorted()))
        }
        return (.single, .oneBackendVisible(oneCertificate: signals.certificates.count == 1))
    }

    /// Each connection's backend (by position in `all`), where the scheme tells it; -1 where not.
    private func backends(of all: [Connection], services: [ServiceKey], scheme: BackendSignal) -> [Int32] {
        let serviceIndex = Dictionary(uniqueKeysWithValues: services.enumerated().map { ($1, Int32($0)) })
        var backendOf = [Int32](repeating: -1, count: all.count)
        for (i, c) in all.enumerated() {
            switch scheme {
            case .legs: backendOf[i] = c.legBackend
            case .addresses: backendOf[i] = serviceIndex[c.service] ?? -1
            case .certificates: backendOf[i] = c.certificate
            case .tcpShapes: backendOf[i] = c.tcpShape
            case .helloShapes: if c.resumed == false { backendOf[i] = c.helloShape }
            case .single: break  // nothing tells backends apart: no offer's backend is known
            }
        }
        guard scheme == .certificates else { return backendOf }
        // Abbreviated handshakes carry no certificate: TCP traits or an issued ticket key
        // name seen with exactly one certificate identify the backend.
        var certsOfShape: [Int32: Set<Int32>] = [:]
        var certsOfKey: [Int32: Set<Int32>] = [:]
        for (i, c) in all.enumerated() where backendOf[i] >= 0 {
            if c.tcpShape >= 0 { certsOfShape[c.tcpShape, default: []].insert(backendOf[i]) }
            if c.issuedKeyName >= 0 { certsOfKey[c.issuedKeyName, default: []].insert(backendOf[i]) }
        }
        for (i, c) in all.enumerated() where backendOf[i] < 0 {
            if c.issuedKeyName >= 0, let owners = certsOfKey[c.issuedKeyName], owners.count == 1 {
                backendOf[i] = owners.first!
            } else if let owners = certsOfShape[c.tcpShape], owners.count == 1 {
                backendOf[i] = owners.first!
            }
        }
        return backendOf
    }

    /// Ticket key names per backend: one name at several backends means shared keys.
    private func keyNameEvidence(
        _ all: [Connection],
        backendOf: [Int32],
        naming: BackendNaming
    ) -> [StickinessEvidence] {
        var evidence: [StickinessEvidence] = []
        var backendsOfKey: [Int32: Set<Int32>] = [:]
        for (i, c) in all.enumerated() where backendOf[i] >= 0 {
            if c.issuedKeyName >= 0 { backendsOfKey[c.issuedKeyName, default: []].insert(backendOf[i]) }
            if c.resumed == true, c.offeredKeyName >= 0 {
                backendsOfKey[c.offeredKeyName, default: []].insert(backendOf[i])
            }
        }
        for (key, owners) in backendsOfKey.sorted(by: { interned.text($0.key) < interned.text($1.key) })
        where owners.count > 1 {
            let keyName = String(interned.text(key).prefix(12))
            evidence.append(.sharedTicketKey(keyName: keyName, backends: owners.map(naming.name).sorted()))
        }
        let keyNames = Set(all.map(\.issuedKeyName) + all.map(\.offeredKeyName)).subtracting([-1])
        if backendsOfKey.values.allSatisfy({ $0.count == 1 }), backendsOfKey.count > 1 {
            evidence.append(.keyNamesOnePerBackend(backendsOfKey.count))
        } else if keyNames.count > 1, backendsOfKey.isEmpty {
            evidence.append(.keyNamesInUse(keyNames.count))
        }
        return evidence
    }

    /// The backend that issued the session an offer carries, -1 when unknown. TLS 1.3 tickets
    /// arrive encrypted: the probable issuer is the client's last full handshake with this
    /// service before the identity's first offer.
    private static func issuers(_ all: [Connection], backendOf: [Int32]) -> (Int) -> Int32 {
        // Built at the first offer asked about: a service without placed offers needs neither.
        var indexes: (position: [String: Int], fullTLS13ByClient: [IPAddress: [Int]])?
        return { i in
            if indexes == nil {
                var position: [String: Int] = [:]
                position.reserveCapacity(all.count)
                for (i, c) in all.enumerated() { position[c.uid] = i }
                var fullTLS13ByClient: [IPAddress: [Int]] = [:]
                for (i, c) in all.enumerated() where c.isTLS13 && c.resumed == false && c.offer == nil {
                    fullTLS13ByClient[c.client, default: []].append(i)
                }
                indexes = (position, fullTLS13ByClient)
            }
            let (position, fullTLS13ByClient) = indexes!
            let c = all[i]
            if let issuer = c.resumes { return position[issuer].map { backendOf[$0] } ?? -1 }
            guard c.isTLS13 else { return -1 }
            let first = c.pskFirstOfferedBy.flatMap { position[$0] } ?? i
            guard let candidates = fullTLS13ByClient[c.client] else { return -1 }
            // The last candidate before `first` (candidates are in time order).
            var low = 0
            var high = candidates.count
            while low < high {
                let middle = (low + high) / 2
                if all[candidates[middle]].timestampNanos < all[first].timestampNanos {
                    low = middle + 1
                } else {
                    high = middle
                }
            }
            return low > 0 ? backendOf[candidates[low - 1]] : -1
        }
    }

    /// Each answered offer by where it went and how it was answered.
    private static func tally(_ all: [Connection], backendOf: [Int32]) -> OfferTally {
        let issuerBackend = issuers(all, backendOf: backendOf)
        var tally = OfferTally()
        tally.offers = all.indices.filter { all[$0].offer != nil && all[$0].resumed != nil }
        // Per mechanism, in the order of `Mechanism.allCases` (a switch, not a hash per offer).
        var places = [OfferPlaces?](repeating: nil, count: Mechanism.allCases.count)
        var oldestAccepted = [Double?](repeating: nil, count: Mechanism.allCases.count)
        for i in tally.offers {
            let accepted = all[i].resumed == true
            let serving = backendOf[i]
            let issuer = serving >= 0 ? issuerBackend(i) : -1
            let place: OfferPlaces.Place
            if serving >= 0, issuer >= 0 {
                switch (serving == issuer, accepted) {
                case (true, true): tally.sameAccepted += 1
                case (true, false): tally.sameRefused += 1
                case (false, true): tally.otherAccepted += 1
                case (false, false): tally.otherRefused += 1
                }
                place = serving == issuer ? .atIssuer : .elsewhere
            } else {
                if accepted { tally.unknownAccepted += 1 } else { tally.unknownRefused.append(i) }
                place = .unplaced
            }
            if let mechanism = all[i].offer {
                let slot = mechanism.slot
                if places[slot] == nil { places[slot] = OfferPlaces() }
                places[slot]!.add(place, accepted: accepted, age: all[i].sessionAge)
                if place == .atIssuer { tally.atIssuerOffers.append((mechanism, serving, accepted)) }
                // Outcome pattern: refused younger than an accepted offer of the same mechanism.
                if accepted, let age = all[i].sessionAge { oldestAccepted[slot] = max(oldestAccepted[slot] ?? 0, age) }
            }
        }
        for mechanism in Mechanism.allCases {
            if let placed = places[mechanism.slot] { tally.places[mechanism] = placed }
            if let oldest = oldestAccepted[mechanism.slot] { tally.oldestAccepted[mechanism] = oldest }
        }
        tally.youngRefused = tally.unknownRefused.filter { i in
            guard let m = all[i].offer, let age = all[i].sessionAge, let limit = oldestAccepted[m.slot] else {
                return false
            }
            return age < limit
        }
        return tally
    }

    /// The evidence of where offers went.
    private static func placeEvidence(_ all: [Connection], _ tally: OfferTally) -> [StickinessEvidence] {
        var evidence: [StickinessEvidence] = []
        if tally.otherAccepted + tally.otherRefused > 0 {
            evidence.append(
                .offersElsewhere(of: tally.known, accepted: tally.otherAccepted, refused: tally.otherRefused)
            )
        }
        if tally.sameAccepted + tally.sameRefused > 0 {
            evidence.append(.offersAtIssuer(accepted: tally.sameAccepted, refused: tally.sameRefused))
        }
        if !tally.youngRefused.isEmpty {
            let maxAge = tally.youngRefused.compactMap { all[$0].sessionAge }.max() ?? 0
            let limit = tally.oldestAccepted.values.max() ?? 0
            evidence.append(.youngRefusals(count: tally.youngRefused.count, upTo: maxAge, acceptedUpTo: limit))
        }
        if tally.unknownAccepted > 0 { evidence.append(.acceptedUnplaced(tally.unknownAccepted)) }
        return evidence
    }

    /// The verdict from where offers went, with the evidence that qualifies it.
    private static func decide(
        _ tally: OfferTally,
        backendCount: Int,
        backendsKnown: Bool,
        backendOf: [Int32]
    ) -> (StickinessVerdict.Verdict, [StickinessEvidence]) {
        let landedElsewhere = tally.landedElsewhere
        if tally.offers.isEmpty {
            return (backendsKnown && backendCount == 1 ? .singleBackend : .unknown, [.noAnsweredOffers])
        }
        if tally.otherAccepted > 0 && landedElsewhere == 0 { return (.shared, []) }
        if landedElsewhere > 0 && tally.otherAccepted == 0 { return (.notSticky, []) }
        if landedElsewhere > 0 && tally.otherAccepted > 0 {
            return (landedElsewhere >= tally.otherAccepted ? .notSticky : .shared, [.mixedSharing])
        }
        if tally.sameAccepted > 0 && backendCount > 1 {
            // Round robin with clients that take turns in step sends each back to its
            // issuer too: when the backends rotate connection by connection, the capture
            // cannot tell stickiness from rotation.
            return rotates(backendOf) ? (.unknown, [.rotation]) : (.sticky, [])
        }
        if backendsKnown && backendCount == 1 { return (.singleBackend, []) }
        if tally.unknownAccepted + tally.sameAccepted > 0 {
            return (.stickyOrShared, backendsKnown ? [] : [.backendsIndistinguishable])
        }
        guard !backendsKnown else { return (.unknown, []) }
        let youngest = tally.places.values.compactMap(\.youngestRefusedAge).min()
        return (.unknown, [.everyOfferRefused(youngest: youngest), .howToDecide])
    }
}

extension Mechanism {
    /// The mechanism's place in `allCases`.
    fileprivate var slot: Int {
        switch self {
        case .sessionID: 0
        case .ticket: 1
        case .psk: 2
        }
    }
}
