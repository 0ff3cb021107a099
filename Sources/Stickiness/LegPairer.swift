import Handshakes

/// Pairs each client-side connection with the back-side connection a TCP-mode balancer
/// opened for it. Such a balancer forwards the ClientHello unchanged, so both carry the
/// same ClientHello random (32 bytes chosen by the client, RFC 8446 4.1.2): the back-side
/// connection's server is the backend that served the client.
///
/// Records arrive in ClientHello order, so a front always comes before its back leg. Each
/// record is held for `windowNanos` (a balancer forwards the ClientHello within its connect
/// timeout) and released in order. A back leg is marked `backsideOf`, its front gains
/// `backend` and `backendLeg`; the analysis leaves back legs out of services and links.
public struct LegPairer {
    /// How long after a front's ClientHello its back leg may appear.
    public static let defaultWindowNanos: Int64 = 5_000_000_000

    public let windowNanos: Int64
    /// Records waiting out their window; slots are emptied (moved out) on release.
    private var held: [HandshakeRecord?] = []
    private var head = 0
    /// Index in `held` of the newest record with each client random.
    private var byRandom: [String: Int] = [:]
    public private(set) var pairedLegs = 0

    public init(windowNanos: Int64 = LegPairer.defaultWindowNanos) { self.windowNanos = windowNanos }

    /// Takes the next record; `release` receives those whose window has passed, in order.
    public mutating func add(_ record: consuming HandshakeRecord, release: (consuming HandshakeRecord) -> Void) {
        let distinctive = LegPairer.isDistinctive(record.clientRandom)
        if distinctive, let index = byRandom[record.clientRandom], index >= head,
           record.timestampNanos - held[index]!.timestampNanos <= windowNanos,
           held[index]!.server != record.server || held[index]!.serverPort != record.serverPort {
            held[index]!.backend = endpoint(record)
            held[index]!.backendLeg = record.uid
            record.backsideOf = held[index]!.uid
            pairedLegs += 1
        }
        let time = record.timestampNanos
        if distinctive { byRandom[record.clientRandom] = held.count }
        held.append(record)
        self.release(olderThan: time - windowNanos, to: release)
    }

    /// Releases everything still held (end of input).
    public mutating func finish(release: (consuming HandshakeRecord) -> Void) { self.release(olderThan: .max, to: release) }

    /// Releases records whose window has passed by `timestampNanos` (live capture, where
    /// time passes without records).
    public mutating func release(at timestampNanos: Int64, to release: (consuming HandshakeRecord) -> Void) {
        self.release(olderThan: timestampNanos - windowNanos, to: release)
    }

    private mutating func release(olderThan limit: Int64, to release: (consuming HandshakeRecord) -> Void) {
        while head < held.count, held[head]!.timestampNanos < limit {
            let record = held[head].take()!
            if byRandom[record.clientRandom] == head { byRandom[record.clientRandom] = nil }
            head += 1
            release(record)
        }
        if head > 1024, head * 2 > held.count {
            held.removeFirst(head)
            byRandom = byRandom.mapValues { $0 - head }
            head = 0
        }
    }

    private func endpoint(_ record: HandshakeRecord) -> String {
        let address = record.server.description
        return address.contains(":") ? "[\(address)]:\(record.serverPort)" : "\(address):\(record.serverPort)"
    }

    /// A random worth pairing on: present and not constant (some broken clients send zeros).
    static func isDistinctive(_ random: String) -> Bool {
        let utf8 = random.utf8
        guard utf8.count >= 32, let first = utf8.first else { return false }
        return utf8.contains { $0 != first }
    }
}
