import Capture
import Handshakes
import Packets
import TLSWire

/// The resumption mechanisms, as they appear in records and reports.
public enum Mechanism: String, CaseIterable, Sendable, Hashable {
    case sessionID = "session_id"
    case ticket
    case psk
}

/// Bounds on what the linker remembers.
public struct LinkerLimits: Sendable {
    /// Sessions issued longer ago than this are forgotten (`--session-horizon`).
    public var sessionHorizonSeconds: Double = 86_400
    /// Sessions, tickets and PSK identities remembered at once per kind; the oldest go first.
    /// About 100 bytes each.
    public var maximumSessions = 250_000

    public init() {}

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
}

/// The server names of remembered sessions, each kept once; sessions hold an index.
/// At most `maximumNames` distinct names: past that a session's name is not kept, and its
/// links are not checked for a changed name.
struct SessionNames {
    static let maximumNames = 65_536
    static let none: UInt32 = 0
    static let notKept: UInt32 = .max

    private var names: [String] = [""]
    private var indexes: [String: UInt32] = [:]

    mutating func index(_ name: String?) -> UInt32 {
        guard let name else { return Self.none }
        if let known = indexes[name] { return known }
        guard names.count <= Self.maximumNames else { return Self.notKept }
        let index = UInt32(names.count)
        names.append(name)
        indexes[name] = index
        return index
    }

    /// The name for `index`: nil for none, and for a name not kept.
    func name(_ index: UInt32) -> String? { index == Self.none || index == Self.notKept ? nil : names[Int(index)] }
}

/// A session ID, ticket digest or identity digest as a fixed 128-bit key (two FNV-1a
/// variants of its text), so the tables hold no string per entry.
struct SessionKey: Hashable {
    var high: UInt64
    var low: UInt64

    init(_ text: String) {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325, b: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in text.utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            b = (b &* 0x0000_0100_0000_01b3) ^ UInt64(byte)
        }
        high = a
        low = b
    }
}

/// Insertion-ordered table with a horizon and a size cap: records arrive in time order, so
/// the oldest entry is always at the front.
struct ExpiringTable {
    private var entries: [SessionKey: KnownSession] = [:]
    private var order: [(key: SessionKey, seen: Int64)] = []
    private var head = 0

    var count: Int { entries.count }

    subscript(key: String) -> KnownSession? { entries[SessionKey(key)] }

    mutating func insert(_ text: String, _ session: KnownSession, limits: LinkerLimits) {
        let key = SessionKey(text)
        if entries.updateValue(session, forKey: key) == nil { order.append((key, session.seenNanos)) }
        let horizon = session.seenNanos - limits.sessionHorizonNanos
        while head < order.count, order[head].seen < horizon || entries.count > limits.maximumSessions {
            let oldest = order[head]
            if let stored = entries[oldest.key], stored.seenNanos == oldest.seen { entries[oldest.key] = nil }
            head += 1
        }
        if head > 4096, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}

/// A link the linker found, for anomaly detection.
public struct SessionLink: Sendable {
    public var mechanism: Mechanism
    /// The connection that issued the session (TLS 1.2) or first offered the identity (TLS 1.3).
    public var issuerUID: String
    public var issuerClient: IPAddress
    /// The issuing connection's server name; the offering one's own when the linker no
    /// longer keeps names (`SessionNames.maximumNames`), so no change is claimed.
    public var issuerSNI: String?
    public var key: String
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
///   other; `session_age` counts from the identity's first appearance.
/// - An external PSK is not a session offer.
public struct SessionLinker {
    public let limits: LinkerLimits
    private var sessionIDs = ExpiringTable()
    private var tickets = ExpiringTable()
    private var identities = ExpiringTable()
    private var names = SessionNames()

    public init(limits: LinkerLimits = LinkerLimits()) { self.limits = limits }

    public var rememberedSessions: Int { sessionIDs.count + tickets.count + identities.count }

    /// Fills `offer`, `resumes`, `pskFirstOfferedBy` and `sessionAge`, remembers what the
    /// connection issued, and returns the link when the offer matched a known session.
    @discardableResult
    public mutating func link(_ record: inout HandshakeRecord) -> SessionLink? {
        let link = linkOffer(&record)
        rememberIssued(record, continuing: link)
        return link
    }

    private mutating func linkOffer(_ record: inout HandshakeRecord) -> SessionLink? {
        record.offer = nil
        record.resumes = nil
        record.pskFirstOfferedBy = nil
        record.sessionAge = nil
        let now = record.timestampNanos
        func age(_ session: KnownSession) -> Double { Double(now - session.originNanos) / 1e9 }

        if record.offeredPSK, record.pskKind != "external", !record.pskIdentities.isEmpty {
            record.offer = Mechanism.psk.rawValue
            let identity = record.pskIdentities[min(record.pskSelected ?? 0, record.pskIdentities.count - 1)]
            if let first = identities[identity.digest] {
                record.pskFirstOfferedBy = first.uid
                record.sessionAge = age(first)
                return SessionLink(mechanism: .psk, issuerUID: first.uid, issuerClient: first.client, issuerSNI: issuerName(first, record),
                                   key: identity.digest)
            }
            identities.insert(identity.digest, KnownSession(uid: record.uid, seenNanos: now, originNanos: now, client: record.client, name: names.index(record.keptServerName)), limits: limits)
            return nil
        }
        if let digest = record.offeredTicketDigest {
            record.offer = Mechanism.ticket.rawValue
            if let issued = tickets[digest] {
                record.resumes = issued.uid
                record.sessionAge = age(issued)
                return SessionLink(mechanism: .ticket, issuerUID: issued.uid, issuerClient: issued.client, issuerSNI: issuerName(issued, record),
                                   key: digest)
            }
            return nil
        }
        guard !record.clientSessionID.isEmpty else { return nil }
        if let issued = sessionIDs[record.clientSessionID] {
            record.offer = Mechanism.sessionID.rawValue
            record.resumes = issued.uid
            record.sessionAge = age(issued)
            return SessionLink(mechanism: .sessionID, issuerUID: issued.uid, issuerClient: issued.client, issuerSNI: issuerName(issued, record),
                                   key: record.clientSessionID)
        }
        // An unknown session ID from a client that offers TLS 1.3 is middlebox compatibility
        // mode (RFC 8446 D.4) unless the server echoed it in a TLS 1.2 resumption.
        let offersTLS13 = record.versionsOffered.contains { $0.isTLS13Family }
        if !offersTLS13 || record.resumption == Mechanism.sessionID.rawValue {
            record.offer = Mechanism.sessionID.rawValue
        }
        return nil
    }

    private func issuerName(_ session: KnownSession, _ record: HandshakeRecord) -> String? {
        session.name == SessionNames.notKept ? record.keptServerName : names.name(session.name)
    }

    private mutating func rememberIssued(_ record: HandshakeRecord, continuing link: SessionLink?) {
        guard let version = record.version, !version.isTLS13Family else { return }
        let now = record.timestampNanos
        // A resumed connection continues the session it resumed: its origin stays.
        var origin = now
        if record.resumed == true, let link {
            let table = link.mechanism == .ticket ? tickets : sessionIDs
            origin = table[link.key]?.originNanos ?? now
        }
        let issued = KnownSession(uid: record.uid, seenNanos: now, originNanos: origin, client: record.client, name: names.index(record.keptServerName))
        if record.resumed == false, let id = record.serverSessionID, !id.isEmpty {
            sessionIDs.insert(id, issued, limits: limits)
        }
        if let digest = record.issuedTicketDigest {
            tickets.insert(digest, issued, limits: limits)
        }
    }
}
