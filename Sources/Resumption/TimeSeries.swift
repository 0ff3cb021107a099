/// Connections, resumption offers and accepted offers over time, in a bounded number of
/// equal bins: when a record falls past the last bin, bins merge in pairs (the width
/// doubles), so a day-long capture costs no more memory than a minute-long one.
package struct TimeSeries: Sendable {
    /// Bins kept at most: enough for a readable chart.
    package static let maximumBins = 240
    package static let initialBinNanos: Int64 = 1_000_000_000

    package struct Bin: Sendable, Equatable {
        package var connections = 0
        package var offers = 0
        package var accepted = 0
        package init(connections: Int = 0, offers: Int = 0, accepted: Int = 0) {
            self.connections = connections
            self.offers = offers
            self.accepted = accepted
        }
    }

    /// Start of the first bin, a multiple of `binNanos`; nil before the first record.
    package private(set) var startNanos: Int64?
    package private(set) var binNanos = TimeSeries.initialBinNanos
    package private(set) var bins: [Bin] = []

    package init() {}

    /// `offer`: a resumption offer the server answered; `accepted`: it resumed.
    package mutating func add(at nanos: Int64, offer: Bool, accepted: Bool) {
        if startNanos == nil { startNanos = floor(nanos, binNanos) }
        // Record times lie in `CaptureTime`'s span, so their difference fits; a quotient, not
        // `start + width * bins`, so no product can overflow however wide the bins grow.
        while nanos >= startNanos!, (nanos - startNanos!) / binNanos >= Int64(TimeSeries.maximumBins) { widen() }
        // Records arrive in ClientHello order; one a little early goes into the first bin.
        let index = nanos < startNanos! ? 0 : Int((nanos - startNanos!) / binNanos)
        if index >= bins.count { bins.append(contentsOf: repeatElement(Bin(), count: index + 1 - bins.count)) }
        bins[index].connections += 1
        if offer { bins[index].offers += 1 }
        if offer && accepted { bins[index].accepted += 1 }
    }

    /// Doubles the bin width, merging bins into the aligned wider ones.
    private mutating func widen() {
        let oldStart = startNanos!
        let oldWidth = binNanos
        binNanos *= 2
        startNanos = floor(oldStart, binNanos)
        var merged: [Bin] = []
        for (index, bin) in bins.enumerated() {
            let target = Int((oldStart + Int64(index) * oldWidth - startNanos!) / binNanos)
            if target >= merged.count {
                merged.append(contentsOf: repeatElement(Bin(), count: target + 1 - merged.count))
            }
            merged[target].connections += bin.connections
            merged[target].offers += bin.offers
            merged[target].accepted += bin.accepted
        }
        bins = merged
    }

    private func floor(_ value: Int64, _ unit: Int64) -> Int64 {
        value >= 0 ? value / unit * unit : (value - unit + 1) / unit * unit
    }
}
