import Capture
import Handshakes
import Linking
import Packets
import Resumption
import TLSWire

/// A backend as the capture shows it.
package struct BackendSummary: Sendable, Equatable {
    /// "127.0.0.1:14501", "certificate 3f2a9c01be77", "shape 2", ...
    package var id: String
    package var identifiedBy: BackendSignal
    package var connections: Int
}

/// One fact behind a stickiness verdict, as values.
package enum StickinessEvidence: Sendable, Equatable {
    /// Front connections paired with their back-side connection; the backends they reached.
    case legsPaired(paired: Int, of: Int, backends: [String])
    /// Several server addresses serve one name.
    case addresses([ServiceKey])
    /// Different server certificates in full handshakes (their short names).
    case certificates([String])
    case tcpTraits([String])
    case helloShapes([String])
    /// Nothing differs between connections.
    case oneBackendVisible(oneCertificate: Bool)
    /// One ticket key name (its first 12 hex digits) at several backends.
    case sharedTicketKey(keyName: String, backends: [String])
    case keyNamesOnePerBackend(Int)
    case keyNamesInUse(Int)
    /// Offers that reached another backend than the one that issued their session, of all
    /// offers whose place is known.
    case offersElsewhere(of: Int, accepted: Int, refused: Int)
    case offersAtIssuer(accepted: Int, refused: Int)
    /// Refusals younger than the oldest accepted offer (backend unknown).
    case youngRefusals(count: Int, upTo: Double, acceptedUpTo: Double)
    /// Accepted offers in abbreviated handshakes, whose backend does not show.
    case acceptedUnplaced(Int)
    case noAnsweredOffers
    case mixedSharing
    /// Every offer went back to its issuer, but the backends also took turns.
    case rotation
    /// Offers accepted, and nothing tells backends apart.
    case backendsIndistinguishable
    /// Every offer refused, and nothing tells backends apart.
    case everyOfferRefused(youngest: Double?)
    /// What would decide it.
    case howToDecide
    /// Connections kept for judging, and earlier ones dropped for memory.
    case judgedOnLatest(kept: Int, skipped: Int)
}

/// Whether resuming clients went back to the backend that holds their session.
package struct StickinessVerdict: Sendable {
    package enum Verdict: String, Sendable {
        case sticky
        case notSticky = "not-sticky"
        case shared
        case stickyOrShared = "sticky-or-shared"
        case singleBackend = "single-backend"
        case unknown
    }

    package var verdict: Verdict
    package var backends: [BackendSummary]
    /// Share of offers that landed on another backend than the one holding the session.
    package var offersElsewhere: Double?
    /// True when some offers' backends are unknown, so the share is a lower bound.
    package var offersElsewhereIsLowerBound = false
    /// The facts behind the verdict, each one a reader can check against the capture;
    /// Reports says them in words.
    package var evidence: [StickinessEvidence]
    /// The services judged together (several addresses serving one name are one service).
    package var services: [ServiceKey]
    /// Whether the capture tells backends apart (back-side connections, several addresses,
    /// certificates, TCP traits or ServerHello shapes), so offers have a known place.
    package var backendsKnown = false
    /// Answered offers per mechanism, by where they went.
    package var offerPlaces: [Mechanism: OfferPlaces] = [:]
}

/// Where a mechanism's answered offers went, as far as the capture shows.
package struct OfferPlaces: Sendable, Equatable {
    /// Offers that reached the backend that issued their session.
    package var atIssuer = OfferCount()
    /// Offers that reached another backend.
    package var elsewhere = OfferCount()
    /// Offers whose backend or issuer the capture does not show.
    package var unplaced = OfferCount()
    /// The youngest refused offer's session age, in seconds.
    package var youngestRefusedAge: Double?
    /// `atIssuer` per backend (its display name): each backend's own support.
    package var atIssuerByBackend: [String: OfferCount] = [:]
    package init() {}

    /// Where an offer went.
    enum Place {
        case atIssuer
        case elsewhere
        case unplaced
    }

    mutating func add(_ place: Place, accepted: Bool, age: Double?) {
        let count = accepted ? 1 : 0
        switch place {
        case .atIssuer:
            atIssuer.made += 1
            atIssuer.accepted += count
        case .elsewhere:
            elsewhere.made += 1
            elsewhere.accepted += count
        case .unplaced:
            unplaced.made += 1
            unplaced.accepted += count
        }
        if !accepted, let age { youngestRefusedAge = min(youngestRefusedAge ?? age, age) }
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
package struct StickinessAnalysis {
    /// Connections kept per service for the verdict: the most recent ones (the oldest
    /// quarter is dropped when full), so a long live run judges on recent traffic.
    package static let maximumConnectionsPerService = 20_000
    /// Bytes for kept connections, interned texts and the name index (the budget's part,
    /// `MemoryBudget.stickiness`). Past it a service drops its oldest quarter to keep a new
    /// connection, and connections to new services are counted only (`connectionsNotJudged`).
    package let maximumBytes: Int
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
        /// -1 without them (no SYN-ACK seen, UDP, a proxy tunnel): no host of its own.
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

        /// The last text looked up, and its id: ticket key names repeat from one connection
        /// to the next, and a comparison costs less than hashing.
        private var lastText: (text: String, id: Int32)?
        private var lastKey: (key: String, id: Int32)?

        /// The last key name given as bytes, and its id: its hex text is made only when it
        /// differs from the last one.
        private var lastBytes: (bytes: ShortBytes, id: Int32)?

        /// The id of a key name kept as bytes: the id of its hex text.
        mutating func id(_ bytes: ShortBytes?) -> Int32 {
            guard let bytes else { return -1 }
            if let last = lastBytes, last.bytes == bytes { return last.id }
            let id = id(bytes.hex)
            lastBytes = (bytes, id)
            return id
        }

        mutating func id(_ text: String?) -> Int32 {
            guard let text else { return -1 }
            if let last = lastText, last.text == text { return last.id }
            if let id = ids[text] {
                lastText = (text, id)
                return id
            }
            guard admit(2 * text.utf8.count) else { return Self.notKept }
            let id = Int32(texts.count)
            ids[text] = id
            texts.append(text)
            lastText = (text, id)
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
            if let last = lastKey, last.key == key { return last.id }
            if let id = keyedIDs[key] {
                lastKey = (key, id)
                return id
            }
            let text = text(key)
            guard admit(key.utf8.count + text.utf8.count) else { return Self.notKept }
            let id = Int32(texts.count)
            keyedIDs[key] = id
            texts.append(text)
            lastKey = (key, id)
            return id
        }

        func text(_ id: Int32) -> String {
            id >= 0 ? texts[Int(id)] : id == Self.notKept ? "(not kept: memory limit)" : "-"
        }
    }

    private var connections: [ServiceKey: [Connection]] = [:]
    /// The last record's service and its place in `connections`: consecutive records mostly
    /// go to one service. Valid while no service is added (values change in place).
    private var lastService: (service: ServiceKey, index: Dictionary<ServiceKey, [Connection]>.Index)?
    private var lastUnanswered: (service: ServiceKey, index: Dictionary<ServiceKey, Int>.Index)?
    /// The last shapes interned, by what made them: most connections repeat the previous
    /// one's, and then no hash is computed.
    private var lastTCPShape: (ttl: UInt8, window: UInt16?, options: String?, id: Int32)?
    private var lastHelloShape: (cipher: CipherSuite?, extensions: [UInt16], id: Int32)?
    /// The last server name joined, with its service, once the name is in `serviceOfName`.
    private var lastJoined: (name: String, service: ServiceKey)?
    var interned = Interned()
    private var kept = 0
    private var omitted: [ServiceKey: Int] = [:]
    /// Connections no server answered, per service: counted, not kept.
    private var unanswered: [ServiceKey: Int] = [:]
    /// Connections to services first seen after the connection cap was reached: not judged.
    package private(set) var connectionsNotJudged = 0
    private var parent: [ServiceKey: ServiceKey] = [:]
    private var serviceOfName: [NameOnPort: ServiceKey] = [:]

    /// A server name (lowercased) on a port, as a keyed hash (Swift's `Hasher`): the table
    /// holds no name, and a peer cannot make two names collide.
    private struct NameOnPort: Hashable {
        var name: Int
        var port: UInt16
    }

    /// The keyed hash of a server name's bytes with ASCII letters lowercased: DNS names
    /// compare case-insensitively in ASCII only (RFC 4343 2). Bytes, not a String's hash,
    /// which normalizes Unicode first: a kept name cut with "…" is not ASCII, and a crafted
    /// name must not cost more than a real one.
    static func nameHash(_ name: String) -> Int {
        var hasher = Hasher()
        var name = name
        name.withUTF8 { bytes in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes.count) { lowered in
                for index in 0..<bytes.count {
                    let byte = bytes[index]
                    lowered[index] = (0x41...0x5a).contains(byte) ? byte | 0x20 : byte
                }
                hasher.combine(bytes: UnsafeRawBufferPointer(lowered))
            }
        }
        return hasher.finalize()
    }

    package init(maximumBytes: Int = MemoryBudget().stickiness) {
        self.maximumBytes = maximumBytes
        interned.maximumBytes = maximumBytes / 4
    }

    /// What the analysis holds now, as it counts against `maximumBytes`.
    private var heldBytes: Int {
        kept * Self.connectionBytes + interned.bytes
            + (parent.count + serviceOfName.count + omitted.count + unanswered.count)
            * Self.entryBytes
    }

    package mutating func add(_ record: HandshakeRecord) {
        guard record.backsideOf == nil else { return }
        let service = ServiceKey(of: record)
        let full = heldBytes >= maximumBytes
        guard let index = index(of: service, full: full) else { return }
        joinByName(record, service, full: full)
        // A connection the server never answered, without its TCP traits, a back leg or an
        // offer, tells no backend apart and places no offer: its service and name are noted,
        // and it is counted, not kept (in a flood of unanswered hellos, none is).
        if record.serverSilent, record.offer == nil, record.backend == nil {
            countUnanswered(service, full: full)
            return
        }
        guard makeRoom(at: index, service, full: full) else { return }
        kept += 1
        // Through a tunnel the TCP traits are the proxy's, not the TLS server's.
        let tcpShape = tcpShape(record.tunnel == nil ? record.serverTraits : nil)
        let helloShape = helloShape(cipher: record.cipher, extensions: record.serverExtensions)
        // The closure below captures this value, not the record (which it would copy).
        let commonName = record.certificate?.commonName
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
                // TLS 1.2's ticket, or TLS 1.3's first (read with a key log).
                issuedKeyName: record.issuedTicketKeyName.map { interned.id($0) }
                    ?? interned.id(record.issuedTickets.first?.keyName),
                offeredKeyName: record.offeredTicketKeyName.map { interned.id($0) }
                    ?? interned.id(record.pskIdentities.first?.keyName),
                isTLS13: record.version?.isTLS13Family ?? false,
                offer: record.offer,
                resumed: record.resumed,
                sessionAge: record.sessionAge,
                resumes: record.resumes,
                pskFirstOfferedBy: record.pskFirstOfferedBy
            )
        )
    }

    private mutating func countUnanswered(_ service: ServiceKey, full: Bool) {
        if let last = lastUnanswered, last.service == service {
            unanswered.values[last.index] += 1
        } else if let known = unanswered.index(forKey: service) {
            unanswered.values[known] += 1
            lastUnanswered = (service, known)
        } else if !full {
            unanswered[service] = 1
            lastUnanswered = (service, unanswered.index(forKey: service)!)
        }
    }

    /// The service's place in `connections`, looked up once and then changed in place; nil
    /// for a service first seen past the bound, which is counted only.
    private mutating func index(of service: ServiceKey, full: Bool) -> Dictionary<ServiceKey, [Connection]>.Index? {
        if let last = lastService, last.service == service { return last.index }
        if let known = connections.index(forKey: service) {
            lastService = (service, known)
            return known
        }
        guard !full else {
            connectionsNotJudged += 1
            return nil
        }
        connections[service] = []
        parent[service] = service
        let index = connections.index(forKey: service)!
        lastService = (service, index)
        return index
    }

    /// One name on one port served from several addresses is one service.
    private mutating func joinByName(_ record: HandshakeRecord, _ service: ServiceKey, full: Bool) {
        guard let sni = record.keptServerName else { return }
        // The same name at the same service again: already joined.
        if let last = lastJoined, last.service == service, last.name.utf8.elementsEqual(sni.utf8) { return }
        let name = NameOnPort(name: Self.nameHash(sni), port: service.port)
        if let other = serviceOfName[name] {
            union(service, other)
        } else if !full {
            serviceOfName[name] = service
        } else {
            return
        }
        lastJoined = (sni, service)
    }

    /// Room for one more connection of the service: at its cap, or when memory is full, its
    /// oldest quarter gives way. False when memory is full and the service holds too few
    /// to give way (the connection is counted only).
    private mutating func makeRoom(
        at index: Dictionary<ServiceKey, [Connection]>.Index,
        _ service: ServiceKey,
        full: Bool
    )
        -> Bool
    {
        let held = connections.values[index].count
        if held >= StickinessAnalysis.maximumConnectionsPerService || (full && held >= 16) {
            let dropped = held / 4
            connections.values[index].removeFirst(dropped)
            omitted[service, default: 0] += dropped
            kept -= dropped
        } else if full {
            connectionsNotJudged += 1
            return false
        }
        return true
    }

    /// The server's TCP traits as an interned shape (even ids).
    private mutating func tcpShape(_ traits: ServerTraits?) -> Int32 {
        guard let traits else { return -1 }
        if let last = lastTCPShape, last.ttl == traits.ttl, last.window == traits.synAckWindow,
            last.options == traits.synAckOptions
        {
            return last.id
        }
        let id = newTCPShape(traits)
        lastTCPShape = (traits.ttl, traits.synAckWindow, traits.synAckOptions, id)
        return id
    }

    private mutating func newTCPShape(_ traits: ServerTraits) -> Int32 {
        var key = Hasher()
        key.combine(traits.ttl)
        key.combine(traits.synAckWindow)
        key.combine(traits.synAckOptions)
        return interned.id(shape: UInt64(bitPattern: Int64(key.finalize())) & ~1) {
            [
                "ttl \(traits.ttl)", traits.synAckWindow.map { "window \($0)" } ?? "-",
                traits.synAckOptions.map { "options \($0)" } ?? "-",
            ].joined(separator: ", ")
        }
    }

    /// The ServerHello's cipher and extension order as an interned shape (odd ids).
    private mutating func helloShape(cipher: CipherSuite?, extensions: [UInt16]) -> Int32 {
        if let last = lastHelloShape, last.cipher == cipher, last.extensions == extensions { return last.id }
        let id = newHelloShape(cipher: cipher, extensions: extensions)
        lastHelloShape = (cipher, extensions, id)
        return id
    }

    private mutating func newHelloShape(cipher: CipherSuite?, extensions: [UInt16]) -> Int32 {
        var key = Hasher()
        key.combine(cipher?.rawValue)
        key.combine(extensions)
        return interned.id(shape: UInt64(bitPattern: Int64(key.finalize())) | 1) {
            "cipher \(cipher.map { String($0.rawValue) } ?? "-"), extensions "
                + extensions.map(String.init).joined(separator: ".")
        }
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
    package mutating func verdicts() -> [ServiceKey: StickinessVerdict] {
        var groups: [ServiceKey: [ServiceKey]] = [:]
        for service in parent.keys { groups[root(service), default: []].append(service) }
        var verdicts: [ServiceKey: StickinessVerdict] = [:]
        for services in groups.values {
            let members = services.sorted()
            var all = members.count == 1 ? connections[members[0]] ?? [] : members.flatMap { connections[$0] ?? [] }
            if members.count > 1 { all.sort { $0.timestampNanos < $1.timestampNanos } }
            var verdict = judge(all, services: members, unanswered: members.map { unanswered[$0] ?? 0 })
            let skipped = members.reduce(0) { $0 + (omitted[$1] ?? 0) }
            if skipped > 0 {
                verdict.evidence.append(.judgedOnLatest(kept: all.count, skipped: skipped))
            }
            for service in members { verdicts[service] = verdict }
        }
        return verdicts
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
