#if canImport(Glibc)
import Glibc
#endif

extension CaptureFileReader {
    /// How far back from the end of a file to look for its last packet record.
    static let tailScan = 1 << 20

    /// The capture times of a file's first and last packets, read from its two ends without
    /// reading it whole. Nil for compressed or unreadable files, or when the tail cannot be
    /// parsed with confidence. Used to tell rotated files (each starts after the previous
    /// ends) from captures taken at the same time.
    package static func timeSpan(of path: String) -> (first: Int64, last: Int64)? {
        guard let reader = try? CaptureFileReader(path: path), !reader.stats.format.contains("gzip"),
            let first = reader.next()?.timestampNanos
        else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        let size = Int(info.st_size)
        let length = min(size, tailScan)
        var tail = [UInt8](repeating: 0, count: length)
        guard tail.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, length, off_t(size - length)) }) == length else {
            return nil
        }
        return tail.withUnsafeBytes { bytes -> (Int64, Int64)? in
            guard let last = reader.lastTimestamp(inTail: bytes) else { return nil }
            return (first, last)
        }
    }
}
