#if canImport(Glibc)
import Glibc
#endif

/// Reads a text file line by line (plain, gzip-compressed, or standard input for "-"),
/// for saved handshake records.
package final class LineReader {
    /// Longest line kept; longer ones are skipped and counted (the capture reader's window).
    package static let maximumLine = ByteSource.maximumWindow

    private let source: ByteSource
    /// Lines longer than `maximumLine`, skipped.
    package private(set) var overlongLines = 0
    /// Set when reading failed before the end of the input.
    package var readError: String? { source.readError }

    package init(path: String) throws(CaptureError) {
        source = try ByteSource(path: path, countsProgress: true)
    }

    /// The next line without its line end (LF or CRLF), or nil at the end of the input. A
    /// last line without a line end is returned too: it may be the cut-off end of a killed run.
    package func next() -> [UInt8]? {
        var scanned = 0
        while true {
            let available = source.buffered
            if available > scanned, let window = source.window(available) {
                if let newline = memchr(window + scanned, 0x0a, available - scanned) {
                    let length = UnsafeRawPointer(newline) - window
                    if length > LineReader.maximumLine {
                        // Found in the same read that passed the limit: overlong all the same.
                        overlongLines += 1
                        source.advance(length + 1)
                        scanned = 0
                        continue
                    }
                    let end =
                        length > 0 && window.load(fromByteOffset: length - 1, as: UInt8.self) == 0x0d
                        ? length - 1 : length
                    let line = Array(UnsafeRawBufferPointer(start: window, count: end))
                    source.advance(length + 1)
                    return line
                }
                scanned = available
            }
            if scanned >= LineReader.maximumLine {
                // Drop the overlong line up to and including its line end.
                overlongLines += 1
                source.advance(scanned)
                scanned = 0
                while let window = source.window(1) {
                    let available = source.buffered
                    if let newline = memchr(window, 0x0a, available) {
                        source.advance(UnsafeRawPointer(newline) - window + 1)
                        break
                    }
                    source.advance(available)
                }
                continue
            }
            guard source.window(scanned + 1) != nil else {
                // End of input: whatever is left is a last line without a line end.
                let rest = source.buffered
                guard rest > 0, let window = source.window(rest) else { return nil }
                let line = Array(UnsafeRawBufferPointer(start: window, count: rest))
                source.advance(rest)
                return line
            }
        }
    }
}
