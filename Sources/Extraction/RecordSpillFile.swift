import Foundation

/// An unlinked temporary file that frames of spilled records are appended to and read back
/// from in order. Nil when no temporary file can be made; the caller then waits instead.
final class RecordSpillFile {
    private let descriptor: Int32
    private var writeOffset: Int64 = 0
    private var readOffset: Int64 = 0

    /// - Parameter directory: where to make the file; TMPDIR, or /tmp, when nil.
    init?(directory: String? = nil) {
        let directory =
            directory ?? ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(directory)/tlsreuse-spill-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { return nil }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Appends one frame: its length, then its bytes. False when the write failed (a full
    /// disk); nothing of the frame counts then.
    func append(_ frame: [UInt8]) -> Bool {
        var length = UInt32(frame.count).littleEndian
        let header = withUnsafeBytes(of: &length) { writeAll($0, at: writeOffset) }
        guard header, frame.withUnsafeBytes({ writeAll($0, at: writeOffset + 4) }) else { return false }
        writeOffset += 4 + Int64(frame.count)
        return true
    }

    /// The next frame appended and not yet read; nil when the read failed.
    func next() -> [UInt8]? {
        var length: UInt32 = 0
        guard withUnsafeMutableBytes(of: &length, { readAll($0, at: readOffset) }) else { return nil }
        let count = Int(UInt32(littleEndian: length))
        var frame = [UInt8](repeating: 0, count: count)
        guard frame.withUnsafeMutableBytes({ readAll($0, at: readOffset + 4) }) else { return nil }
        readOffset += 4 + Int64(count)
        if readOffset == writeOffset {
            // Everything read: start over, so the file holds at most what is waiting.
            readOffset = 0
            writeOffset = 0
            _ = ftruncate(descriptor, 0)
        }
        return frame
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer, at offset: Int64) -> Bool {
        untilDone(bytes.count) {
            pwrite(descriptor, bytes.baseAddress! + $0, bytes.count - $0, off_t(offset) + off_t($0))
        }
    }

    private func readAll(_ bytes: UnsafeMutableRawBufferPointer, at offset: Int64) -> Bool {
        untilDone(bytes.count) {
            pread(descriptor, bytes.baseAddress! + $0, bytes.count - $0, off_t(offset) + off_t($0))
        }
    }

    /// Repeats a partial pread or pwrite (`step`, given the bytes done so far) until `count`
    /// bytes are through; false on an error or end of file. Interrupted calls are retried.
    private func untilDone(_ count: Int, _ step: (Int) -> Int) -> Bool {
        var done = 0
        while done < count {
            let moved = step(done)
            if moved < 0, errno == EINTR { continue }
            guard moved > 0 else { return false }
            done += moved
        }
        return true
    }
}
