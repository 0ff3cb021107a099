private import CPcap

/// Owns a libpcap handle and closes it when dropped.
struct PcapHandle: ~Copyable {
    let raw: OpaquePointer
    deinit { pcap_close(raw) }
}

/// Reads a capture file through libpcap itself. The tests use it as an independent
/// reference for `CaptureFileReader`; `--reader libpcap` selects it.
package final class LibpcapFileReader {
    private let handle: PcapHandle
    package let linkType: LinkType
    package let inputIndex: Int

    package init(path: String, inputIndex: Int = 0) throws(CaptureError) {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let raw = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer)
        else {
            let message = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CaptureError.make(.notACapture, message, input: path)
        }
        handle = PcapHandle(raw: raw)
        // pcap_datalink answers with DLT_ values; DLT_RAW is 12 or 14 where the file says LINKTYPE_RAW (101).
        let dlt = UInt32(bitPattern: pcap_datalink(raw))
        linkType = dlt == 12 || dlt == 14 ? .raw : LinkType(rawValue: dlt)
        self.inputIndex = inputIndex
    }

    /// libpcap's message when reading stopped on an error rather than at the end.
    package private(set) var error: String?

    /// The next packet, or nil at the end or on a read error. Bytes are valid until the next call.
    package func next() -> CapturedPacket? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let status = pcap_next_ex(handle.raw, &header, &data)
        if status == PCAP_ERROR { error = String(cString: pcap_geterr(handle.raw)) }
        guard status == 1, let header, let data else { return nil }
        let h = header.pointee
        let timestamp = Int64(h.ts.tv_sec) * 1_000_000_000 + Int64(h.ts.tv_usec)
        return CapturedPacket(
            timestampNanos: timestamp,
            linkType: linkType,
            originalLength: Int(h.len),
            bytes: UnsafeRawBufferPointer(start: data, count: Int(h.caplen)),
            inputIndex: inputIndex
        )
    }
}
