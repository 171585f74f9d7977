/// Which cards of one node a candidate placement takes.
///
/// Candidates are described, not materialized, so that scoring thousands of them per request
/// allocates nothing.
public enum GPUChoice: Hashable, Sendable {
    /// No GPU (a CPU-only request).
    case none
    /// A share of the card with this device number.
    case share(Int)
    /// This many idle cards, the lowest device numbers first.
    case idle(Int)

    /// The device numbers the choice takes on `node`.
    public func indices(on node: Node) -> [Int] {
        switch self {
        case .none:
            return []
        case .share(let index):
            return [index]
        case .idle(let count):
            var taken: [Int] = []
            for (index, free) in node.gpuFree.enumerated() where free == Node.wholeGPU && taken.count < count {
                taken.append(index)
            }
            return taken
        }
    }

    /// Free milli-GPU of the chosen card for a share; 0 otherwise. Best fit and spread use it to
    /// pick among the cards of one node.
    @inlinable
    public func sharedCardFree(on node: Node) -> Int {
        if case .share(let index) = self { return node.gpuFree[index] }
        return 0
    }
}
