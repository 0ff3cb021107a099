/// What reassembly saw, for the end-of-run report.
public struct ReassemblyCounters: Sendable, Equatable {
    public var flows = 0
    public var flowsWithoutSYN = 0
    public var portReuses = 0
    /// Bytes seen again after they were delivered (retransmissions, overlaps).
    public var retransmittedBytes: Int64 = 0
    /// Overlapping out-of-order copies whose bytes differed; the first copy was kept.
    public var conflictingOverlaps = 0
    /// Stream holes: count and bytes.
    public var gaps = 0
    public var gapBytes: Int64 = 0
    /// Segments held back until earlier bytes arrived.
    public var outOfOrderSegments = 0
    /// Gaps declared because a buffer bound was reached rather than by an acknowledgment.
    public var bufferLimitGaps = 0
    /// Segments far outside the expected sequence window, ignored.
    public var outOfWindowSegments = 0
    /// Directions moved to the sequence space a second SYN-ACK, or a SYN-ACK acknowledging a
    /// SYN not seen, named once the other side confirmed it.
    public var sequenceSpacesAdopted = 0
    /// Waits for reordered bytes that ran out (`ReassemblyLimits.maximumReorderWaitNanos`).
    public var reorderWaitsExpired = 0
    public var flowsExpired = 0
    public var flowsEvicted = 0
    /// Flows finished early because the table's memory budget was reached.
    public var flowsEvictedForMemory = 0
    public var peakFlows = 0
    public var peakBufferedBytes = 0
    /// The most memory the table held at once, by its own account.
    public var peakHeldBytes = 0

    public init() {}

    public mutating func add(_ o: ReassemblyCounters) {
        flows += o.flows
        flowsWithoutSYN += o.flowsWithoutSYN
        portReuses += o.portReuses
        retransmittedBytes += o.retransmittedBytes
        conflictingOverlaps += o.conflictingOverlaps
        gaps += o.gaps
        gapBytes += o.gapBytes
        outOfOrderSegments += o.outOfOrderSegments
        bufferLimitGaps += o.bufferLimitGaps
        outOfWindowSegments += o.outOfWindowSegments
        sequenceSpacesAdopted += o.sequenceSpacesAdopted
        reorderWaitsExpired += o.reorderWaitsExpired
        flowsExpired += o.flowsExpired
        flowsEvicted += o.flowsEvicted
        flowsEvictedForMemory += o.flowsEvictedForMemory
        peakFlows = max(peakFlows, o.peakFlows)
        peakBufferedBytes = max(peakBufferedBytes, o.peakBufferedBytes)
        peakHeldBytes += o.peakHeldBytes  // workers hold their tables at the same time
    }
}
