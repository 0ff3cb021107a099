/// The progress bar's one line: share done, a bar, bytes done of total, rate and time left.
package enum ProgressLine {
    /// Inputs smaller than this finish before a bar would help.
    package static let minimumInputBytes: Int64 = 64 << 20

    package static func render(done: Int64, total: Int64, elapsedNanos: Int64, barWidth: Int = 24) -> String {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let filled = Int(fraction * Double(barWidth))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled)
        let seconds = Double(elapsedNanos) / 1e9
        let rate = seconds > 0 ? Double(done) / seconds : 0
        var line = "\(String(Int(fraction * 100)).leftPadding(3))% [\(bar)] \(bytes(done)) of \(bytes(total))"
        if seconds >= 0.5, rate > 0 {
            line += "  \(bytes(Int64(rate)))/s  ETA \(clock(Double(max(0, total - done)) / rate))"
        }
        return line
    }

    /// "512 KiB", "12.3 MiB", "1.61 GiB".
    package static func bytes(_ count: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(count) B" }
        return formatFixed(value, decimals: value < 10 ? 2 : value < 100 ? 1 : 0) + " " + units[unit]
    }

    /// "0:07", "12:34", "1:02:03".
    package static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.up))
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        if total >= 3600 { return "\(total / 3600):\(two(total / 60 % 60)):\(two(total % 60))" }
        return "\(total / 60):\(two(total % 60))"
    }
}
