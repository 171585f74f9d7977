/// FGD's fragmentation measure (Weng et al., USENIX ATC'23).
///
/// For one request shape m, the free milli-GPU of node n that m could never use is a fragment:
/// - if m asks for no GPU, or n cannot take m at all (wrong model, too little CPU while CPU binds
///   the GPUs, fewer cards with at least m's share free than m's card count), every free
///   milli-GPU of n is a fragment;
/// - otherwise the fragments are the free milli-GPU of cards with less free than m's share.
///
/// The expected fragmentation F_n(M) weights each shape by its frequency in the demand
/// distribution M. FGD places a request where F grows least. The cluster's fragmentation rate,
/// Σ_n F_n(M) / Σ_n free milli-GPU of n, is the share of idle GPU capacity that the workload could
/// not use: the figure reported as "fragmentation rate" by `xpu-bench pool-sim`.
public enum Fragmentation {
    /// F_n(M) for `node` as it stands.
    public static func expected(of node: Node, under demand: DemandDistribution, cpuBindsGPU: Bool) -> Double {
        expected(of: node, taking: .none, milli: 0, cpuTaken: 0, under: demand, cpuBindsGPU: cpuBindsGPU)
    }

    /// F_n(M) for `node` after `choice` takes `milli` per card and `cpuTaken` milli-CPU, without
    /// building the changed node: the hot path of FGD, allocation-free.
    @inlinable
    public static func expected(
        of node: Node, taking choice: GPUChoice, milli: Int, cpuTaken: Int,
        under demand: DemandDistribution, cpuBindsGPU: Bool
    ) -> Double {
        let cardCount = node.gpuFree.count
        if cardCount == 0 { return 0 }
        let cpuFree = node.cpuFree - cpuTaken
        return node.gpuFree.withUnsafeBufferPointer { free in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: cardCount) { sorted in
                // The node's cards after the choice, sorted by free share (insertion sort: a node has
                // a handful of cards).
                var idleToTake = 0
                if case .idle(let count) = choice { idleToTake = count }
                var idle = 0
                for index in 0..<cardCount {
                    var value = free[index]
                    if case .share(let taken) = choice, taken == index { value -= milli }
                    if idleToTake > 0 && value == Node.wholeGPU {
                        value = 0
                        idleToTake -= 1
                    }
                    idle += value
                    var slot = index
                    while slot > 0 && sorted[slot - 1] > value {
                        sorted[slot] = sorted[slot - 1]
                        slot -= 1
                    }
                    sorted[slot] = value
                }
                if idle == 0 { return 0 }
                var fragments = demand.cpuOnlyFrequency * Double(idle)
                // Sweep the shapes by rising share: `below` cards have less free than the share,
                // holding `belowFree` milli-GPU between them.
                var below = 0
                var belowFree = 0
                for shape in demand.gpuShapes {
                    while below < cardCount && sorted[below] < shape.gpuMilli {
                        belowFree += sorted[below]
                        below += 1
                    }
                    let fits =
                        cardCount - below >= shape.gpuCount
                        && (!cpuBindsGPU || cpuFree >= shape.cpuMilli)
                        && shape.models.admits(node.gpuModel)
                    fragments += shape.frequency * Double(fits ? belowFree : idle)
                }
                return fragments
            }
        }
    }

    /// Σ_n F_n(M) and Σ_n free milli-GPU over the cluster.
    public static func amounts(
        of cluster: Cluster, under demand: DemandDistribution, cpuBindsGPU: Bool
    ) -> (fragments: Double, idle: Int) {
        var fragments = 0.0
        var idle = 0
        for node in cluster.nodes {
            fragments += expected(of: node, under: demand, cpuBindsGPU: cpuBindsGPU)
            idle += node.gpuFreeTotal
        }
        return (fragments, idle)
    }

    /// Σ_n F_n(M) / Σ_n free milli-GPU: the share of idle GPU capacity the workload cannot use.
    public static func rate(of cluster: Cluster, under demand: DemandDistribution, cpuBindsGPU: Bool) -> Double {
        let (fragments, idle) = amounts(of: cluster, under: demand, cpuBindsGPU: cpuBindsGPU)
        return idle == 0 ? 0 : fragments / Double(idle)
    }
}
