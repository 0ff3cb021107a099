private import CPcap

#if canImport(Glibc)
import Glibc
#endif

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
        guard let file = PacketFilter.fileHandle(for: LinkType(rawValue: linkType)) else {
            inapplicable[linkType] = "libpcap cannot open a handle for this link type"
            return nil
        }
        defer { file.close() }
        let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        program.initialize(to: bpf_program())
        if pcap_compile(file.handle, program, expression, 1, 0xffff_ffff) != 0 {
            inapplicable[linkType] = String(cString: pcap_geterr(file.handle))
            program.deallocate()
            return nil
        }
        programs[linkType] = program
        return program
    }

    /// A libpcap handle reading an empty capture file of `linkType`, for compiling. libpcap
    /// compiles a filter for a file as tcpdump -r does, which a dead handle does not: it maps
    /// the file's LINKTYPE_ value to its DLT_ value (LINKTYPE_RAW 101 is DLT_RAW, 12 on Linux)
    /// and accepts every platform's IPv6 address family on BSD loopback (24, 28, 30), where a
    /// dead handle takes only this host's. The raw IP values 12 and 14 that some systems
    /// wrote in files are written as LINKTYPE_RAW, as tlsreuse reads them.
    private static func fileHandle(for linkType: LinkType) -> (handle: OpaquePointer, close: () -> Void)? {
        let written: LinkType = [.rawBSD, .rawOpenBSD].contains(linkType) ? .raw : linkType
        // The classic pcap file header (microseconds, this host's byte order), no packets.
        let header = UnsafeMutableRawBufferPointer.allocate(byteCount: 24, alignment: 4)
        header.storeBytes(of: UInt32(0xa1b2_c3d4), toByteOffset: 0, as: UInt32.self)
        header.storeBytes(of: UInt16(2), toByteOffset: 4, as: UInt16.self)
        header.storeBytes(of: UInt16(4), toByteOffset: 6, as: UInt16.self)
        header.storeBytes(of: UInt32(0), toByteOffset: 8, as: UInt32.self)
        header.storeBytes(of: UInt32(0), toByteOffset: 12, as: UInt32.self)
        header.storeBytes(of: UInt32(CaptureFileReader.maximumCapturedLength), toByteOffset: 16, as: UInt32.self)
        header.storeBytes(of: written.rawValue, toByteOffset: 20, as: UInt32.self)
        guard let stream = fmemopen(header.baseAddress, 24, "r") else {
            header.deallocate()
            return nil
        }
        var error = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        // The handle owns the stream from here: pcap_close closes it.
        guard let handle = pcap_fopen_offline(stream, &error) else {
            fclose(stream)
            header.deallocate()
            return nil
        }
        return (
            handle,
            {
                pcap_close(handle)
                header.deallocate()
            }
        )
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
