private import CPcap

/// A BPF filter expression compiled by libpcap, applied to packets from files.
/// Programs are compiled per link type, since a pcapng file may mix them. An expression
/// that does not apply to a link type (for example `ether host` on raw IP) rejects those
/// packets, and the link type is reported in `inapplicable`.
package final class PacketFilter {
    package let expression: String
    private var programs: [UInt32: UnsafeMutablePointer<bpf_program>] = [:]
    /// Link types the expression could not be compiled for, with libpcap's reason.
    package private(set) var inapplicable: [UInt32: String] = [:]
    private var cachedLinkType: UInt32 = .max
    private var cachedProgram: UnsafeMutablePointer<bpf_program>?

    /// Throws `.badFilter` with libpcap's message when the expression compiles for neither
    /// Ethernet nor raw IP.
    package init(expression: String) throws(CaptureError) {
        self.expression = expression
        let ethernet = compile(for: LinkType.ethernet.rawValue)
        let raw = compile(for: LinkType.raw.rawValue)
        if ethernet == nil, raw == nil {
            let reason = inapplicable[LinkType.ethernet.rawValue] ?? "cannot compile"
            throw CaptureError.make(.badFilter, "bad --bpf expression '\(expression)': \(reason)")
        }
    }

    deinit {
        for program in programs.values {
            pcap_freecode(program)
            program.deallocate()
        }
    }

    private func compile(for linkType: UInt32) -> UnsafeMutablePointer<bpf_program>? {
        if let program = programs[linkType] { return program }
        if inapplicable[linkType] != nil { return nil }
        guard let dead = pcap_open_dead(Int32(bitPattern: linkType), Int32(CaptureFileReader.maximumCapturedLength))
        else {
            inapplicable[linkType] = "libpcap cannot open a handle for this link type"
            return nil
        }
        defer { pcap_close(dead) }
        let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        program.initialize(to: bpf_program())
        if pcap_compile(dead, program, expression, 1, 0xffff_ffff) != 0 {
            inapplicable[linkType] = String(cString: pcap_geterr(dead))
            program.deallocate()
            return nil
        }
        programs[linkType] = program
        return program
    }

    /// True when the packet passes the filter.
    @inline(__always)
    package func matches(_ packet: CapturedPacket) -> Bool {
        if packet.linkType.rawValue != cachedLinkType {
            cachedLinkType = packet.linkType.rawValue
            cachedProgram = compile(for: cachedLinkType)
        }
        guard let program = cachedProgram, let data = packet.bytes.baseAddress else { return false }
        var header = pcap_pkthdr()
        header.caplen = UInt32(packet.bytes.count)
        header.len = UInt32(packet.originalLength)
        return pcap_offline_filter(program, &header, data.assumingMemoryBound(to: UInt8.self)) != 0
    }
}
