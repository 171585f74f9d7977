/// The FGD simulator's "workload tuning": stretch a trace to a target load by resampling it.
///
/// Start from the trace's requests (in file order, or shuffled with the seed); then, while the
/// milli-GPU asked stays within `ratio` x the cluster's milli-GPU, append a request drawn
/// uniformly with replacement from the trace. As in the simulator, drawing stops at the first
/// draw whose per-card share would pass the target (a draw of a multi-card request is checked
/// by one card's share, so the total may end a little above the target), and CPU-only requests
/// are drawn too (they ask for 0 milli-GPU).
public struct WorkloadTuning: Hashable, Sendable {
    /// How requests of the trace itself are ordered before the draws are appended.
    public enum Order: String, Hashable, Sendable, CaseIterable {
        /// File order, as `../shared/data/openb/README.md` describes the protocol.
        case trace
        /// Shuffled with the seed, as the FGD artifact's run scripts do (`--shuffle-pod=true`).
        case shuffled
    }

    public var ratio: Double
    public var order: Order

    public init(ratio: Double = 1.3, order: Order = .trace) {
        self.ratio = ratio
        self.order = order
    }

    /// The tuned request sequence for `seed`. Depends only on the trace, the capacity and the
    /// seed, so every policy replays the same sequence for the same seed.
    public func workload(from trace: [PlacementRequest], gpuCapacity: Int, seed: UInt64) -> [PlacementRequest] {
        var random = SeededGenerator(seed: seed)
        var requests = trace
        if order == .shuffled { random.shuffle(&requests) }
        guard !trace.isEmpty else { return requests }
        let target = ratio * Double(gpuCapacity)
        var asked = 0
        for request in trace { asked += request.totalGPUMilli }
        while true {
            let draw = trace[random.uniform(below: trace.count)]
            if Double(asked + draw.gpuMilli) > target { break }
            asked += draw.totalGPUMilli
            requests.append(draw)
        }
        return requests
    }
}
