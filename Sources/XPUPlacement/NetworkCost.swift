/// The cost of reaching a GPU server from where the workload runs: a tie-breaker between
/// otherwise equal placements, or a weight subtracted from the policy's score.
public protocol NetworkCostModel: Sendable {
    /// Cost of reaching `server` from the client at `origin` (a node name; `nil` when unknown).
    /// 0 means local.
    func cost(from origin: String?, to server: Node) -> Double
}

/// Every server is equally far: the trace replay, where clients have no location.
public struct UniformNetworkCost: NetworkCostModel {
    public init() {}
    public func cost(from origin: String?, to server: Node) -> Double { 0 }
}

/// Costs read from a table of (client, server) pairs, as the directory measures them; pairs not
/// in the table cost `unknown`, and a client on the server itself costs 0.
public struct TableNetworkCost: NetworkCostModel {
    public var costs: [String: [String: Double]]
    public var unknown: Double

    public init(costs: [String: [String: Double]], unknown: Double = 1) {
        self.costs = costs
        self.unknown = unknown
    }

    public func cost(from origin: String?, to server: Node) -> Double {
        guard let origin else { return unknown }
        if origin == server.name { return 0 }
        return costs[origin]?[server.name] ?? unknown
    }
}

/// Zones as labels say: a server in the client's zone costs 0, any other 1; a client that does
/// not say where it runs finds every server equally far. The live directory's model: servers
/// carry `--label zone=NAME`, clients `XPU_ZONE=NAME`. Honest about what it knows (a declared
/// place, not a measured round trip), and enough to keep work near its data when policies tie.
public struct ZoneNetworkCost: NetworkCostModel {
    /// The zone of each node, by node name; nodes without one are in no zone.
    public var zones: [String: String]

    public init(zones: [String: String]) { self.zones = zones }

    public func cost(from origin: String?, to server: Node) -> Double {
        guard let origin else { return 0 }
        return zones[server.name] == origin ? 0 : 1
    }
}
