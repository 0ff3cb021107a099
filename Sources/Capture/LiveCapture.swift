private import CPcap

#if canImport(Glibc)
import Glibc
#endif

/// Capture from a network interface through libpcap, with a kernel BPF filter and,
/// optionally, the packets written to a pcap file as they arrive.
package final class LiveCapture {
    /// How long a read waits for packets before returning, so the caller can do periodic
    /// work (summaries, expiry, stop requests).
    package static let readTimeoutMilliseconds: Int32 = 200
    /// Kernel buffer: room for bursts while the analysis catches up.
    package static let bufferBytes: Int32 = 32 * 1024 * 1024
    /// At a stop, at most this many packets already in the kernel buffer are still read: a
    /// full buffer of the smallest frames (14-byte Ethernet + 20 IPv4 + 20 TCP, ~64 with
    /// the ring's headers), so a flood cannot keep a stopping run reading.
    package static let maximumPacketsReadAtStop = Int(bufferBytes) / 64

    private let handle: PcapHandle
    private var dumper: OpaquePointer?
    private var selectable: Int32 = -1
    package let interface: String
    package let linkType: LinkType

    /// Opens and activates `interface` ("any" for all). Throws `.capturePermission` when
    /// capturing is not permitted, `.noSuchInterface` (naming the ones that exist), or
    /// `.badFilter`. Once it returns, the privileges it needed can go (`Privileges.drop`).
    package init(interface: String, filter: String) throws(CaptureError) {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let raw = pcap_create(interface, &errorBuffer) else {
            throw CaptureError.make(.io, LiveCapture.text(errorBuffer), input: interface)
        }
        handle = PcapHandle(raw: raw)
        self.interface = interface
        _ = pcap_set_snaplen(raw, Int32(CaptureFileReader.maximumCapturedLength))
        _ = pcap_set_timeout(raw, LiveCapture.readTimeoutMilliseconds)
        _ = pcap_set_buffer_size(raw, LiveCapture.bufferBytes)
        _ = pcap_set_tstamp_precision(raw, Int32(PCAP_TSTAMP_PRECISION_NANO))
        // Deliver packets at once rather than when a kernel buffer block fills.
        _ = pcap_set_immediate_mode(raw, 1)
        let status = pcap_activate(raw)
        if status < 0 {
            let detail = String(cString: pcap_geterr(raw))
            switch status {
            case PCAP_ERROR_PERM_DENIED:
                throw CaptureError.make(.capturePermission, LiveCapture.permissionAdvice(detail), input: interface)
            case PCAP_ERROR_NO_SUCH_DEVICE:
                throw CaptureError.make(
                    .noSuchInterface,
                    "no such interface; interfaces: \(LiveCapture.interfaceNames().joined(separator: ", "))",
                    input: interface
                )
            default:
                // Some kernels answer a missing interface with a generic error.
                if !LiveCapture.interfaceNames().contains(interface) {
                    throw CaptureError.make(
                        .noSuchInterface,
                        "no such interface; interfaces: \(LiveCapture.interfaceNames().joined(separator: ", "))",
                        input: interface
                    )
                }
                if detail.contains("ermission") || detail.contains("not permitted") {
                    throw CaptureError.make(.capturePermission, LiveCapture.permissionAdvice(detail), input: interface)
                }
                throw CaptureError.make(.io, detail, input: interface)
            }
        }
        let dlt = UInt32(bitPattern: pcap_datalink(raw))
        linkType = dlt == 12 || dlt == 14 ? .raw : LinkType(rawValue: dlt)
        var program = bpf_program()
        guard pcap_compile(raw, &program, filter, 1, 0xffff_ffff) == 0 else {
            throw CaptureError.make(
                .badFilter,
                "bad --bpf expression '\(filter)': \(String(cString: pcap_geterr(raw)))"
            )
        }
        defer { pcap_freecode(&program) }
        guard pcap_setfilter(raw, &program) == 0 else {
            throw CaptureError.make(.badFilter, "cannot set --bpf filter: \(String(cString: pcap_geterr(raw)))")
        }
        // With TPACKET_V3 the read timeout starts only once a packet arrives, so an idle
        // interface would block a read forever: read without blocking and wait in poll().
        _ = pcap_setnonblock(raw, 1, &errorBuffer)
        selectable = pcap_get_selectable_fd(raw)
    }

    /// Writes every packet captured from here on to `path` (pcap, as tcpdump -w). Call it
    /// after dropping privileges, so the file is made with the unprivileged user's rights,
    /// as tcpdump does. A symbolic link at `path` is refused (O_NOFOLLOW), so a link planted
    /// in a world-writable directory cannot point the write elsewhere.
    package func startWriting(to path: String) throws(CaptureError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let reason = errno == ELOOP ? "it is a symbolic link" : String(cString: strerror(errno))
            throw CaptureError.make(.io, "cannot write: \(reason)", input: path)
        }
        guard let file = fdopen(fd, "wb") else {
            close(fd)
            throw CaptureError.make(.io, "cannot write: \(String(cString: strerror(errno)))", input: path)
        }
        guard let dumper = pcap_dump_fopen(handle.raw, file) else {
            fclose(file)
            throw CaptureError.make(.io, "cannot write: \(String(cString: pcap_geterr(handle.raw)))", input: path)
        }
        self.dumper = dumper
    }

    deinit {
        if let dumper { pcap_dump_close(dumper) }
    }

    static func permissionAdvice(_ detail: String) -> String {
        "capturing needs root, or the CAP_NET_RAW and CAP_NET_ADMIN capabilities: sudo setcap "
            + "cap_net_raw,cap_net_admin=eip \(executablePath()) (\(detail))"
    }

    private static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return length > 0
            ? String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "tlsreuse"
    }

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Names of the interfaces libpcap can capture on.
    package static func interfaceNames() -> [String] {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        var list: UnsafeMutablePointer<pcap_if_t>?
        guard pcap_findalldevs(&list, &errorBuffer) == 0 else { return [] }
        defer { pcap_freealldevs(list) }
        var names: [String] = []
        var current = list
        while let device = current {
            names.append(String(cString: device.pointee.name))
            current = device.pointee.next
        }
        return names
    }

    /// The outcome of one read.
    package enum Read {
        case packet(CapturedPacket)
        /// No packet within the read timeout.
        case timeout
        /// The capture ended (interface gone, or `stop()` was called).
        case ended(String?)
    }

    /// Waits up to the read timeout for the next packet (or, with `waiting` false, takes
    /// only one already in the kernel buffer). Its bytes are valid until the next call.
    package func next(waiting: Bool = true) -> Read {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        var status = pcap_next_ex(handle.raw, &header, &data)
        if status == 0, waiting, selectable >= 0 {
            var waiting = pollfd(fd: selectable, events: Int16(POLLIN), revents: 0)
            _ = poll(&waiting, 1, LiveCapture.readTimeoutMilliseconds)
            status = pcap_next_ex(handle.raw, &header, &data)
        }
        switch status {
        case 1:
            guard let header, let data else { return .timeout }
            if let dumper {
                pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), header, data)
            }
            let h = header.pointee
            // Nanosecond precision (pcap_set_tstamp_precision); a clock outside the span is read as the span's edge.
            let nanos =
                CaptureTime.nanos(seconds: Int64(h.ts.tv_sec), fractionNanos: Int64(h.ts.tv_usec))
                ?? (h.ts.tv_sec < 0 ? CaptureTime.earliestNanos : CaptureTime.endNanos - 1)
            return .packet(
                CapturedPacket(
                    timestampNanos: nanos,
                    linkType: linkType,
                    originalLength: Int(h.len),
                    bytes: UnsafeRawBufferPointer(start: data, count: Int(h.caplen))
                )
            )
        case 0:
            return .timeout
        case PCAP_ERROR_BREAK:
            return .ended(nil)
        default:
            return .ended(String(cString: pcap_geterr(handle.raw)))
        }
    }

    /// Flushes packets written with `-w` so far.
    package func flushOutput() {
        if let dumper { _ = pcap_dump_flush(dumper) }
    }

    /// Kernel counts: packets received and dropped (pcap_stats).
    package struct Statistics: Sendable, Equatable {
        package var received: UInt32 = 0
        package var dropped: UInt32 = 0
        package var droppedByInterface: UInt32 = 0
        package init() {}
    }

    package var statistics: Statistics {
        var stats = pcap_stat()
        guard pcap_stats(handle.raw, &stats) == 0 else { return Statistics() }
        var out = Statistics()
        out.received = stats.ps_recv
        out.dropped = stats.ps_drop
        out.droppedByInterface = stats.ps_ifdrop
        return out
    }
}
