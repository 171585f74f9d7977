/// The policies selectable by name (`--policy fgd` and the directory's configuration), behind
/// one concrete type so that callers need no generics and calls stay statically dispatched.
public struct NamedPolicy: PlacementPolicy {
    /// The names a policy can be asked for by.
    public enum Name: String, Hashable, Sendable, CaseIterable {
        case fgd, bestfit, spread, load
    }

    enum Kind: Sendable {
        case fgd(FGDPolicy)
        case bestfit(BestFitPolicy)
        case spread(SpreadPolicy)
        case load(LoadPolicy)
    }

    let kind: Kind

    /// The policy called `name`. FGD needs the workload's demand distribution, `load` the
    /// measured busy fraction of the nodes that report one; the others ignore them.
    public init(_ name: Name, demand: DemandDistribution, measuredBusy: [String: Double] = [:]) {
        switch name {
        case .fgd: kind = .fgd(FGDPolicy(demand: demand))
        case .bestfit: kind = .bestfit(BestFitPolicy())
        case .spread: kind = .spread(SpreadPolicy())
        case .load: kind = .load(LoadPolicy(measuredBusy: measuredBusy))
        }
    }

    public var name: String {
        switch kind {
        case .fgd(let policy): policy.name
        case .bestfit(let policy): policy.name
        case .spread(let policy): policy.name
        case .load(let policy): policy.name
        }
    }

    public func baseline(of node: Node, for request: PlacementRequest, context: PlacementContext) -> Double {
        switch kind {
        case .fgd(let policy): policy.baseline(of: node, for: request, context: context)
        case .bestfit(let policy): policy.baseline(of: node, for: request, context: context)
        case .spread(let policy): policy.baseline(of: node, for: request, context: context)
        case .load(let policy): policy.baseline(of: node, for: request, context: context)
        }
    }

    public func score(
        _ choice: GPUChoice, on node: Node, baseline: Double, for request: PlacementRequest,
        context: PlacementContext
    ) -> PlacementScore {
        switch kind {
        case .fgd(let policy): policy.score(choice, on: node, baseline: baseline, for: request, context: context)
        case .bestfit(let policy): policy.score(choice, on: node, baseline: baseline, for: request, context: context)
        case .spread(let policy): policy.score(choice, on: node, baseline: baseline, for: request, context: context)
        case .load(let policy): policy.score(choice, on: node, baseline: baseline, for: request, context: context)
        }
    }
}
