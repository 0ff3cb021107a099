#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A text file another program is still appending to (a key log that SSLKEYLOGFILE or
/// `s_client -keylogfile` writes during a live capture), read as it grows: each read hands
/// over the complete lines added since the last one. Opened once, so a file readable only
/// by root stays readable after privileges are dropped; a file truncated in place is read
/// again from its start.
package final class FollowedFile {
    /// Bytes read per call, so one huge append cannot hold up the capture loop; the rest
    /// comes on the next calls.
    package static let maximumBytesPerRead = 1 << 20

    package let path: String
    private let descriptor: Int32
    private var offset: Int64 = 0
    /// The unterminated end of what was read: a line still being written.
    private var partialLine: [UInt8] = []
    /// An overlong line was handed over cut: the rest of it, up to its newline, is passed over.
    private var skippingRestOfLine = false
    private let maximumLineLength: Int
    /// Complete lines handed over so far (for line numbers).
    package private(set) var linesRead = 0
    /// Times the file was found shorter than what was read (truncated), and read again from its start.
    package private(set) var truncations = 0

    /// Opens `path` for reading; lines longer than `maximumLineLength` are handed over cut,
    /// for the reader to count as malformed.
    package init(path: String, maximumLineLength: Int) throws(CaptureError) {
        self.path = path
        self.maximumLineLength = maximumLineLength
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .make(errno == EACCES ? .permissionDenied : .notFound, "could not read it") }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw .make(.unsupported, "not a regular file")
        }
    }

    deinit { close(descriptor) }

    /// The complete lines added since the last call (each ending in a newline), at most
    /// `maximumBytesPerRead` of new bytes, and the number of the first of them (from 1);
    /// nil when nothing complete was added.
    package func readNewLines() -> (text: [UInt8], firstLine: Int)? {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return nil }
        if Int64(status.st_size) < offset {
            offset = 0
            partialLine.removeAll()
            skippingRestOfLine = false
            linesRead = 0
            truncations += 1
        }
        let available = Int(min(Int64(status.st_size) - offset, Int64(Self.maximumBytesPerRead)))
        guard available > 0 else { return nil }
        var text = partialLine
        partialLine.removeAll()
        let start = text.count
        text.append(contentsOf: repeatElement(0, count: available))
        let got = text.withUnsafeMutableBytes { buffer in
            pread(descriptor, buffer.baseAddress! + start, available, off_t(offset))
        }
        guard got > 0 else {
            partialLine = Array(text[..<start])
            return nil
        }
        offset += Int64(got)
        text.removeLast(available - got)
        if skippingRestOfLine {
            guard let newline = text.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            text.removeSubrange(...newline)
            skippingRestOfLine = false
        }
        // Keep an unterminated end for next time, unless it is already too long to be a line.
        if let lastNewline = text.lastIndex(of: UInt8(ascii: "\n")) {
            partialLine = Array(text[(lastNewline + 1)...])
            text.removeSubrange((lastNewline + 1)...)
        } else {
            partialLine = text
            text = []
        }
        if partialLine.count > maximumLineLength {
            text += partialLine
            text.append(UInt8(ascii: "\n"))
            partialLine = []
            skippingRestOfLine = true
        }
        guard !text.isEmpty else { return nil }
        let first = linesRead + 1
        linesRead += text.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        return (text, first)
    }
}
