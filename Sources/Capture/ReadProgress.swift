import Synchronization

/// Bytes of capture input read so far, across reader threads, for the progress bar: file
/// bytes for plain files, compressed bytes for gzip, so it compares with the file sizes.
/// Readers add once per chunk (1 MiB), never per packet.
package final class ReadProgress: Sendable {
    package static let shared = ReadProgress()
    private let bytes = Atomic<Int64>(0)

    package func add(_ count: Int64) { bytes.add(count, ordering: .relaxed) }
    package var bytesRead: Int64 { bytes.load(ordering: .relaxed) }
}
