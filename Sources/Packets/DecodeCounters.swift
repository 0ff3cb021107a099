/// What the decoder saw but could not use, reported at the end of a run.
public struct DecodeCounters: Sendable, Equatable {
    public var packets = 0
    public var tcpSegments = 0
    public var udpDatagrams = 0
    /// Frames that carry no IP (ARP, LLDP, STP, ...).
    public var nonIPFrames = 0
    /// IP packets of another transport (ICMP, ESP, ...).
    public var otherTransport = 0
    /// Packets on link types the decoder does not know, by link type.
    public var unsupportedLinkTypes: [UInt32: Int] = [:]
    /// Headers cut short by the snaplen or the end of the packet.
    public var truncatedHeaders = 0
    /// Headers whose fields contradict each other (bad lengths, versions).
    public var malformedHeaders = 0
    public var ipFragments = 0
    public var reassembledDatagrams = 0
    /// Fragments dropped: table full, too many fragments, or expired unfinished.
    public var droppedFragments = 0
    /// Encapsulations deeper than the decoder follows.
    public var tooDeep = 0
    /// Packets taken out of tunnels, by kind of tunnel.
    public var tunnels = TunnelCounters()

    public init() {}

    public var unsupportedLinkTypePackets: Int { unsupportedLinkTypes.values.reduce(0, +) }

    public mutating func add(_ other: DecodeCounters) {
        packets += other.packets
        tcpSegments += other.tcpSegments
        udpDatagrams += other.udpDatagrams
        nonIPFrames += other.nonIPFrames
        otherTransport += other.otherTransport
        unsupportedLinkTypes.merge(other.unsupportedLinkTypes, uniquingKeysWith: +)
        truncatedHeaders += other.truncatedHeaders
        malformedHeaders += other.malformedHeaders
        ipFragments += other.ipFragments
        reassembledDatagrams += other.reassembledDatagrams
        droppedFragments += other.droppedFragments
        tooDeep += other.tooDeep
        tunnels.add(other.tunnels)
    }
}

/// Packets unwrapped per kind of tunnel; a packet inside two tunnels counts in both.
public struct TunnelCounters: Sendable, Equatable {
    public var gre = 0
    public var erspan = 0
    public var vxlan = 0
    public var geneve = 0
    public var mpls = 0
    public var pppoe = 0
    public var ipInIP = 0

    public init() {}

    /// Nonzero counts with the names used in reports.
    public var named: [(name: String, count: Int)] {
        [
            ("gre", gre), ("erspan", erspan), ("vxlan", vxlan), ("geneve", geneve), ("mpls", mpls), ("pppoe", pppoe),
            ("ip_in_ip", ipInIP),
        ]
        .filter { $0.1 > 0 }.map { (name: $0.0, count: $0.1) }
    }

    mutating func add(_ other: TunnelCounters) {
        gre += other.gre
        erspan += other.erspan
        vxlan += other.vxlan
        geneve += other.geneve
        mpls += other.mpls
        pppoe += other.pppoe
        ipInIP += other.ipInIP
    }
}
