/// The pool's state as placement sees it: every server and what is free on it.
///
/// A value: the directory rebuilds it from heartbeats, the trace replay mutates its own copy.
public struct Cluster: Hashable, Sendable {
    public var nodes: [Node]

    public init(nodes: [Node]) { self.nodes = nodes }

    /// Milli-GPU of every card in the pool.
    public var gpuCapacity: Int {
        var total = 0
        for node in nodes { total += node.gpuCapacity }
        return total
    }

    /// Milli-GPU held by placed requests.
    public var gpuAllocated: Int {
        var total = 0
        for node in nodes { total += node.gpuCapacity - node.gpuFreeTotal }
        return total
    }

    /// Allocated milli-GPU over the pool's milli-GPU (0...1): the figure the FGD paper reports.
    public var gpuAllocationRate: Double {
        let capacity = gpuCapacity
        return capacity == 0 ? 0 : Double(gpuAllocated) / Double(capacity)
    }

    /// Scales used to normalize scores across dimensions: the largest node of the pool.
    public var largestNode: NodeScale {
        var scale = NodeScale(cpuMilli: 1, gpuMilli: Node.wholeGPU)
        for node in nodes {
            scale.cpuMilli = max(scale.cpuMilli, node.cpuCapacity)
            scale.gpuMilli = max(scale.gpuMilli, node.gpuCapacity)
        }
        return scale
    }

    /// Takes the resources of `placement` for `request`. The placement must come from `Placer`
    /// on this state; a placement that does not fit is a programming error.
    public mutating func commit(_ request: PlacementRequest, at placement: Placement) {
        nodes[placement.hostNode].cpuFree -= request.cpuMilli
        nodes[placement.hostNode].memoryFree -= request.memoryMiB
        precondition(nodes[placement.hostNode].cpuFree >= 0 && nodes[placement.hostNode].memoryFree >= 0)
        for index in placement.gpuIndices {
            nodes[placement.gpuNode].gpuFree[index] -= request.gpuMilli
            precondition(nodes[placement.gpuNode].gpuFree[index] >= 0)
        }
    }

    /// Gives back what `commit` took (a departure or a preempted slice).
    public mutating func release(_ request: PlacementRequest, at placement: Placement) {
        nodes[placement.hostNode].cpuFree += request.cpuMilli
        nodes[placement.hostNode].memoryFree += request.memoryMiB
        for index in placement.gpuIndices {
            nodes[placement.gpuNode].gpuFree[index] += request.gpuMilli
        }
    }
}

/// Per-dimension scales that make CPU and GPU amounts comparable in one score.
public struct NodeScale: Hashable, Sendable {
    public var cpuMilli: Int
    public var gpuMilli: Int

    public init(cpuMilli: Int, gpuMilli: Int) {
        self.cpuMilli = cpuMilli
        self.gpuMilli = gpuMilli
    }
}
