private import CZlib

#if canImport(Glibc)
import Glibc
#endif

/// The bytes of one capture input, read front to back into one reusable buffer.
///
/// - An uncompressed regular file is read with read(2) in 256 KiB chunks into a 1 MiB
///   buffer. Measured on the benchmark capture this beat walking a memory map in place:
///   the copy lands in the L2 cache where parsing finds it, and there are no page faults
///   or page releases (which are costly in a VM). Resident memory stays at the buffer size.
/// - A gzip file, standard input or a pipe is read through zlib (which passes plain bytes
///   through unchanged).
///
/// `window(_:)` returns a pointer to at least `count` unread bytes, or nil at end of input.
/// The pointer stays valid until the next call to `window`, `advance` or `skip`.
final class ByteSource {
    /// Largest window a caller may ask for; larger records are skipped, not buffered.
    /// pcapng's own readers cap a block at 16 MiB (libpcap's MAX_BLOCKSIZE).
    static let maximumWindow = 16 * 1024 * 1024
    /// Size of each read for streamed input.
    static let streamChunk = 1_048_576
    /// Size of each read(2) of a plain file: half an L2 cache, so parsing finds the bytes there.
    static let fileChunk = 262144

    private enum Backing {
        case plain(Int32)
        case gzip(gzFile)
        case memory
        case empty
    }

    private let backing: Backing
    private var base: UnsafeMutableRawPointer?
    /// Unread bytes are base[start..<end].
    private var start = 0
    private var end = 0
    private var capacity = 0
    /// Stream offset of base[0].
    private var baseOffset: Int64 = 0
    private var atEnd = false
    /// Set when reading failed before the natural end of the input.
    private(set) var readError: String?
    /// Total size when known in advance (regular files), for progress.
    let knownSize: Int64?
    let isCompressed: Bool
    /// Whether reads count towards `ReadProgress.shared` (one reader per file does).
    private let countsProgress: Bool
    /// Compressed bytes already counted, for gzip input.
    private var countedCompressed: Int64 = 0

    /// Bytes consumed so far (of the decompressed stream).
    var offset: Int64 { baseOffset + Int64(start) }

    /// Opens `path`, or standard input for "-". Throws only for errors opening the input.
    init(path: String, countsProgress: Bool = false) throws(CaptureError) {
        self.countsProgress = countsProgress
        let fd: Int32
        if path == "-" {
            fd = dup(STDIN_FILENO)
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
        }
        guard fd >= 0 else { throw ByteSource.openError(errno, path: path) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw ByteSource.openError(code, path: path)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw CaptureError.make(.notACapture, "is a directory, not a capture file", input: path)
        }
        let isRegular = (info.st_mode & S_IFMT) == S_IFREG
        var magic: (UInt8, UInt8) = (0, 0)
        let sniffed = isRegular ? withUnsafeMutableBytes(of: &magic) { pread(fd, $0.baseAddress, 2, 0) } : 0
        let looksGzip = sniffed == 2 && magic.0 == 0x1f && magic.1 == 0x8b

        if isRegular && !looksGzip {
            knownSize = Int64(info.st_size)
            isCompressed = false
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
            backing = .plain(fd)
            capacity = ByteSource.fileChunk * 4
            base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        } else {
            knownSize = isRegular ? Int64(info.st_size) : nil
            isCompressed = looksGzip
            // zlib reads plain bytes unchanged, so stdin and pipes may be compressed or not.
            guard let stream = gzdopen(fd, "rb") else {
                close(fd)
                throw CaptureError.make(.io, "cannot open stream", input: path)
            }
            _ = gzbuffer(stream, UInt32(ByteSource.streamChunk))
            backing = .gzip(stream)
            capacity = ByteSource.streamChunk * 4
            base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        }
    }

    /// Bytes already in memory (fuzzing and tests): the whole input is one window.
    init(bytes: [UInt8]) {
        countsProgress = false
        knownSize = Int64(bytes.count)
        isCompressed = false
        backing = .memory
        capacity = max(bytes.count, 1)
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        bytes.withUnsafeBytes { base!.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        end = bytes.count
        atEnd = true
    }

    deinit {
        switch backing {
        case let .gzip(stream):
            gzclose(stream)
            base?.deallocate()
        case let .plain(fd):
            close(fd)
            base?.deallocate()
        case .memory:
            base?.deallocate()
        case .empty: break
        }
    }

    private static func openError(_ code: Int32, path: String) -> CaptureError {
        let text = String(cString: strerror(code))
        switch code {
        case ENOENT: return .make(.notFound, "no such file", input: path)
        case EACCES: return .make(.permissionDenied, "permission denied", input: path)
        case EPERM: return .make(.permissionDenied, "operation not permitted", input: path)
        default: return .make(.io, "cannot open: \(text)", input: path)
        }
    }

    /// A pointer to at least `count` unread bytes, or nil when fewer remain.
    /// Does not consume them.
    @inline(__always)
    func window(_ count: Int) -> UnsafeRawPointer? {
        if end - start >= count, let base { return UnsafeRawPointer(base + start) }
        return refill(count)
    }

    /// Unread bytes available without reading further (for a final partial record).
    var buffered: Int { end - start }

    @inline(__always)
    func advance(_ count: Int) { start += count }

    /// Consumes `count` bytes that need not be looked at. Returns false if the input ended first.
    func skip(_ count: Int) -> Bool {
        var remaining = count
        while remaining > 0 {
            let available = end - start
            if available >= remaining {
                advance(remaining)
                return true
            }
            advance(available)
            remaining -= available
            guard window(1) != nil else { return false }
        }
        return true
    }

    private func refill(_ count: Int) -> UnsafeRawPointer? {
        guard count <= ByteSource.maximumWindow else { return nil }
        if case let .plain(fd) = backing {
            while end - start < count {
                if atEnd { return nil }
                if capacity - start < count || capacity - end < ByteSource.fileChunk {
                    compact(toHold: count, chunk: ByteSource.fileChunk)
                }
                let got = read(fd, base! + end, ByteSource.fileChunk)
                if got < 0 {
                    if errno == EINTR { continue }
                    readError = String(cString: strerror(errno))
                    atEnd = true
                } else if got == 0 {
                    atEnd = true
                } else {
                    end += got
                    if countsProgress { ReadProgress.shared.add(Int64(got)) }
                }
            }
            return UnsafeRawPointer(base! + start)
        }
        guard case let .gzip(stream) = backing else { return nil }  // memory: all of it is in the window already
        while end - start < count {
            if atEnd { return nil }
            if capacity - start < count || capacity - end < ByteSource.streamChunk / 4 {
                compact(toHold: count, chunk: ByteSource.streamChunk)
            }
            let room = capacity - end
            let got = gzread(stream, base! + end, UInt32(min(room, Int(Int32.max))))
            if got < 0 {
                var code: Int32 = 0
                let message = gzerror(stream, &code).map { String(cString: $0) } ?? "read error"
                readError = message
                atEnd = true
            } else if got == 0 {
                atEnd = true
                if gzeof(stream) == 0 {
                    var code: Int32 = 0
                    if let message = gzerror(stream, &code), code != Z_OK { readError = String(cString: message) }
                }
            } else {
                end += Int(got)
                if countsProgress {
                    let compressed = Int64(gzoffset(stream))
                    ReadProgress.shared.add(compressed - countedCompressed)
                    countedCompressed = compressed
                }
            }
        }
        return UnsafeRawPointer(base! + start)
    }

    /// Moves unread bytes to the front and grows the buffer if `count` bytes and another
    /// `chunk` would not fit.
    private func compact(toHold count: Int, chunk: Int) {
        let unread = end - start
        var newCapacity = capacity
        while newCapacity < count + chunk { newCapacity *= 2 }
        if newCapacity != capacity {
            let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            grown.copyMemory(from: base! + start, byteCount: unread)
            base!.deallocate()
            base = grown
            capacity = newCapacity
        } else if start > 0 {
            memmove(base!, base! + start, unread)
        }
        baseOffset += Int64(start)
        start = 0
        end = unread
    }
}
