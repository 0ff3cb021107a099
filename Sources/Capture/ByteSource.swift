private import CZlib
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The bytes of one capture input, read front to back into one reusable buffer.
///
/// - An uncompressed regular file is read with read(2) in 256 KiB chunks into a 1 MiB
///   buffer. Measured on the benchmark capture this beat walking a memory map in place:
///   the copy lands in the L2 cache where parsing finds it, and there are no page faults
///   or page releases (which are costly in a VM). Resident memory stays at the buffer size.
/// - A gzip file is read through zlib.
/// - Standard input, a pipe or a FIFO is read as its bytes arrive (a read returns what is
///   there, so a live `tcpdump -U -w -` streams), inflated when it starts like gzip. With
///   `returnsWhenWaiting`, a window asked for between records gives nil after 250 ms without
///   bytes, with `isWaiting` set, so a live run can release what it holds and ask again.
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
        case stream(StreamReader)
        case memory
        case empty
    }

    private let backing: Backing
    /// The buffer, and its start and size (read on every window).
    private var storage: ReadBuffer?
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
    /// Whether the input is gzip (for a stream, known once its first bytes arrived).
    var isCompressed: Bool {
        if case let .stream(reader) = backing { return reader.isCompressed }
        return compressedFile
    }
    private let compressedFile: Bool
    /// For a stream: a window asked for with nothing buffered gives nil (and `isWaiting`)
    /// after `StreamReader.waitMilliseconds` without bytes, instead of waiting on.
    var returnsWhenWaiting = false
    /// Set when the last window gave nil because a stream had no bytes yet (not its end).
    private(set) var isWaiting = false
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

        if !isRegular {
            knownSize = nil
            compressedFile = false
            backing = .stream(StreamReader(fd: fd))
            adopt(ReadBuffer(capacity: ByteSource.streamChunk * 4))
        } else if !looksGzip {
            knownSize = Int64(info.st_size)
            compressedFile = false
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
            backing = .plain(fd)
            adopt(ReadBuffer(capacity: ByteSource.fileChunk * 4))
        } else {
            knownSize = Int64(info.st_size)
            compressedFile = true
            guard let stream = gzdopen(fd, "rb") else {
                close(fd)
                throw CaptureError.make(.io, "cannot open stream", input: path)
            }
            _ = gzbuffer(stream, UInt32(ByteSource.streamChunk))
            backing = .gzip(stream)
            adopt(ReadBuffer(capacity: ByteSource.streamChunk * 4))
        }
    }

    /// Bytes already in memory (fuzzing and tests): the whole input is one window.
    init(bytes: [UInt8]) {
        countsProgress = false
        knownSize = Int64(bytes.count)
        compressedFile = false
        backing = .memory
        adopt(ReadBuffer(capacity: max(bytes.count, 1)))
        bytes.withUnsafeBytes { base!.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        end = bytes.count
        atEnd = true
    }

    deinit {
        switch backing {
        case let .gzip(stream): gzclose(stream)
        case let .plain(fd): close(fd)
        case let .stream(reader): reader.close()
        case .memory, .empty: break
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
        isWaiting = false
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
        if case let .stream(reader) = backing {
            while end - start < count {
                if atEnd { return nil }
                if capacity - start < count || capacity - end < ByteSource.streamChunk / 4 {
                    compact(toHold: count, chunk: ByteSource.streamChunk)
                }
                switch reader.read(into: base! + end, capacity: capacity - end, waitLimited: returnsWhenWaiting) {
                case .waiting:
                    // Between records only: a record begun is waited for whole.
                    if end == start {
                        isWaiting = true
                        return nil
                    }
                case let .bytes(got, consumed):
                    end += got
                    if countsProgress { ReadProgress.shared.add(Int64(consumed)) }
                case .end: atEnd = true
                case let .failed(message):
                    readError = message
                    atEnd = true
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
    /// `chunk` would not fit. A buffer pinned by a worker (`pin`) is left to it: the unread
    /// bytes move to a spare buffer instead.
    private func compact(toHold count: Int, chunk: Int) {
        let unread = end - start
        var newCapacity = capacity
        while newCapacity < count + chunk { newCapacity *= 2 }
        let pinned = storage != nil && !isKnownUniquelyReferenced(&storage!)
        // What a worker read from the buffer before letting it go comes before what is
        // written into it now.
        if !pinned { atomicMemoryFence(ordering: .acquiring) }
        if newCapacity != capacity || pinned {
            let grown = spare(capacity: newCapacity)
            grown.base.copyMemory(from: base! + start, byteCount: unread)
            if pinned, let storage { retire(storage) }
            adopt(grown)
        } else if start > 0 {
            memmove(base!, base! + start, unread)
        }
        baseOffset += Int64(start)
        start = 0
        end = unread
    }

    private func adopt(_ buffer: ReadBuffer) {
        storage = buffer
        base = buffer.base
        capacity = buffer.capacity
    }

    /// Buffers left to workers, reused once no worker holds them (a fresh buffer each time
    /// would fault in its pages again).
    private var retired: [ReadBuffer] = []
    /// Retired buffers kept for reuse at most; workers bound how many they pin.
    static let maximumRetired = 12

    private func spare(capacity: Int) -> ReadBuffer {
        for index in retired.indices
        where retired[index].capacity >= capacity && isKnownUniquelyReferenced(&retired[index]) {
            atomicMemoryFence(ordering: .acquiring)
            return retired.remove(at: index)
        }
        return ReadBuffer(capacity: capacity)
    }

    private func retire(_ buffer: ReadBuffer) {
        if retired.count >= Self.maximumRetired { retired.removeFirst() }
        retired.append(buffer)
    }

    /// The buffer holding `bytes` (the packet last returned, or part of it), for a worker to
    /// keep alive while it follows them in place; nil when they are elsewhere (reordered,
    /// reassembled), and must be copied.
    func pin(_ bytes: UnsafeRawBufferPointer) -> ReadBuffer? {
        guard let storage, let start = bytes.baseAddress else { return nil }
        let low = UnsafeRawPointer(storage.base)
        guard start >= low, start + bytes.count <= low + storage.capacity else { return nil }
        return storage
    }
}

/// A read buffer's memory as an object. A worker handed bytes in place holds it (pins it)
/// until it has followed them; the source then reads on into another.
package final class ReadBuffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    package let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }
}

/// Standard input, a pipe or a FIFO, read as bytes arrive: plain, or gzip inflated as it
/// comes (RFC 1952 members one after another, as `cat a.gz b.gz` gives).
final class StreamReader {
    /// How long a read limited in its wait waits before it gives up.
    static let waitMilliseconds: Int32 = 250
    /// Compressed bytes read ahead of inflating.
    static let inputChunk = 65_536

    enum Outcome {
        /// `got` bytes written; `consumed` bytes read from the input for them.
        case bytes(got: Int, consumed: Int)
        case end
        case failed(String)
        /// No byte came within `waitMilliseconds` (a read limited in its wait).
        case waiting
    }

    private let fd: Int32
    /// Whether the current read may give up after `waitMilliseconds`.
    private var waitLimited = false
    /// Input read but not yet inflated (gzip) or decided on (the first bytes).
    private let input = UnsafeMutablePointer<UInt8>.allocate(capacity: StreamReader.inputChunk)
    private var inputStart = 0
    private var inputEnd = 0
    private var inputEnded = false
    private var zstream: UnsafeMutablePointer<z_stream>?
    /// Nil until the first two bytes arrived (or the input ended before them).
    private var gzip: Bool?
    /// Whether the current gzip member has ended (another may follow).
    private var memberEnded = false
    var isCompressed: Bool { gzip == true }

    init(fd: Int32) { self.fd = fd }

    func close() {
        if let zstream {
            inflateEnd(zstream)
            zstream.deallocate()
        }
        input.deallocate()
        Glibc.close(fd)
    }

    /// Reads what is there into `output`, waiting for at least one byte or the end.
    func read(into output: UnsafeMutableRawPointer, capacity: Int, waitLimited: Bool = false) -> Outcome {
        self.waitLimited = waitLimited
        if gzip == nil {
            // The first two bytes decide: gzip's magic, or the capture itself.
            while inputEnd < 2, !inputEnded {
                switch fill() {
                case .none: break
                case .some(nil): return .waiting
                case let .some(.some(failure)): return .failed(failure)
                }
            }
            gzip = inputEnd >= 2 && input[0] == 0x1f && input[1] == 0x8b
            if gzip == true, let failure = startInflating() { return .failed(failure) }
        }
        if gzip == false {
            if inputStart < inputEnd {
                let count = min(capacity, inputEnd - inputStart)
                output.copyMemory(from: input + inputStart, byteCount: count)
                inputStart += count
                return .bytes(got: count, consumed: count)
            }
            switch waitForInput() {
            case .ready: break
            case .timedOut: return .waiting
            case .failed: return .failed(String(cString: strerror(errno)))
            }
            let got = Glibc.read(fd, output, capacity)
            if got < 0 {
                return errno == EINTR ? .bytes(got: 0, consumed: 0) : .failed(String(cString: strerror(errno)))
            }
            return got == 0 ? .end : .bytes(got: got, consumed: got)
        }
        return inflateSome(into: output, capacity: capacity)
    }

    private enum Wait { case ready, timedOut, failed }

    /// Waits until the input is readable: without limit, or `waitMilliseconds` at most.
    private func waitForInput() -> Wait {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&poller, 1, waitLimited ? StreamReader.waitMilliseconds : -1)
            if ready > 0 { return .ready }
            if ready == 0 { return .timedOut }
            if errno != EINTR { return .failed }
        }
    }

    /// Reads more input after what is buffered: nil when it did (or the input ended),
    /// `.some(nil)` when the wait ran out, else why it failed.
    private func fill() -> String?? {
        if inputStart > 0 {
            if inputStart < inputEnd { memmove(input, input + inputStart, inputEnd - inputStart) }
            inputEnd -= inputStart
            inputStart = 0
        }
        switch waitForInput() {
        case .ready: break
        case .timedOut: return .some(nil)
        case .failed: return .some(String(cString: strerror(errno)))
        }
        let got = Glibc.read(fd, input + inputEnd, StreamReader.inputChunk - inputEnd)
        if got < 0 { return errno == EINTR ? nil : .some(String(cString: strerror(errno))) }
        if got == 0 { inputEnded = true } else { inputEnd += got }
        return nil
    }

    private func startInflating() -> String? {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15 window bits, +16: a gzip wrapper (RFC 1952).
        guard inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            stream.deallocate()
            return "cannot start zlib"
        }
        zstream = stream
        return nil
    }

    private func inflateSome(into output: UnsafeMutableRawPointer, capacity: Int) -> Outcome {
        guard let zstream else { return .failed("cannot start zlib") }
        while true {
            if inputStart == inputEnd {
                if inputEnded {
                    // The end of a whole member is the end; anywhere else it was cut off.
                    return memberEnded ? .end : .failed("unexpected end of file")
                }
                switch fill() {
                case .none: continue
                case .some(nil): return .waiting
                case let .some(.some(failure)): return .failed(failure)
                }
            }
            if memberEnded {
                // Another gzip member follows the last one.
                guard inflateReset(zstream) == Z_OK else { return .failed("cannot restart zlib") }
                memberEnded = false
            }
            let available = inputEnd - inputStart
            zstream.pointee.next_in = input + inputStart
            zstream.pointee.avail_in = UInt32(available)
            zstream.pointee.next_out = output.assumingMemoryBound(to: UInt8.self)
            zstream.pointee.avail_out = UInt32(min(capacity, Int(UInt32.max)))
            let result = inflate(zstream, Z_NO_FLUSH)
            let consumed = available - Int(zstream.pointee.avail_in)
            inputStart += consumed
            let produced = min(capacity, Int(UInt32.max)) - Int(zstream.pointee.avail_out)
            switch result {
            case Z_STREAM_END: memberEnded = true
            case Z_OK, Z_BUF_ERROR: break
            default:
                return .failed(zstream.pointee.msg.map { String(cString: $0) } ?? "inflate error \(result)")
            }
            if produced > 0 { return .bytes(got: produced, consumed: consumed) }
        }
    }
}
