/// EtherType values the decoder follows (IEEE 802 numbers, IANA "ieee-802-numbers"). The
/// link layers hand these on as `Int`, with -1 for a header cut short and -2 for nesting
/// past a limit.
enum EtherType {
    static let ipv4 = 0x0800
    static let ipv6 = 0x86dd
    /// 802.1Q VLAN tag.
    static let vlan = 0x8100
    /// 802.1ad service tag (QinQ), and the older 0x9100 and 0x9200 that switches still send.
    static let serviceVLAN = 0x88a8
    static let legacyServiceVLAN = 0x9100
    static let legacyServiceVLAN2 = 0x9200
    /// MPLS unicast and multicast (RFC 5332 3).
    static let mplsUnicast = 0x8847
    static let mplsMulticast = 0x8848
    /// PPPoE session stage (RFC 2516 4).
    static let pppoeSession = 0x8864
    /// Transparent Ethernet bridging: an Ethernet frame inside GRE (RFC 1701).
    static let transparentEthernet = 0x6558
    /// ERSPAN type II and type III inside GRE.
    static let erspanII = 0x88be
    static let erspanIII = 0x22eb
}

/// IP protocol numbers the decoder follows (IANA "protocol-numbers").
enum IPProtocol {
    static let ipInIP: UInt8 = 4
    static let tcp: UInt8 = 6
    static let udp: UInt8 = 17
    static let ipv6InIP: UInt8 = 41
    static let gre: UInt8 = 47
}

/// PPP protocol field values (RFC 1661 2, IANA "ppp-numbers").
enum PPPProtocol {
    static let ipv4 = 0x0021
    static let ipv6 = 0x0057
    /// MPLS unicast and multicast over PPP (RFC 3032 4.3).
    static let mplsUnicast = 0x0281
    static let mplsMulticast = 0x0283
}
