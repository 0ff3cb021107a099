import Capture
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
    /// Whether the capture tells backends apart (back-side connections, several addresses,
    /// certificates, TCP traits or ServerHello shapes), so offers have a known place.
    public var backendsKnown = false
    /// Answered offers per mechanism, by where they went.
    public var offerPlaces: [Mechanism: OfferPlaces] = [:]
}

/// Where a mechanism's answered offers went, as far as the capture shows.
public struct OfferPlaces: Sendable, Equatable {
    /// Offers that reached the backend that issued their session.
    public var atIssuer = OfferCount()
    /// Offers that reached another backend.
    public var elsewhere = OfferCount()
    /// Offers whose backend or issuer the capture does not show.
    public var unplaced = OfferCount()
    /// The youngest refused offer's session age, in seconds.
    public var youngestRefusedAge: Double?
    /// `atIssuer` per backend (its display name): each backend's own support.
    public var atIssuerByBackend: [String: OfferCount] = [:]
    public init() {}

    mutating func add(_ place: WritableKeyPath<OfferPlaces, OfferCount>, accepted: Bool, age: Double?) {
        self[keyPath: place].made += 1
        if accepted {
            self[keyPath: place].accepted += 1
        } else if let age {
            youngestRefusedAge = min(youngestRefusedAge ?? age, age)
        }
    }
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
    /// Bytes for kept connections, interned texts and the name index (the budget's part,
    /// `MemoryBudget.stickiness`). Past it a service drops its oldest quarter to keep a new
    /// connection, and connections to new services are counted only (`connectionsNotJudged`).
    public let maximumBytes: Int
    /// What a kept connection costs: the value, with its array's growth slack.
    static let connectionBytes = MemoryLayout<Connection>.stride * 3 / 2
    /// What an entry of the service and name tables costs, with the table's slack.
    static let entryBytes = 128

    /// One connection, reduced to small values: texts are interned once (`Interned`), so
    /// keeping and sorting tens of thousands of these copies no strings.
    struct Connection {
        var uid: String
        var timestampNanos: Int64
        var client: IPAddress
        var service: ServiceKey
        /// Interned ids (`Interned`), -1 when absent.
        var legBackend: Int32
        var certificate: Int32
        /// The server host's TCP traits (TTL, SYN-ACK window and options): the same for full
        /// and abbreviated handshakes, different between hosts unless a balancer terminates TCP.
        var tcpShape: Int32
        /// Cipher and ServerHello extension order: comparable only among full handshakes, as
        /// abbreviated ones answer with other extensions.
        var helloShape: Int32
        var issuedKeyName: Int32
        var offeredKeyName: Int32
        var isTLS13: Bool
        var offer: Mechanism?
        var resumed: Bool?
        var sessionAge: Double?
        var resumes: String?
        var pskFirstOfferedBy: String?
    }

    /// Texts seen, numbered: backend addresses, certificate and key name prefixes, shapes.
    /// At most `maximumBytes` of them; later new texts share the id `notKept`.
    struct Interned {
        static let notKept: Int32 = -2
        /// What a text costs beyond its bytes: its array slot, a table entry, heap headers.
        static let overheadBytes = 160

        var maximumBytes = 0
        private var ids: [String: Int32] = [:]
        private var shapeIDs: [UInt64: Int32] = [:]
        private var keyedIDs: [String: Int32] = [:]
        private(set) var texts: [String] = []
        private(set) var bytes = 0

        /// Whether a text of `count` bytes still fits, counting it when it does.
        private mutating func admit(_ count: Int) -> Bool {
            guard bytes + count + Self.overheadBytes <= maximumBytes else { return false }
            bytes += count + Self.overheadBytes
            return true
        }

        mutating func id(_ text: String?) -> Int32 {
            guard let text else { return -1 }
            if let id = ids[text] { return id }
            guard admit(2 * text.utf8.count) else { return Self.notKept }
            let id = Int32(texts.count)
            ids[text] = id
            texts.append(text)
            return id
        }

        /// An id for a shape given by a cheap key; the text is built only the first time.
        mutating func id(shape key: UInt64, text: () -> String) -> Int32 {
            if let id = shapeIDs[key] { return id }
            let text = text()
            guard admit(text.utf8.count) else { return Self.notKept }
            let id = Int32(texts.count)
            shapeIDs[key] = id
            texts.append(text)
            return id
        }

        /// An id for a thing named by `key` (a certificate fingerprint); its text is built
        /// only the first time.
        mutating func id(key: String?, text: (String) -> String) -> Int32 {
            guard let key else { return -1 }
            if let id = keyedIDs[key] { return id }
            let text = text(key)
            guard admit(key.utf8.count + text.utf8.count) else { return Self.notKept }
            let id = Int32(texts.count)
            keyedIDs[key] = id
            texts.append(text)
            return id
        }

        func text(_ id: Int32) -> String {
            id >= 0 ? texts[Int(id)] : id == Self.notKept ? "(not kept: memory limit)" : "-"
        }
    }

    private var connections: [ServiceKey: [Connection]] = [:]
    private var interned = Interned()
    private var kept = 0
    private var omitted: [ServiceKey: Int] = [:]
    /// Connections to services first seen after the connection cap was reached: not judged.
    public private(set) var connectionsNotJudged = 0
    private var parent: [ServiceKey: ServiceKey] = [:]
    private var serviceOfName: [NameOnPort: ServiceKey] = [:]

    /// A server name (lowercased) on a port, as a keyed hash (Swift's `Hasher`): the table
    /// holds no name, and a peer cannot make two names collide.
    private struct NameOnPort: Hashable {
        var name: Int
        var port: UInt16
    }

    public init(maximumBytes: Int = MemoryBudget().stickiness) {
        self.maximumBytes = maximumBytes
        interned.maximumBytes = maximumBytes / 4
    }

    /// What the analysis holds now, as it counts against `maximumBytes`.
    private var heldBytes: Int {
        kept * Self.connectionBytes + interned.bytes + (parent.count + serviceOfName.count + omitted.count)
            * Self.entryBytes
    }

    public mutating func add(_ record: HandshakeRecord) {
        guard record.backsideOf == nil else { return }
        let service = ServiceKey(server: record.server, port: record.serverPort)
        let full = heldBytes >= maximumBytes
        // Looked up once; then changed in place through its index.
        let index: Dictionary<ServiceKey, [Connection]>.Index
        if let known = connections.index(forKey: service) {
            index = known
        } else {
            // Services first seen past the bound are counted only, so memory stays bounded.
            guard !full else {
                connectionsNotJudged += 1
                return
            }
            connections[service] = []
            parent[service] = service
            index = connections.index(forKey: service)!
        }
        // One name on one port served from several addresses is one service.
        if let sni = record.keptServerName {
            let name = NameOnPort(
                name: (sni.utf8.contains { (0x41...0x5a).contains($0) || $0 >= 0x80 } ? sni.lowercased() : sni)
                    .hashValue,
                port: record.serverPort
            )
            if let other = serviceOfName[name] { union(service, other) } else if !full { serviceOfName[name] = service }
        }
        let held = connections.values[index].count
        if held >= StickinessAnalysis.maximumConnectionsPerService || (full && held >= 16) {
            // Full: the service's oldest quarter gives way.
            let dropped = held / 4
            connections.values[index].removeFirst(dropped)
            omitted[service, default: 0] += dropped
            kept -= dropped
        } else if full {
            connectionsNotJudged += 1
            return
        }
        kept += 1
        let traits = record.serverTraits
        var tcpKey = Hasher()
        tcpKey.combine(traits?.ttl)
        tcpKey.combine(traits?.synAckWindow)
        tcpKey.combine(traits?.synAckOptions)
        let tcpShape = interned.id(shape: UInt64(bitPattern: Int64(tcpKey.finalize())) & ~1) {
            [
                traits.map { "ttl \($0.ttl)" } ?? "-", traits?.synAckWindow.map { "window \($0)" } ?? "-",
                traits?.synAckOptions.map { "options \($0)" } ?? "-",
            ].joined(separator: ", ")
        }
        var helloKey = Hasher()
        // The closures below capture these values, not the record (which they would copy).
        let cipher = record.cipher
        let serverExtensions = record.serverExtensions
        let commonName = record.certificate?.commonName
        helloKey.combine(cipher?.rawValue)
        helloKey.combine(serverExtensions)
        let helloShape = interned.id(shape: UInt64(bitPattern: Int64(helloKey.finalize())) | 1) {
            "cipher \(cipher.map { String($0.rawValue) } ?? "-"), extensions "
                + serverExtensions.map(String.init).joined(separator: ".")
        }
        connections.values[index].append(
            Connection(
                uid: record.uid,
                timestampNanos: record.timestampNanos,
                client: record.client,
                service: service,
                legBackend: interned.id(record.backend),
                // The fingerprint tells backends apart; the subject's CN says which server it is.
                certificate: interned.id(key: record.certificateFingerprints.first) { fingerprint in
                    "certificate " + fingerprint.prefix(12) + (commonName.map { " (CN=\($0))" } ?? "")
                },
                tcpShape: tcpShape,
                helloShape: helloShape,
                issuedKeyName: interned.id(record.issuedTicketKeyName),
                offeredKeyName: interned.id(record.offeredTicketKeyName ?? record.pskIdentities.first?.keyName),
                isTLS13: record.version?.isTLS13Family ?? false,
                offer: record.offer,
                resumed: record.resumed,
                sessionAge: record.sessionAge,
                resumes: record.resumes,
                pskFirstOfferedBy: record.pskFirstOfferedBy
            )
        )
    }

    private mutating func root(_ key: ServiceKey) -> ServiceKey {
        var current = key
        while let next = parent[current], next != current { current = next }
        parent[key] = current
        return current
    }

    private mutating func union(_ a: ServiceKey, _ b: ServiceKey) {
        let ra = root(a)
        let rb = root(b)
        if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
    }

    /// A verdict per service as of now (services judged together share one verdict).
    public mutating func verdicts() -> [ServiceKey: StickinessVerdict] {
        var groups: [ServiceKey: [ServiceKey]] = [:]
        for service in parent.keys { groups[root(service), default: []].append(service) }
        var verdicts: [ServiceKey: StickinessVerdict] = [:]
        for services in groups.values {
            let members = services.sorted()
            var all = members.count == 1 ? connections[members[0]] ?? [] : members.flatMap { connections[$0] ?? [] }
            if members.count > 1 { all.sort { $0.timestampNanos < $1.timestampNanos } }
            var verdict = judge(all, services: members)
            let skipped = members.reduce(0) { $0 + (omitted[$1] ?? 0) }
            if skipped > 0 {
                verdict.evidence.append(
                    "judged on the latest \(all.count) connections; \(skipped) earlier ones not kept"
                )
            }
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

    /// `all` is in time order. Backends are numbered: an interned id, or for the address
    /// scheme the index of the connection's service in `services`.
    private func judge(_ all: [Connection], services: [ServiceKey]) -> StickinessVerdict {
        var evidence: [String] = []
        let paired = all.filter { $0.legBackend >= 0 }
        let certificates = Set(all.map(\.certificate).filter { $0 >= 0 })
        let tcpShapes = Set(all.map(\.tcpShape))
        let helloShapes = Set(all.filter { $0.resumed == false }.map(\.helloShape))
        let scheme: Scheme
        if !paired.isEmpty {
            scheme = .legs
            let backends = Set(paired.map(\.legBackend)).map(interned.text).sorted()
            evidence.append(
                "both legs captured: \(paired.count) of \(all.count) connections paired with their back-side "
                    + "connection by ClientHello random; \(backends.count) backend\(backends.count == 1 ? "" : "s"): "
                    + "\(backends.joined(separator: ", "))"
            )
        } else if services.count > 1 {
            scheme = .addresses
            evidence.append(
                "\(services.count) server addresses serve the same name: "
                    + "\(services.map(\.description).joined(separator: ", "))"
            )
        } else if certificates.count > 1 {
            scheme = .certificates
            evidence.append(
                "\(certificates.count) different server certificates in full handshakes: "
                    + certificates.map { interned.text($0).replacingPrefix("certificate ") }.sorted()
                    .joined(separator: ", ")
            )
        } else if tcpShapes.count > 1 {
            scheme = .tcpShapes
            evidence.append(
                "\(tcpShapes.count) different server TCP traits: "
                    + "\(tcpShapes.map(interned.text).sorted().joined(separator: "; "))"
            )
        } else if helloShapes.count > 1 {
            scheme = .helloShapes
            evidence.append(
                "\(helloShapes.count) different ServerHello shapes in full handshakes: "
                    + "\(helloShapes.map(interned.text).sorted().joined(separator: "; "))"
            )
        } else {
            scheme = .single
            evidence.append(
                "one server address\(certificates.count == 1 ? ", one certificate" : ""), one ServerHello shape, one "
                    + "set of TCP traits: one backend visible"
            )
        }

        // Each connection's backend (by position in `all`), where the scheme tells it.
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
        if scheme == .certificates {
            // Abbreviated handshakes carry no certificate: TCP traits or an issued ticket key
            // name seen with exactly one certificate identify the backend.
            var certsOfShape: [Int32: Set<Int32>] = [:]
            var certsOfKey: [Int32: Set<Int32>] = [:]
            for (i, c) in all.enumerated() where backendOf[i] >= 0 {
                certsOfShape[c.tcpShape, default: []].insert(backendOf[i])
                if c.issuedKeyName >= 0 { certsOfKey[c.issuedKeyName, default: []].insert(backendOf[i]) }
            }
            for (i, c) in all.enumerated() where backendOf[i] < 0 {
                if c.issuedKeyName >= 0, let owners = certsOfKey[c.issuedKeyName], owners.count == 1 {
                    backendOf[i] = owners.first!
                } else if let owners = certsOfShape[c.tcpShape], owners.count == 1 {
                    backendOf[i] = owners.first!
                }
            }
        }
        let shapeIDs = Dictionary(
            uniqueKeysWithValues: (scheme == .tcpShapes ? tcpShapes : helloShapes).sorted {
                interned.text($0) < interned.text($1)
            }
            .enumerated().map { ($1, "host \($0 + 1)") }
        )
        func displayName(_ backend: Int32) -> String {
            switch scheme {
            case .addresses: services[Int(backend)].description
            case .tcpShapes, .helloShapes: shapeIDs[backend] ?? interned.text(backend)
            default: interned.text(backend)
            }
        }

        var counts: [Int32: Int] = [:]
        for b in backendOf where b >= 0 { counts[b, default: 0] += 1 }
        let backends = counts.map {
            BackendSummary(id: displayName($0.key), identifiedBy: scheme.label, connections: $0.value)
        }.sorted { $0.id < $1.id }

        // Ticket key names per backend: one name at several backends means shared keys.
        var backendsOfKey: [Int32: Set<Int32>] = [:]
        for (i, c) in all.enumerated() where backendOf[i] >= 0 {
            if c.issuedKeyName >= 0 { backendsOfKey[c.issuedKeyName, default: []].insert(backendOf[i]) }
            if c.resumed == true, c.offeredKeyName >= 0 {
                backendsOfKey[c.offeredKeyName, default: []].insert(backendOf[i])
            }
        }
        for (key, owners) in backendsOfKey.sorted(by: { interned.text($0.key) < interned.text($1.key) })
        where owners.count > 1 {
            evidence.append(
                "ticket key name \(interned.text(key).prefix(12)) used by \(owners.count) backends "
                    + "(\(owners.map(displayName).sorted().joined(separator: ", "))): shared ticket keys"
            )
        }
        let keyNames = Set(all.map(\.issuedKeyName) + all.map(\.offeredKeyName)).subtracting([-1])
        if backendsOfKey.values.allSatisfy({ $0.count == 1 }), backendsOfKey.count > 1 {
            evidence.append("\(backendsOfKey.count) ticket key names, each used by one backend")
        } else if keyNames.count > 1, backendsOfKey.isEmpty {
            evidence.append("\(keyNames.count) ticket key names in use")
        }

        // Where each offer's session came from.
        var position: [String: Int] = [:]
        position.reserveCapacity(all.count)
        for (i, c) in all.enumerated() { position[c.uid] = i }
        // TLS 1.3 tickets arrive encrypted: the probable issuer is the client's last full
        // handshake with this service before the identity's first offer.
        var fullTLS13ByClient: [IPAddress: [Int]] = [:]
        for (i, c) in all.enumerated() where c.isTLS13 && c.resumed == false && c.offer == nil {
            fullTLS13ByClient[c.client, default: []].append(i)
        }
        func issuerBackend(_ i: Int) -> Int32 {
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

        let offers = all.indices.filter { all[$0].offer != nil && all[$0].resumed != nil }
        var sameAccepted = 0
        var sameRefused = 0
        var otherAccepted = 0
        var otherRefused = 0
        var unknownAccepted = 0
        var unknownRefused: [Int] = []
        var places: [Mechanism: OfferPlaces] = [:]
        var atIssuerOffers: [(mechanism: Mechanism, backend: Int32, accepted: Bool)] = []
        for i in offers {
            let accepted = all[i].resumed == true
            let serving = backendOf[i]
            let issuer = serving >= 0 ? issuerBackend(i) : -1
            let place: WritableKeyPath<OfferPlaces, OfferCount>
            if serving >= 0, issuer >= 0 {
                switch (serving == issuer, accepted) {
                case (true, true): sameAccepted += 1
                case (true, false): sameRefused += 1
                case (false, true): otherAccepted += 1
                case (false, false): otherRefused += 1
                }
                place = serving == issuer ? \.atIssuer : \.elsewhere
            } else {
                if accepted { unknownAccepted += 1 } else { unknownRefused.append(i) }
                place = \.unplaced
            }
            if let mechanism = all[i].offer {
                places[mechanism, default: OfferPlaces()].add(place, accepted: accepted, age: all[i].sessionAge)
                if place == \.atIssuer { atIssuerOffers.append((mechanism, serving, accepted)) }
            }
        }
        // Outcome pattern: refused younger than an accepted offer of the same mechanism.
        var oldestAccepted: [Mechanism: Double] = [:]
        for i in offers where all[i].resumed == true {
            if let m = all[i].offer, let age = all[i].sessionAge {
                oldestAccepted[m] = max(oldestAccepted[m] ?? 0, age)
            }
        }
        let youngRefused = unknownRefused.filter { i in
            guard let m = all[i].offer, let age = all[i].sessionAge, let limit = oldestAccepted[m] else { return false }
            return age < limit
        }
        let known = sameAccepted + sameRefused + otherAccepted + otherRefused

        if known > 0 {
            if otherAccepted + otherRefused > 0 {
                evidence.append(
                    "\(otherAccepted + otherRefused) of \(known) offers landed on another backend than the one that "
                        + "issued the session: \(otherAccepted) accepted, \(otherRefused) refused"
                )
            }
            if sameAccepted + sameRefused > 0 {
                evidence.append(
                    "\(sameAccepted + sameRefused) offers returned to the issuing backend: \(sameAccepted) "
                        + "accepted\(sameRefused > 0 ? ", \(sameRefused) refused (expired or evicted)" : "")"
                )
            }
        }
        if !youngRefused.isEmpty {
            let maxAge = youngRefused.compactMap { all[$0].sessionAge }.max() ?? 0
            let limit = oldestAccepted.values.max() ?? 0
            evidence.append(
                "\(youngRefused.count) offers refused at ages up to \(formatAge(maxAge)) while offers up to "
                    + "\(formatAge(limit)) old were accepted: they reached a backend that does not hold the session"
            )
        }
        if unknownAccepted > 0 {
            evidence.append(
                "\(unknownAccepted) offers accepted in abbreviated handshakes, which do not show the backend"
            )
        }

        let landedElsewhere = otherRefused + youngRefused.count
        // Of all answered offers, those shown to have reached another backend (a lower bound
        // when some offers' backends are unknown).
        let offersElsewhere: Double? =
            offers.isEmpty || (known == 0 && youngRefused.isEmpty)
            ? nil
            : Double(otherAccepted + otherRefused + youngRefused.count) / Double(offers.count)

        // Only a capture that tells backends apart can show a single one; with nothing to
        // tell them apart, one backend and several sticky or sharing ones look alike.
        let backendsKnown = scheme != .single
        let verdict: StickinessVerdict.Verdict
        if offers.isEmpty {
            verdict = backendsKnown && backends.count == 1 ? .singleBackend : .unknown
            evidence.append("no resumption offers with an answer")
        } else if otherAccepted > 0 && landedElsewhere == 0 {
            verdict = .shared
        } else if landedElsewhere > 0 && otherAccepted == 0 {
            verdict = .notSticky
        } else if landedElsewhere > 0 && otherAccepted > 0 {
            verdict = landedElsewhere >= otherAccepted ? .notSticky : .shared
            evidence.append("mixed: some backends share sessions and some do not")
        } else if sameAccepted > 0 && backends.count > 1 {
            // Round robin with clients that take turns in step sends each back to its
            // issuer too: when the backends rotate connection by connection, the capture
            // cannot tell stickiness from rotation.
            if Self.rotates(backendOf) {
                verdict = .unknown
                evidence.append(
                    "every offer returned to its issuing backend, but the backends also took turns connection by "
                        + "connection, as round robin does: with these clients stickiness and rotation look alike; "
                        + "clients that do not take turns would tell"
                )
            } else {
                verdict = .sticky
            }
        } else if backendsKnown && backends.count == 1 {
            verdict = .singleBackend
        } else if unknownAccepted + sameAccepted > 0 {
            verdict = .stickyOrShared
            if !backendsKnown {
                evidence.append(
                    "nothing tells backends apart: one backend, or several that keep clients on the backend holding "
                        + "their session or share sessions, look alike"
                )
            }
        } else {
            verdict = .unknown
            if !backendsKnown {
                let youngest = places.values.compactMap(\.youngestRefusedAge).min()
                evidence.append(
                    "every offer refused"
                        + (youngest.map { ", the youngest \(formatAge($0)) after its session was issued" } ?? "")
                        + ", and nothing tells backends apart: no session cache, a cache too small or restarted, "
                        + "or several backends without stickiness"
                )
                evidence.append(
                    "to decide: capture the back side of the balancer too, or look for a certificate, ticket key "
                        + "name or server TCP trait that differs per backend"
                )
            }
        }
        var result = StickinessVerdict(
            verdict: verdict,
            backends: backends,
            offersElsewhere: offersElsewhere,
            offersElsewhereIsLowerBound: offersElsewhere != nil && known < offers.count,
            evidence: evidence,
            services: services
        )
        result.backendsKnown = backendsKnown
        for offer in atIssuerOffers {
            let name = displayName(offer.backend)
            places[offer.mechanism]?.atIssuerByBackend[name, default: OfferCount()].made += 1
            if offer.accepted { places[offer.mechanism]?.atIssuerByBackend[name, default: OfferCount()].accepted += 1 }
        }
        result.offerPlaces = places
        return result
    }
}

extension StickinessAnalysis {
    /// True when the known backends of consecutive connections cycle through all of them
    /// in a fixed order (s1, s2, s1, s2, ...) for at least two rounds.
    static func rotates(_ backendOf: [Int32]) -> Bool {
        let known = backendOf.filter { $0 >= 0 }
        let cycle = Set(known).count
        guard cycle > 1, known.count >= 2 * cycle, Set(known.prefix(cycle)).count == cycle else { return false }
        return known.indices.dropFirst(cycle).allSatisfy { known[$0] == known[$0 - cycle] }
    }
}

extension String {
    func replacingPrefix(_ prefix: String) -> String { hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self }
}
