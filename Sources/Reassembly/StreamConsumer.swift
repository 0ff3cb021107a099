import Packets

/// Which way bytes travel in a flow. `originator` is the side that sent the SYN, or the
/// first packet seen when the capture started mid-connection.
public enum FlowDirection: Int, Sendable {
    case fromOriginator = 0
    case fromResponder = 1

    public var reversed: FlowDirection { self == .fromOriginator ? .fromResponder : .fromOriginator }
}

/// One end of a TCP connection.
public struct Endpoint: Hashable, Sendable {
    public var address: IPAddress
    public var port: UInt16
    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }
}

/// What a consumer is told when its flow begins.
public struct FlowStart: Sendable {
    public var originator: Endpoint
    public var responder: Endpoint
    public var timestampNanos: Int64
    /// The originator's SYN was seen, so the stream starts at its beginning.
    public var sawSYN: Bool

    public init(originator: Endpoint, responder: Endpoint, timestampNanos: Int64, sawSYN: Bool) {
        self.originator = originator
        self.responder = responder
        self.timestampNanos = timestampNanos
        self.sawSYN = sawSYN
    }
}

/// Which directions a consumer still needs bytes from. Empty means it has decided: the
/// table finishes it at once and keeps only a tombstone for the rest of the connection.
public struct StreamInterest: OptionSet, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fromOriginator = StreamInterest(rawValue: 1)
    public static let fromResponder = StreamInterest(rawValue: 2)
    public static let both: StreamInterest = [.fromOriginator, .fromResponder]

    @inline(__always)
    public func contains(_ direction: FlowDirection) -> Bool { rawValue & (1 << direction.rawValue) != 0 }
}

/// Why a flow ended.
public enum FlowEndReason: String, Sendable {
    /// The consumer needed nothing more.
    case decided
    /// FIN from both sides, or RST.
    case closed
    /// No packet for the idle timeout.
    case idle
    /// The flow table was full and this was the least recently active flow.
    case evicted
    /// A new SYN reused the 4-tuple.
    case replaced
    case endOfInput = "end-of-input"
}

/// The per-connection state machine that the flow table feeds (the Handshakes stage).
/// The table owns one value per flow and calls it in capture order.
public protocol StreamConsumer {
    /// Where finished results go; passed through so consumers stay plain values.
    associatedtype Sink

    init(start: FlowStart)

    /// In-order stream bytes from one direction. `bytes` is valid only during the call.
    mutating func receive(
        _ bytes: UnsafeRawBufferPointer,
        from direction: FlowDirection,
        at timestampNanos: Int64,
        sink: inout Sink
    ) -> StreamInterest

    /// `count` stream bytes from `direction` are missing (capture loss or a snaplen cut).
    mutating func skip(_ count: Int, from direction: FlowDirection, sink: inout Sink) -> StreamInterest

    /// Every segment while the consumer is still interested, before its payload is delivered:
    /// TCP/IP traits (TTL, window, options) are read here.
    mutating func observe(_ segment: TCPSegment, from direction: FlowDirection)

    /// A segment from `direction` lay outside the sequence window and was ignored
    /// (`ReassemblyLimits.maximumSequenceLead`).
    mutating func ignoredOutOfWindow(from direction: FlowDirection)

    /// Called exactly once per flow.
    mutating func finish(_ reason: FlowEndReason, at timestampNanos: Int64, sink: inout Sink)

    /// Bytes of memory the consumer holds beyond its own value (buffers, a session object),
    /// for the table's memory budget (`ReassemblyLimits.maximumHeldBytes`).
    var heldBytes: Int { get }
}

extension StreamConsumer {
    public var heldBytes: Int { 0 }
    public mutating func ignoredOutOfWindow(from direction: FlowDirection) {}
}
