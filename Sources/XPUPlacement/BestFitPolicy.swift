/// Best fit: take the node left with the least free resources, and on it the card left with the
/// least free share. Packs work tightly without regard to the shapes that will come next.
///
/// The node term is the FGD simulator's: the free CPU and GPU left after placement, each over the
/// largest node's amount, weighted one half each. Where CPU does not bind the GPUs (remote
/// placement) only the GPU term counts.
public struct BestFitPolicy: PlacementPolicy {
    public init() {}

    public var name: String { "bestfit" }

    public func score(
        _ choice: GPUChoice, on node: Node, baseline: Double, for request: PlacementRequest,
        context: PlacementContext
    ) -> PlacementScore {
        let left = NodeLeftover(node: node, request: request, context: context)
        return PlacementScore(primary: -left.normalized, secondary: -Double(choice.sharedCardFree(on: node)))
    }
}

/// Spread (worst fit): take the node left with the most free resources, and on it the card with
/// the most free share. Keeps interference low and fragments the pool.
public struct SpreadPolicy: PlacementPolicy {
    public init() {}

    public var name: String { "spread" }

    public func score(
        _ choice: GPUChoice, on node: Node, baseline: Double, for request: PlacementRequest,
        context: PlacementContext
    ) -> PlacementScore {
        let left = NodeLeftover(node: node, request: request, context: context)
        return PlacementScore(primary: left.normalized, secondary: Double(choice.sharedCardFree(on: node)))
    }
}

/// What a node keeps free after taking a request, normalized to the largest node.
struct NodeLeftover {
    var normalized: Double

    init(node: Node, request: PlacementRequest, context: PlacementContext) {
        let gpuLeft = Double(node.gpuFreeTotal - request.totalGPUMilli) / Double(context.scale.gpuMilli)
        if context.cpuBindsGPU {
            let cpuLeft = Double(node.cpuFree - request.cpuMilli) / Double(context.scale.cpuMilli)
            normalized = 0.5 * cpuLeft + 0.5 * gpuLeft
        } else {
            normalized = gpuLeft
        }
    }
}
