/// A slice running on a node, as preemption sees it: what ending it would free, and how much it
/// matters.
public struct RunningSlice: Hashable, Sendable {
    /// Who it is to the caller (the directory: the server's session id).
    public var id: UInt64
    /// The node and card it runs on (indices into the cluster and the node's `gpuFree`).
    public var node: Int
    public var gpu: Int
    public var cpuMilli: Int
    public var memoryMiB: Int
    public var gpuMilli: Int
    public var priority: Priority

    public init(id: UInt64, node: Int, gpu: Int, cpuMilli: Int, memoryMiB: Int, gpuMilli: Int, priority: Priority) {
        self.id = id
        self.node = node
        self.gpu = gpu
        self.cpuMilli = cpuMilli
        self.memoryMiB = memoryMiB
        self.gpuMilli = gpuMilli
        self.priority = priority
    }
}

/// Which running slices to end so that a request that fits nowhere fits somewhere: the rule of
/// the live directory's `--preempt`.
///
/// Only a high-priority request preempts, and only best-effort (`priority=low`) slices, all on
/// one node: a request of normal priority waits like any other, and normal or high slices are
/// never ended for someone else. Among the ways to make room it takes the one that ends the
/// fewest slices, then frees the least memory, then the least GPU share (what is preempted is
/// work lost), then the first node.
public enum Preemption {
    /// Victims considered per node: the largest, so that subsets stay cheap to enumerate
    /// (2^16 per node) and the few largest slices are the likeliest to make room.
    public static let maximumCandidates = 16

    /// Whether a slice of `victim` priority may be ended for a request of `requester` priority.
    public static func allows(_ requester: Priority, toPreempt victim: Priority) -> Bool {
        requester >= .high && victim <= .bestEffort
    }

    /// The node and the slices to end there so that `request` fits, or nil when no choice of
    /// preemptible slices on any one node makes room (or the request may not preempt).
    public static func victims(
        for request: PlacementRequest, in cluster: Cluster, running: [RunningSlice]
    ) -> (node: Int, victims: [RunningSlice])? {
        var best: (node: Int, victims: [RunningSlice], cost: Cost)?
        for (index, node) in cluster.nodes.enumerated() {
            let candidates = running
                .filter { $0.node == index && allows(request.priority, toPreempt: $0.priority) }
                .sorted { ($0.memoryMiB, $0.gpuMilli, $0.id) > ($1.memoryMiB, $1.gpuMilli, $1.id) }
                .prefix(maximumCandidates)
            guard !candidates.isEmpty else { continue }
            let slices = Array(candidates)
            for mask in 1..<(1 << slices.count) {
                let chosen = slices.indices.filter { mask & (1 << $0) != 0 }.map { slices[$0] }
                let cost = Cost(chosen)
                if let best, !(cost < best.cost) { continue }
                guard fits(request, on: node, without: chosen) else { continue }
                best = (index, chosen.sorted { $0.id < $1.id }, cost)
            }
        }
        return best.map { ($0.node, $0.victims) }
    }

    /// Whether `request` fits `node` once `victims` have given back what they hold.
    public static func fits(_ request: PlacementRequest, on node: Node, without victims: [RunningSlice]) -> Bool {
        var freed = node
        for victim in victims {
            freed.cpuFree += victim.cpuMilli
            freed.memoryFree += victim.memoryMiB
            if freed.gpuFree.indices.contains(victim.gpu) { freed.gpuFree[victim.gpu] += victim.gpuMilli }
        }
        guard freed.canHostCPU(of: request) else { return false }
        var fits = false
        Placer<BestFitPolicy>.forEachChoice(on: freed, for: request) { _ in fits = true }
        return fits
    }

    /// What a set of victims costs, compared in this order (fewer slices, less memory, less GPU).
    struct Cost: Comparable {
        var count: Int
        var memoryMiB: Int
        var gpuMilli: Int

        init(_ victims: [RunningSlice]) {
            count = victims.count
            memoryMiB = victims.reduce(0) { $0 + $1.memoryMiB }
            gpuMilli = victims.reduce(0) { $0 + $1.gpuMilli }
        }

        static func < (a: Cost, b: Cost) -> Bool {
            (a.count, a.memoryMiB, a.gpuMilli) < (b.count, b.memoryMiB, b.gpuMilli)
        }
    }
}
