import Capture
import Foundation
import Handshakes
import Reports
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The progress bar on standard error: shown for inputs over 64 MiB when standard error is a
/// terminal, never under --quiet. A thread redraws it a few times a second from
/// `ReadProgress.shared`; the readers never wait for it.
final class ProgressDisplay: Sendable {
    private let total: Int64
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    static let redrawMicroseconds: UInt32 = 200_000

    /// Starts a display for these input files, or returns nil when none is wanted.
    static func start(files: [String], quiet: Bool) -> ProgressDisplay? {
        guard !quiet, isatty(STDERR_FILENO) == 1 else { return nil }
        var total: Int64 = 0
        for file in files where file != "-" {
            var info = stat()
            guard stat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            total += Int64(info.st_size)
        }
        guard total > ProgressLine.minimumInputBytes else { return nil }
        let display = ProgressDisplay(total: total)
        let thread = Thread { display.run() }
        thread.start()
        return display
    }

    private init(total: Int64) { self.total = total }

    private func run() {
        let start = wallClockNanos()
        let base = ReadProgress.shared.bytesRead
        while true {
            let line = ProgressLine.render(
                done: ReadProgress.shared.bytesRead - base,
                total: total,
                elapsedNanos: wallClockNanos() - start
            )
            writeToStandardError("\r" + line + "\u{1b}[K")
            usleep(ProgressDisplay.redrawMicroseconds)
            if stopped.load(ordering: .relaxed) { break }
        }
        writeToStandardError("\r\u{1b}[K")
        finished.signal()
    }

    /// Stops the display and clears its line.
    func stop() {
        stopped.store(true, ordering: .relaxed)
        finished.wait()
    }
}

private func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
            if written <= 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
