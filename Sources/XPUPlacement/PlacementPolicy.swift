/// A rule that ranks candidate placements. Policies are pure values: the same cluster, request
/// and candidate always give the same score, so the live directory and the trace replay place
/// alike.
public protocol PlacementPolicy: Sendable {
    /// The name used on command lines and in reports (`fgd`, `bestfit`, ...).
    var name: String { get }

    /// A per-node quantity computed once before the node's candidates are scored (FGD's
    /// fragmentation before placement). Policies that need none return 0.
    func baseline(of node: Node, for request: PlacementRequest, context: PlacementContext) -> Double

    /// Ranks taking `choice` on `node` for `request`; higher is better. `request` is the part the
    /// node would hold (in remote placement, the GPU side only).
    func score(
        _ choice: GPUChoice, on node: Node, baseline: Double, for request: PlacementRequest,
        context: PlacementContext
    ) -> PlacementScore
}

extension PlacementPolicy {
    public func baseline(of node: Node, for request: PlacementRequest, context: PlacementContext) -> Double { 0 }
}

/// A candidate's rank: `primary` orders nodes, `secondary` breaks ties (such as which card of a
/// node). Equal scores are broken by network cost, then at random (seeded).
public struct PlacementScore: Hashable, Sendable {
    public var primary: Double
    public var secondary: Double

    public init(primary: Double, secondary: Double = 0) {
        self.primary = primary
        self.secondary = secondary
    }

    /// -1, 0 or 1, treating differences below `tolerance` as equal so that scores summed in a
    /// different order still tie.
    @inlinable
    public func compare(to other: PlacementScore, tolerance: Double = 1e-9) -> Int {
        if primary > other.primary + tolerance { return 1 }
        if primary < other.primary - tolerance { return -1 }
        if secondary > other.secondary + tolerance { return 1 }
        if secondary < other.secondary - tolerance { return -1 }
        return 0
    }
}
