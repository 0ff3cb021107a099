#if canImport(Glibc)
import Glibc
#endif
private import CZlib

/// The bytes of one capture input, read front to back without copying where the OS allows it.
///
/// - An uncompressed regular file is memory-mapped and walked in place. Pages already read
///   are handed back to the kernel as the reader moves on, so resident memory stays flat
///   whatever the file size.
/// - A gzip file, standard input or a pipe is read through zlib (which passes plain bytes
///   through unchanged) into one reusable buffer.
///
/// `window(_:)` returns a pointer to at least `count` unread bytes, or nil at end of input.
/// The pointer stays valid until the next call to `window`, `advance` or `skip`.
final class ByteSource {
    /// Largest window a caller may ask for; larger records are skipped, not buffered.
    /// pcapng's own readers cap a block at 16 MiB (libpcap's MAX_BLOCKSIZE).
    static let maximumWindow = 16 * 1024 * 1024
    /// Size of each read for streamed input.
    static let streamChunk = 1 << 20
    /// Mapped pages further behind the read position than this are released.
    static let mappedReleaseLag = 8 * 1024 * 1024
    static let mappedReleaseStep = 32 * 1024 * 1024

    private enum Backing {
        case mapped(UnsafeMutableRawPointer, Int)
        case gzip(gzFile)
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
    private var releasedUpTo = 0
    /// Set when reading failed before the natural end of the input.
    private(set) var readError: String?
    /// Total size when known in advance (regular files), for progress.
    let knownSize: Int64?
    let isCompressed: Bool

    /// Bytes consumed so far (of the decompressed stream).
    var offset: Int64 { baseOffset + Int64(start) }

    /// Opens `path`, or standard input for "-". Throws only for errors opening the input.
    init(path: String) throws(CaptureError) {
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
            let size = Int(info.st_size)
            if size == 0 {
                close(fd)
                backing = .empty
                return
            }
            let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            let mapError = errno
            close(fd)
            guard let mapping, mapping != UnsafeMutableRawPointer(bitPattern: -1) else {
                throw CaptureError.make(.io, "cannot map file: \(String(cString: strerror(mapError)))", input: path)
            }
            _ = madvise(mapping, size, MADV_SEQUENTIAL)
            backing = .mapped(mapping, size)
            base = mapping
            end = size
            capacity = size
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

    deinit {
        switch backing {
        case let .mapped(pointer, size): munmap(pointer, size)
        case let .gzip(stream):
            gzclose(stream)
            base?.deallocate()
        case .empty: break
        }
    }

    private static func openError(_ code: Int32, path: String) -> CaptureError {
        let text = String(cString: strerror(code))
        switch code {
        case ENOENT: return .make(.notFound, "no such file", input: path)
        case EACCES, EPERM: return .make(.permissionDenied, "permission denied (\(text))", input: path)
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
    func advance(_ count: Int) {
        start += count
        if case .mapped = backing, start - releasedUpTo > ByteSource.mappedReleaseStep { releaseMappedPages() }
    }

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
        guard case let .gzip(stream) = backing, count <= ByteSource.maximumWindow else { return nil }
        while end - start < count {
            if atEnd { return nil }
            if capacity - start < count || capacity - end < ByteSource.streamChunk / 4 {
                compact(toHold: count)
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
            }
        }
        return UnsafeRawPointer(base! + start)
    }

    /// Moves unread bytes to the front and grows the buffer if `count` bytes would not fit.
    private func compact(toHold count: Int) {
        let unread = end - start
        var newCapacity = capacity
        while newCapacity < count + ByteSource.streamChunk { newCapacity *= 2 }
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

    /// Hands already-read pages of a mapped file back to the kernel (resident memory stays flat).
    private func releaseMappedPages() {
        guard case let .mapped(pointer, _) = backing else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let releaseEnd = ((start - ByteSource.mappedReleaseLag) / page) * page
        guard releaseEnd > releasedUpTo else { return }
        _ = madvise(pointer + releasedUpTo, releaseEnd - releasedUpTo, MADV_DONTNEED)
        releasedUpTo = releaseEnd
    }
}
