/// Places one request on a cluster with a policy: the function the pool directory calls for each
/// slice request, and the trace replay for each task.
///
/// It enumerates the feasible candidates (node and cards), asks the policy to score them, and
/// takes the best; equal scores go to the lower network cost, then to the first node in the
/// cluster's order (or a seeded random pick, `TieBreak.random`). It never mutates the cluster:
/// the caller commits the placement.
public struct Placer<Policy: PlacementPolicy>: Sendable {
    public var policy: Policy
    public var mode: PlacementMode
    public var networkCost: any NetworkCostModel
    /// How much one unit of network cost lowers a candidate's primary score. 0 makes network cost
    /// a pure tie-breaker.
    public var networkCostWeight: Double
    /// How equal candidates are decided.
    public var tieBreak: TieBreak

    public init(
        policy: Policy, mode: PlacementMode = .local,
        networkCost: any NetworkCostModel = UniformNetworkCost(), networkCostWeight: Double = 0,
        tieBreak: TieBreak = .firstNode
    ) {
        self.tieBreak = tieBreak
        self.policy = policy
        self.mode = mode
        self.networkCost = networkCost
        self.networkCostWeight = networkCostWeight
    }

    /// The best placement of `request` on `cluster`, or `nil` when it fits nowhere.
    public func place(
        _ request: PlacementRequest, in cluster: Cluster, using random: inout SeededGenerator
    ) -> Placement? {
        let context = PlacementContext(mode: mode, scale: cluster.largestNode)
        // In remote placement the GPU server holds only the GPU side; CPU-only requests have no
        // GPU side and are placed like local ones.
        let remote = mode == .remote && request.gpuCount > 0
        let held = remote ? request.gpuSide() : request
        var best: Candidate?
        var ties = 0
        for (index, node) in cluster.nodes.enumerated() {
            let local = node.canHostCPU(of: request)
            if !remote && !local { continue }
            var baseline: Double?
            Placer.forEachChoice(on: node, for: request) { choice in
                let base = baseline ?? policy.baseline(of: node, for: held, context: context)
                baseline = base
                var cost = networkCost.cost(from: request.origin, to: node)
                if !local { cost += 1 }  // the CPU side must run elsewhere: one network hop
                var score = policy.score(choice, on: node, baseline: base, for: held, context: context)
                score.primary -= networkCostWeight * cost
                let candidate = Candidate(node: index, choice: choice, score: score, cost: cost, local: local)
                switch candidate.compare(to: best) {
                case 1:
                    best = candidate
                    ties = 1
                case 0 where tieBreak == .random:
                    // Reservoir sampling: each of the equal candidates is kept with equal chance.
                    ties += 1
                    if random.uniform(below: ties) == 0 { best = candidate }
                default:
                    break
                }
            }
        }
        guard let best else { return nil }
        let gpuNode = cluster.nodes[best.node]
        let indices = best.choice.indices(on: gpuNode)
        if best.local {
            return Placement(gpuNode: best.node, gpuIndices: indices, hostNode: best.node)
        }
        guard let host = Placer.tightestHost(for: request, in: cluster, scale: context.scale) else { return nil }
        return Placement(gpuNode: best.node, gpuIndices: indices, hostNode: host)
    }

    /// Calls `body` with each way `node` can hold the GPUs of `request` (CPU and memory are the
    /// caller's concern). Cards with the same free share are interchangeable, so only the first
    /// of them is offered.
    @inlinable
    public static func forEachChoice(on node: Node, for request: PlacementRequest, _ body: (GPUChoice) -> Void) {
        if request.gpuCount == 0 {
            body(.none)
            return
        }
        guard node.admitsModel(of: request), node.gpuCount >= request.gpuCount else { return }
        if request.isShared {
            let free = node.gpuFree
            for index in free.indices where free[index] >= request.gpuMilli {
                var seen = false
                for earlier in 0..<index where free[earlier] == free[index] {
                    seen = true
                    break
                }
                if !seen { body(.share(index)) }
            }
        } else if node.idleGPUCount >= request.gpuCount {
            body(.idle(request.gpuCount))
        }
    }

    /// The server that fits the CPU side of `request` most tightly (least CPU left after, then
    /// least memory), CPU-only servers included; the lowest index among equals.
    public static func tightestHost(for request: PlacementRequest, in cluster: Cluster, scale: NodeScale) -> Int? {
        var best: Int?
        var bestLeft = (cpu: Int.max, memory: Int.max)
        for (index, node) in cluster.nodes.enumerated() where node.canHostCPU(of: request) {
            let left = (cpu: node.cpuFree - request.cpuMilli, memory: node.memoryFree - request.memoryMiB)
            if left.cpu < bestLeft.cpu || (left.cpu == bestLeft.cpu && left.memory < bestLeft.memory) {
                best = index
                bestLeft = left
            }
        }
        return best
    }
}

/// One scored candidate while the placer searches.
struct Candidate {
    var node: Int
    var choice: GPUChoice
    var score: PlacementScore
    var cost: Double
    var local: Bool

    /// 1 if better than `other` (or `other` is absent), 0 if equal, -1 if worse: score first,
    /// then lower network cost.
    func compare(to other: Candidate?) -> Int {
        guard let other else { return 1 }
        let byScore = score.compare(to: other.score)
        if byScore != 0 { return byScore }
        if cost < other.cost - 1e-12 { return 1 }
        if cost > other.cost + 1e-12 { return -1 }
        return 0
    }
}

/// How the placer decides between candidates of equal score and network cost.
public enum TieBreak: String, Hashable, Sendable, CaseIterable {
    /// Uniformly at random (seeded): spreads equal work over equal nodes.
    case random
    /// The first in the cluster's node order: fills equal nodes one after another, which keeps
    /// the others whole for large requests.
    case firstNode
}
