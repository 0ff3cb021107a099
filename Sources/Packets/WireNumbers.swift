/// An EtherType (IEEE 802 numbers, IANA "ieee-802-numbers"): open, so any value read
/// survives; the ones the decoder follows are named.
struct EtherType: RawRepresentable, Hashable, Sendable {
    var rawValue: UInt16

    static let ipv4 = EtherType(rawValue: 0x0800)
    static let ipv6 = EtherType(rawValue: 0x86dd)
    /// 802.1Q VLAN tag.
    static let vlan = EtherType(rawValue: 0x8100)
    /// 802.1ad service tag (QinQ), and the older 0x9100 and 0x9200 that switches still send.
    static let serviceVLAN = EtherType(rawValue: 0x88a8)
    static let legacyServiceVLAN = EtherType(rawValue: 0x9100)
    static let legacyServiceVLAN2 = EtherType(rawValue: 0x9200)
    /// MPLS unicast and multicast (RFC 5332 3).
    static let mplsUnicast = EtherType(rawValue: 0x8847)
    static let mplsMulticast = EtherType(rawValue: 0x8848)
    /// PPPoE session stage (RFC 2516 4).
    static let pppoeSession = EtherType(rawValue: 0x8864)
    /// Transparent Ethernet bridging: an Ethernet frame inside GRE (RFC 1701).
    static let transparentEthernet = EtherType(rawValue: 0x6558)
    /// ERSPAN type II and type III inside GRE.
    static let erspanII = EtherType(rawValue: 0x88be)
    static let erspanIII = EtherType(rawValue: 0x22eb)

    /// A VLAN tag of any kind, which another EtherType follows.
    var isVLANTag: Bool {
        self == .vlan || self == .serviceVLAN || self == .legacyServiceVLAN || self == .legacyServiceVLAN2
    }

    /// Below 0x0600 the field is an 802.3 length, not a type (IEEE 802.3 3.2.6).
    var isLength: Bool { rawValue < 0x0600 }
}

/// An IP protocol number, IPv4's protocol and IPv6's next header (IANA "protocol-numbers"):
/// open, so any value read survives.
struct IPProtocol: RawRepresentable, Hashable, Sendable {
    var rawValue: UInt8

    static let ipInIP = IPProtocol(rawValue: 4)
    static let tcp = IPProtocol(rawValue: 6)
    static let udp = IPProtocol(rawValue: 17)
    static let ipv6InIP = IPProtocol(rawValue: 41)
    static let gre = IPProtocol(rawValue: 47)

    // IPv6 extension headers (RFC 8200 4; IANA "ipv6-parameters").
    static let hopByHopOptions = IPProtocol(rawValue: 0)
    static let routing = IPProtocol(rawValue: 43)
    static let fragment = IPProtocol(rawValue: 44)
    /// Authentication header (RFC 4302): its length counts 4-byte units.
    static let authentication = IPProtocol(rawValue: 51)
    static let destinationOptions = IPProtocol(rawValue: 60)
    /// Mobility (RFC 6275), HIP (RFC 7401) and Shim6 (RFC 5533).
    static let mobility = IPProtocol(rawValue: 135)
    static let hostIdentity = IPProtocol(rawValue: 139)
    static let shim6 = IPProtocol(rawValue: 140)

    /// An extension header in the generic form: next header, then length in 8-byte units
    /// not counting the first (RFC 8200 4.2).
    var isGenericExtensionHeader: Bool {
        self == .hopByHopOptions || self == .routing || self == .destinationOptions || self == .mobility
            || self == .hostIdentity || self == .shim6
    }
}

/// A PPP protocol field (RFC 1661 2, IANA "ppp-numbers"): open, so any value read survives.
struct PPPProtocol: RawRepresentable, Hashable, Sendable {
    var rawValue: UInt16

    static let ipv4 = PPPProtocol(rawValue: 0x0021)
    static let ipv6 = PPPProtocol(rawValue: 0x0057)
    /// MPLS unicast and multicast over PPP (RFC 3032 4.3).
    static let mplsUnicast = PPPProtocol(rawValue: 0x0281)
    static let mplsMulticast = PPPProtocol(rawValue: 0x0283)
}

/// What a link layer or a shim found where the network layer should start.
enum LinkOutcome {
    /// A network header of this type at this offset.
    case network(EtherType, at: Int)
    /// A header cut short.
    case truncated
    /// Tags, labels or tunnels nested past their limit.
    case tooDeep
    /// Something other than IP (ARP, an unknown address family or PPP protocol).
    case notIP
}

/// Why a packet is not passed on: each reason has its counter in `DecodeCounters`.
enum SkipReason {
    case truncatedHeader
    case malformedHeader
    case tooDeep
    case otherTransport
    case notIP
}

extension PacketDecoder {
    /// Counts why the packet is skipped.
    @inline(__always)
    mutating func skipped(_ reason: SkipReason) -> DecodedPacket {
        switch reason {
        case .truncatedHeader: counters.truncatedHeaders += 1
        case .malformedHeader: counters.malformedHeaders += 1
        case .tooDeep: counters.tooDeep += 1
        case .otherTransport: counters.otherTransport += 1
        case .notIP: counters.nonIPFrames += 1
        }
        return .skipped
    }
}
