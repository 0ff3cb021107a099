private import CPcap

/// Owns a libpcap handle and closes it when dropped.
struct PcapHandle: ~Copyable {
    let raw: OpaquePointer
    deinit { pcap_close(raw) }
}

/// Reads a capture file through libpcap itself. The tests use it as an independent
/// reference for `CaptureFileReader`; `--reader libpcap` selects it.
public final class LibpcapFileReader {
    private let handle: PcapHandle
    public let linkType: LinkType
    public let inputIndex: Int

    public init(path: String, inputIndex: Int = 0) throws(CaptureError) {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let raw = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer) else {
            let message = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CaptureError.make(.notACapture, message, input: path)
        }
        handle = PcapHandle(raw: raw)
        linkType = LinkType(rawValue: UInt32(bitPattern: pcap_datalink(raw)))
        self.inputIndex = inputIndex
    }

    /// The next packet, or nil at the end or on a read error. Bytes are valid until the next call.
    public func next() -> CapturedPacket? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        guard pcap_next_ex(handle.raw, &header, &data) == 1, let header, let data else { return nil }
        let h = header.pointee
        let timestamp = Int64(h.ts.tv_sec) * 1_000_000_000 + Int64(h.ts.tv_usec)
        return CapturedPacket(timestampNanos: timestamp, linkType: linkType, originalLength: Int(h.len),
                              bytes: UnsafeRawBufferPointer(start: data, count: Int(h.caplen)), inputIndex: inputIndex)
    }
}
