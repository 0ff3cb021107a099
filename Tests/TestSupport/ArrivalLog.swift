import Foundation

/// Lines of a pipe with the wall time each arrived, read on a thread of their own.
package final class ArrivalLog: @unchecked Sendable {
    private let condition = NSCondition()
    private var collected: [(Double, String)] = []
    private var all = Data()
    private var ended = false

    package init() {}

    package var lines: [(Double, String)] {
        condition.lock()
        defer { condition.unlock() }
        return collected
    }

    package func follow(_ handle: FileHandle) {
        Thread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                let now = Date().timeIntervalSince1970
                self.condition.lock()
                if chunk.isEmpty {
                    self.ended = true
                    self.condition.broadcast()
                    self.condition.unlock()
                    return
                }
                self.all.append(chunk)
                pending.append(chunk)
                while let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    self.collected.append((now, String(decoding: pending[pending.startIndex..<end], as: UTF8.self)))
                    pending.removeSubrange(pending.startIndex...end)
                }
                self.condition.unlock()
            }
        }.start()
    }

    /// Everything read, once the pipe has ended.
    package func waitForEnd() -> Data {
        condition.lock()
        defer { condition.unlock() }
        while !ended { condition.wait() }
        return all
    }
}
