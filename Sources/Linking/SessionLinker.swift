import Capture
import Handshakes
import Packets
import TLSWire

#if canImport(Glibc)
import Glibc
#endif

/// Bounds on what the linker remembers.
package struct LinkerLimits: Sendable {
    /// Sessions issued longer ago than this are forgotten (`--session-horizon`).
    package var sessionHorizonSeconds: Double = 86_400
    /// Sessions, tickets and PSK identities remembered at once, all kinds together; past it
    /// the oldest are forgotten before their horizon, and counted (`forgottenEarly`).
    package var maximumSessions: Int
    /// Bytes of server names kept for the sessions (`SessionNames`).
    package var maximumNameBytes: Int

    /// What one remembered session costs: its entry in a hash table with the table's slack
    /// (a 16-byte key, the session, load factor down to 3/8 after growth) and in the order.
    static let sessionBytes = 256

    /// Limits for the budget's part (`MemoryBudget.sessionLinking`): seven eighths for
    /// sessions, one for their names.
    package init(budget: MemoryBudget = MemoryBudget()) {
        maximumSessions = budget.sessionLinking / 8 * 7 / Self.sessionBytes
        maximumNameBytes = budget.sessionLinking / 8
    }

    /// The horizon in nanoseconds, at most `CaptureTime.maximumDurationSeconds` (record
    /// times lie in `CaptureTime`'s span, so subtracting it cannot overflow).
    var sessionHorizonNanos: Int64 {
        CaptureTime.durationNanos(seconds: min(max(sessionHorizonSeconds, 0), CaptureTime.maximumDurationSeconds)) ?? 0
    }
}

/// A session (ID or ticket) seen being issued, or a TLS 1.3 identity seen being offered.
struct KnownSession {
    var uid: String
    /// When the issuing connection's ClientHello was seen.
    var seenNanos: Int64
    /// When the session itself began: a ticket re-issued on resumption belongs to the
    /// session its resumed connection continued.
    var originNanos: Int64
    var client: IPAddress
    /// The server name, as an index into the linker's names (`SessionNames`).
    var name: UInt32
    /// A TLS 1.3 ticket read with a key log: its ticket_age_add and ticket_lifetime (RFC 8446 4.6.1).
    var ageAdd: UInt32?
    var lifetime: UInt32?
}

/// The server names of remembered sessions, each kept once; sessions hold an index.
/// At most `maximumNames` distinct names and `maximumBytes` of them: past either a
/// session's name is not kept, and its links are not checked for a changed name.
struct SessionNames {
    static let maximumNames = 65_536
    static let none: UInt32 = 0
    static let notKept: UInt32 = .max
    /// What a kept name costs beyond its bytes: its array slot, its table entry, two heap headers.
    static let nameOverheadBytes = 128

    let maximumBytes: Int
    private var names: [String] = [""]
    private var indexes: [NameKey: UInt32] = [:]

    /// A name keyed by its bytes: a String's own hash normalizes Unicode first, and a name
    /// cut with "…" (`HandshakeRecord.keptServerName`) is not ASCII.
    private struct NameKey: Hashable {
        var name: String
        static func == (a: NameKey, b: NameKey) -> Bool {
            var (first, second) = (a.name, b.name)
            return first.withUTF8 { one in
                second.withUTF8 { other in
                    one.count == other.count
                        && (one.isEmpty || memcmp(one.baseAddress!, other.baseAddress!, one.count) == 0)
                }
            }
        }
        func hash(into hasher: inout Hasher) {
            var name = name
            name.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        }
    }
    private var bytes = 0
    /// Names that did not fit.
    private(set) var notKeptCount = 0

    init(maximumBytes: Int) { self.maximumBytes = maximumBytes }

    /// The name asked for last and its index: connections to one service come in runs, and
    /// comparing the name costs less than hashing it.
    private var last: (name: NameKey, index: UInt32)?

    mutating func index(_ name: String?) -> UInt32 {
        guard let name else { return Self.none }
        let key = NameKey(name: name)
        if let last, last.name == key { return last.index }
        if let known = indexes[key] {
            last = (key, known)
            return known
        }
        let cost = name.utf8.count + Self.nameOverheadBytes
        guard names.count <= Self.maximumNames, bytes + cost <= maximumBytes else {
            notKeptCount += 1
            return Self.notKept
        }
        bytes += cost
        let index = UInt32(names.count)
        names.append(name)
        indexes[NameKey(name: name)] = index
        return index
    }

    /// The name for `index`: nil for none, and for a name not kept.
    func name(_ index: UInt32) -> String? { index == Self.none || index == Self.notKept ? nil : names[Int(index)] }
}

/// A session ID, ticket digest or identity digest as a fixed 128-bit key: two SipHash
/// values under independent keys drawn per process (`KeyedHash` for bytes, written out for
/// their five words; Swift's `Hasher` for other text), so the tables hold no string per
/// entry and a peer cannot craft two texts with one key to forge a link.
struct SessionKey: Hashable {
    var high: UInt64
    var low: UInt64

    /// The key of a session ID, ticket digest or key name kept as bytes.
    init(_ bytes: ShortBytes) {
        high = bytes.keyedHash(domain: 0, key: KeyedHash.key)
        low = bytes.keyedHash(domain: 0, key: SessionKey.secondKey)
    }

    /// The key of the second half: drawn apart from `KeyedHash.key`, so the halves are two
    /// independent keyed hashes.
    private static let secondKey: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()

    /// The key of a text: hex (how digests travel in TLS 1.3 records and renegotiations) is
    /// keyed as its bytes, so it meets the same value kept as bytes; other text apart.
    init(_ text: String) {
        if let bytes = ShortBytes(hex: text) {
            self.init(bytes)
            return
        }
        var text = text
        self = text.withUTF8 { SessionKey(bytes: UnsafeRawBufferPointer($0), domain: 2) }
    }

    private init(bytes: UnsafeRawBufferPointer, domain: UInt8) {
        var first = Hasher()
        var second = Hasher()
        first.combine(domain)
        second.combine(domain + 1)
        first.combine(bytes: bytes)
        second.combine(bytes: bytes)
        high = UInt64(UInt(bitPattern: first.finalize()))
        low = UInt64(UInt(bitPattern: second.finalize()))
    }

    /// The tables' bucket hash: `high` is already a keyed SipHash of the text, which a peer
    /// cannot predict, so hashing it again (as `hash(into:)` would) adds nothing.
    func _rawHashValue(seed: Int) -> Int { Int(truncatingIfNeeded: high ^ UInt64(UInt(bitPattern: seed))) }
}

/// Insertion-ordered table: records arrive in time order, so the oldest entry is always
/// at the front (entries re-inserted later leave stale places in the order, skipped).
struct ExpiringTable {
    private var entries: [SessionKey: KnownSession] = [:]
    private var order: [(key: SessionKey, seen: Int64)] = []
    private var head = 0

    var count: Int { entries.count }

    subscript(key: SessionKey) -> KnownSession? { entries[key] }

    mutating func insert(_ key: SessionKey, _ session: KnownSession) {
        entries[key] = session
        order.append((key, session.seenNanos))
        // Stale places outnumber the live ones: rebuilt, linear overall.
        if order.count - head > 2 * entries.count + 4096 {
            order = order[head...].filter { entries[$0.key]?.seenNanos == $0.seen }
            head = 0
        }
    }

    /// When the oldest remembered session was seen.
    mutating func oldestSeen() -> Int64? {
        while head < order.count {
            let oldest = order[head]
            if let stored = entries[oldest.key], stored.seenNanos == oldest.seen { return oldest.seen }
            head += 1  // re-inserted later: its newer place counts
        }
        compact()
        return nil
    }

    /// Forgets the oldest session.
    mutating func removeOldest() {
        guard oldestSeen() != nil else { return }
        entries[order[head].key] = nil
        head += 1
        compact()
    }

    /// Forgets sessions seen before `horizon`.
    mutating func expire(before horizon: Int64) {
        while let seen = oldestSeen(), seen < horizon { removeOldest() }
    }

    private mutating func compact() {
        if head > 4096, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}

/// Each client's last full TLS 1.3 handshake per service (ClientHello time): where the
/// tickets it later offers were probably issued. At most `maximumEntries`, oldest first out.
struct RecentFullHandshakes {
    static let maximumEntries = 65_536

    private struct Key: Hashable {
        var client: IPAddress
        var service: ServiceKey
    }

    private var latest: [Key: Int64] = [:]
    private var order: [(key: Key, time: Int64)] = []
    private var head = 0

    mutating func note(_ record: HandshakeRecord, horizon: Int64) {
        let key = Key(client: record.client, service: ServiceKey(of: record))
        latest[key] = record.timestampNanos
        order.append((key, record.timestampNanos))
        let oldest = record.timestampNanos - horizon
        while head < order.count, order[head].time < oldest || latest.count > Self.maximumEntries {
            let (key, time) = order[head]
            if latest[key] == time { latest[key] = nil }
            head += 1
        }
        if head > 4096, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
        // Stale places outnumber the live ones: rebuilt, linear overall.
        if order.count - head > 2 * latest.count + 4096 {
            order = order[head...].filter { latest[$0.key] == $0.time }
            head = 0
        }
    }

    /// The time of `record`'s client's last full handshake with its service before it,
    /// within `horizon`.
    func latest(_ record: HandshakeRecord, within horizon: Int64) -> Int64? {
        guard let time = latest[Key(client: record.client, service: ServiceKey(of: record))],
            time < record.timestampNanos, record.timestampNanos - time <= horizon
        else { return nil }
        return time
    }
}

/// A link the linker found, for anomaly detection.
package struct SessionLink: Sendable {
    package var mechanism: Mechanism
    /// The connection that issued the session (TLS 1.2) or first offered the identity (TLS 1.3).
    package var issuerUID: String
    package var issuerClient: IPAddress
    /// The issuing connection's server name; the offering one's own when the linker no
    /// longer keeps names (`SessionNames.maximumNames`), so no change is claimed.
    package var issuerSNI: String?
    /// The session ID, ticket digest or identity digest offered, in hex (made when asked:
    /// only TLS 1.3 identities are, for anomalies).
    package var key: String { keyText ?? keyBytes?.hex ?? "" }
    var keyText: String?
    var keyBytes: ShortBytes?
    /// The key as the linker's tables hold it, computed once.
    var tableKey: SessionKey
    /// A TLS 1.3 ticket read with a key log: the lifetime its server announced, in seconds.
    package var ticketLifetime: UInt32?
}

/// Links each ClientHello's offer to the session it offers. Feed records in ClientHello
/// order (the order `handshakes` emits them).
///
/// - TLS 1.2 and earlier: a full handshake issues a session ID (non-empty server session
///   ID) or a ticket (cleartext NewSessionTicket, RFC 5077 3.3). A later offer of either is
///   linked to the issuing connection. A ticket wins over the session ID sent with it:
///   OpenSSL clients send a session ID the server never issued alongside a ticket
///   (RFC 5077 3.4).
/// - TLS 1.3: tickets travel encrypted, so offers of one PSK identity are linked to each
///   other; `session_age` counts from the identity's first appearance. Where a key log
///   opened the issuing connection, its tickets are known and an offer of one is linked to
///   it exactly (the PSK identity is the ticket, RFC 8446 4.6.1), aged from its issue.
/// - An external PSK is not a session offer.
package struct SessionLinker {
    package let limits: LinkerLimits
    private var sessionIDs = ExpiringTable()
    private var tickets = ExpiringTable()
    private var identities = ExpiringTable()
    private var names: SessionNames
    private var fullHandshakes = RecentFullHandshakes()
    /// Sessions forgotten before their horizon, to keep within `limits.maximumSessions`: a
    /// later offer of one of them is not linked.
    package private(set) var forgottenEarly = 0

    package init(limits: LinkerLimits = LinkerLimits()) {
        self.limits = limits
        names = SessionNames(maximumBytes: limits.maximumNameBytes)
    }

    package var rememberedSessions: Int { sessionIDs.count + tickets.count + identities.count }
    /// Server names of sessions not kept (past `limits.maximumNameBytes`).
    package var namesNotKept: Int { names.notKeptCount }

    private enum Kind { case sessionID, ticket, identity }

    /// Remembers `session` under `text`; forgets sessions past the horizon, then the oldest
    /// of any kind while more than `maximumSessions` are remembered.
    private mutating func remember(_ kind: Kind, _ text: String, _ session: KnownSession) {
        remember(kind, SessionKey(text), session)
    }

    private mutating func remember(_ kind: Kind, _ bytes: ShortBytes, _ session: KnownSession) {
        remember(kind, SessionKey(bytes), session)
    }

    private mutating func remember(_ kind: Kind, _ key: SessionKey, _ session: KnownSession) {
        switch kind {
        case .sessionID: sessionIDs.insert(key, session)
        case .ticket: tickets.insert(key, session)
        case .identity: identities.insert(key, session)
        }
        let horizon = session.seenNanos - limits.sessionHorizonNanos
        sessionIDs.expire(before: horizon)
        tickets.expire(before: horizon)
        identities.expire(before: horizon)
        while rememberedSessions > max(limits.maximumSessions, 1) {
            let a = sessionIDs.oldestSeen() ?? .max
            let b = tickets.oldestSeen() ?? .max
            let c = identities.oldestSeen() ?? .max
            if a <= b, a <= c {
                sessionIDs.removeOldest()
            } else if b <= c {
                tickets.removeOldest()
            } else {
                identities.removeOldest()
            }
            forgottenEarly += 1
        }
    }

    /// Fills `offer`, `resumes`, `pskFirstOfferedBy` and `sessionAge`, remembers what the
    /// connection issued, and returns the link when the offer matched a known session.
    @discardableResult
    package mutating func link(_ record: inout HandshakeRecord) -> SessionLink? {
        let link = linkOffer(&record)
        rememberIssued(record, continuing: link)
        return link
    }

    /// The offer's link, by the strongest mechanism offered: a TLS 1.3 identity, then a
    /// ticket, then a session ID (a ticket wins over the session ID sent with it, RFC 5077 3.4).
    private mutating func linkOffer(_ record: inout HandshakeRecord) -> SessionLink? {
        record.offer = nil
        record.resumes = nil
        record.pskFirstOfferedBy = nil
        record.sessionAge = nil
        record.clientTicketAge = nil
        record.sessionAgeFrom = nil
        if record.offeredPSK, record.pskKind != .external, !record.pskIdentities.isEmpty {
            return linkIdentity(&record)
        }
        if let digest = record.offeredTicketDigest {
            record.offer = .ticket
            let key = SessionKey(digest)
            guard let issued = tickets[key] else { return nil }
            return link(&record, to: issued, by: .ticket, key: digest, tableKey: key)
        }
        guard !record.clientSessionID.isEmpty else { return nil }
        let key = SessionKey(record.clientSessionID)
        if let issued = sessionIDs[key] {
            record.offer = .sessionID
            return link(&record, to: issued, by: .sessionID, key: record.clientSessionID, tableKey: key)
        }
        // An unknown session ID from a client that offers TLS 1.3 is middlebox compatibility
        // mode (RFC 8446 D.4) unless the server echoed it in a TLS 1.2 resumption.
        let offersTLS13 = record.versionsOffered.contains { $0.isTLS13Family }
        if !offersTLS13 || record.resumption == .sessionID {
            record.offer = .sessionID
        }
        return nil
    }

    /// A session ID or ticket whose issue was seen: the record resumes it.
    private func link(
        _ record: inout HandshakeRecord,
        to issued: KnownSession,
        by mechanism: Mechanism,
        key: ShortBytes,
        tableKey: SessionKey
    ) -> SessionLink {
        record.resumes = issued.uid
        record.sessionAge = Double(record.timestampNanos - issued.originNanos) / 1e9
        record.sessionAgeFrom = .issue
        return SessionLink(
            mechanism: mechanism,
            issuerUID: issued.uid,
            issuerClient: issued.client,
            issuerSNI: issuerName(issued, record),
            keyBytes: key,
            tableKey: tableKey
        )
    }

    /// A TLS 1.3 identity: linked to its first offer, or remembered as one.
    private mutating func linkIdentity(_ record: inout HandshakeRecord) -> SessionLink? {
        record.offer = .psk
        let now = record.timestampNanos
        let identity = record.pskIdentities[min(record.pskSelected ?? 0, record.pskIdentities.count - 1)]
        let identityKey = SessionKey(identity.digest)
        let issued = tickets[identityKey].flatMap { $0.ageAdd == nil ? nil : $0 }
        defer {
            if let issued {
                record.resumes = issued.uid
                record.sessionAge = Double(now - issued.originNanos) / 1e9
                record.sessionAgeFrom = .issue
                // obfuscated_ticket_age = ticket age in ms + ticket_age_add, mod 2^32 (RFC 8446 4.2.11.1).
                record.clientTicketAge = Double(identity.obfuscatedTicketAge &- issued.ageAdd!) / 1e3
            }
        }
        if let first = identities[identityKey] {
            record.pskFirstOfferedBy = first.uid
            record.sessionAge = Double(now - first.originNanos) / 1e9
            record.sessionAgeFrom = first.originNanos < first.seenNanos ? .fullHandshake : .firstOffer
            let origin = issued ?? first
            return SessionLink(
                mechanism: .psk,
                issuerUID: origin.uid,
                issuerClient: origin.client,
                issuerSNI: issuerName(origin, record),
                keyText: identity.digest,
                tableKey: identityKey,
                ticketLifetime: issued?.lifetime
            )
        }
        // Tickets travel encrypted (RFC 8446 4.6.1): the identity is dated from the
        // client's last full handshake with this service, where tickets are issued.
        var origin = now
        if let full = fullHandshakes.latest(record, within: limits.sessionHorizonNanos) {
            origin = full
            record.sessionAge = Double(now - full) / 1e9
            record.sessionAgeFrom = .fullHandshake
        }
        remember(
            .identity,
            identityKey,
            KnownSession(
                uid: record.uid,
                seenNanos: now,
                originNanos: issued?.originNanos ?? origin,
                client: record.client,
                name: names.index(record.keptServerName)
            )
        )
        guard let issued else { return nil }
        return SessionLink(
            mechanism: .psk,
            issuerUID: issued.uid,
            issuerClient: issued.client,
            issuerSNI: issuerName(issued, record),
            keyText: identity.digest,
            tableKey: identityKey,
            ticketLifetime: issued.lifetime
        )
    }

    private func issuerName(_ session: KnownSession, _ record: HandshakeRecord) -> String? {
        session.name == SessionNames.notKept ? record.keptServerName : names.name(session.name)
    }

    private mutating func rememberIssued(_ record: HandshakeRecord, continuing link: SessionLink?) {
        guard let version = record.version else { return }
        if version.isTLS13Family {
            if record.resumed == false { fullHandshakes.note(record, horizon: limits.sessionHorizonNanos) }
            // Tickets read with a key log: a ticket issued on resumption continues the session.
            let origin = record.resumed == true ? (link.flatMap { tickets[$0.tableKey]?.originNanos }) : nil
            for ticket in record.issuedTickets {
                remember(
                    .ticket,
                    ticket.digest,
                    KnownSession(
                        uid: record.uid,
                        seenNanos: record.timestampNanos,
                        originNanos: origin ?? record.timestampNanos,
                        client: record.client,
                        name: names.index(record.keptServerName),
                        ageAdd: ticket.ageAdd,
                        lifetime: ticket.lifetime
                    )
                )
            }
            return
        }
        let now = record.timestampNanos
        // A resumed connection continues the session it resumed: its origin stays.
        var origin = now
        if record.resumed == true, let link {
            let table = link.mechanism == .ticket ? tickets : sessionIDs
            origin = table[link.tableKey]?.originNanos ?? now
        }
        let issued = KnownSession(
            uid: record.uid,
            seenNanos: now,
            originNanos: origin,
            client: record.client,
            name: names.index(record.keptServerName)
        )
        if record.resumed == false, let id = record.serverSessionID, !id.isEmpty {
            remember(.sessionID, id, issued)
        }
        if let digest = record.issuedTicketDigest {
            remember(.ticket, digest, issued)
        }
        // Sessions its renegotiations established, read with a key log (RFC 5246 7.4.1.1).
        for renegotiation in record.renegotiations where renegotiation.resumed == false {
            let established = KnownSession(
                uid: record.uid,
                seenNanos: renegotiation.timestampNanos,
                originNanos: renegotiation.timestampNanos,
                client: record.client,
                name: names.index(record.keptServerName)
            )
            if let id = renegotiation.serverSessionID, !id.isEmpty { remember(.sessionID, id, established) }
            if let digest = renegotiation.issuedTicketDigest { remember(.ticket, digest, established) }
        }
    }
}
