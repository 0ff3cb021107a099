#if canImport(Glibc)
import Glibc
#endif

/// Writes whole lines to a file descriptor. The buffer only ever holds complete lines, so
/// a run that is killed leaves only complete lines behind; with `flushEachLine` (pipes,
/// terminals, live capture) every line is written as soon as it is complete.
public final class LineWriter {
    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private let flushEachLine: Bool
    private var buffer: [UInt8] = []
    static let flushThreshold = 64 * 1024
    /// Set when a write failed (for example a closed pipe); further output is dropped.
    public private(set) var failed = false

    public init(descriptor: Int32 = STDOUT_FILENO, flushEachLine: Bool? = nil, ownsDescriptor: Bool = false) {
        self.descriptor = descriptor
        self.ownsDescriptor = ownsDescriptor
        var info = stat()
        let isRegularFile = fstat(descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        self.flushEachLine = flushEachLine ?? !isRegularFile
        buffer.reserveCapacity(LineWriter.flushThreshold * 2)
    }

    /// Opens (creates or truncates) a file for writing.
    public convenience init(path: String) throws(OutputError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OutputError(message: "\(path): cannot write: \(String(cString: strerror(errno)))") }
        self.init(descriptor: fd, flushEachLine: false, ownsDescriptor: true)
    }

    deinit {
        flush()
        if ownsDescriptor { close(descriptor) }
    }

    public func line(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(0x0a)
        lineEnded()
    }

    public func line(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        buffer.append(0x0a)
        lineEnded()
    }

    public func line(bytes: UnsafeBufferPointer<UInt8>) {
        buffer.append(contentsOf: bytes)
        buffer.append(0x0a)
        lineEnded()
    }

    /// Part of a long line (a JSON report), written out at once; `line(bytes: [])` ends it.
    public func part(_ bytes: [UInt8]) {
        flush()
        buffer.append(contentsOf: bytes)
        flush()
    }

    private func lineEnded() {
        if flushEachLine || buffer.count >= LineWriter.flushThreshold { flush() }
    }

    public func flush() {
        guard !buffer.isEmpty, !failed else {
            buffer.removeAll(keepingCapacity: true)
            return
        }
        var offset = 0
        buffer.withUnsafeBytes { bytes in
            while offset < bytes.count {
                let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failed = true
                    return
                }
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

public struct OutputError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A line on standard error, prefixed with the program name.
public func printError(_ message: String) {
    // File names and wire strings reach messages: nothing in them may act on the terminal.
    var line = Array("tlsreuse: \(DisplayText.escaped(message))\n".utf8)
    line.withUnsafeMutableBytes { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
