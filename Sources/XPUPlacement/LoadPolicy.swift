/// Least loaded: take the node whose GPUs were least busy, and on it the card with the most free
/// share.
///
/// The live directory feeds measured busy time per server (the share of the last window its
/// devices spent running kernels, from heartbeats). Without a measurement, as in the trace
/// replay where nothing runs, a node's load is its allocated share: allocated milli-GPU over its
/// milli-GPU (allocated CPU over CPU for a CPU-only node).
public struct LoadPolicy: PlacementPolicy {
    /// Measured busy fraction (0...1) by node name.
    public var measuredBusy: [String: Double]

    public init(measuredBusy: [String: Double] = [:]) { self.measuredBusy = measuredBusy }

    public var name: String { "load" }

    /// The load the policy sees on `node`.
    public func load(of node: Node) -> Double {
        if let busy = measuredBusy[node.name] { return busy }
        if node.gpuCount > 0 {
            return 1 - Double(node.gpuFreeTotal) / Double(node.gpuCapacity)
        }
        return node.cpuCapacity == 0 ? 1 : 1 - Double(node.cpuFree) / Double(node.cpuCapacity)
    }

    public func score(
        _ choice: GPUChoice, on node: Node, baseline: Double, for request: PlacementRequest,
        context: PlacementContext
    ) -> PlacementScore {
        PlacementScore(primary: -load(of: node), secondary: Double(choice.sharedCardFree(on: node)))
    }
}
