/// What a workload asks the pool for: CPU and memory for its process, and GPUs (whole cards or a
/// share of one card).
///
/// A request for several GPUs always asks for whole cards (`gpuMilli == 1000`); a share of a card
/// (`gpuMilli < 1000`) is only asked for one card at a time, as in the openb trace.
public struct PlacementRequest: Hashable, Sendable {
    public var name: String
    public var cpuMilli: Int
    public var memoryMiB: Int
    /// Number of GPUs; 0 for a CPU-only workload.
    public var gpuCount: Int
    /// Milli-GPU asked on each of the `gpuCount` cards (1000 = whole card).
    public var gpuMilli: Int
    public var priority: Priority
    public var models: ModelConstraint
    /// Where the client runs (a node name), for the network-cost hook; `nil` when unknown.
    public var origin: String?

    public init(
        name: String, cpuMilli: Int, memoryMiB: Int, gpuCount: Int, gpuMilli: Int,
        priority: Priority = .normal, models: ModelConstraint = .any, origin: String? = nil
    ) {
        self.name = name
        self.cpuMilli = cpuMilli
        self.memoryMiB = memoryMiB
        self.gpuCount = gpuCount
        // A request without GPUs asks for no GPU share, whatever the trace's column says.
        self.gpuMilli = gpuCount > 0 ? gpuMilli : 0
        self.priority = priority
        self.models = models
        self.origin = origin
    }

    /// Milli-GPU asked in total.
    public var totalGPUMilli: Int { gpuCount * gpuMilli }

    /// A request for a share of one card, which can land next to other shares.
    public var isShared: Bool { gpuCount == 1 && gpuMilli < Node.wholeGPU }

    /// The same request where every GPU is a whole card: what a pool without slicing must give.
    public func wholeCards() -> PlacementRequest {
        var whole = self
        if gpuCount > 0 { whole.gpuMilli = Node.wholeGPU }
        return whole
    }

    /// The GPU side of the request alone: what the GPU server holds when the CPU and memory run
    /// on another server (remote placement).
    public func gpuSide() -> PlacementRequest {
        var side = self
        side.cpuMilli = 0
        side.memoryMiB = 0
        return side
    }
}

/// The GPU models a request accepts.
public struct ModelConstraint: Hashable, Sendable {
    /// Accepted model labels; empty means any model.
    public var allowed: [String]

    public init(_ allowed: [String]) { self.allowed = allowed }

    public static let any = ModelConstraint([])

    /// Parses the trace's `gpu_spec` form, `"V100M16|V100M32"`; an empty string accepts any model.
    public init(spec: Substring) {
        self.allowed = spec.split(separator: "|").map(String.init).filter { !$0.isEmpty }
    }

    /// A CPU-only node (`model == nil`) is refused by a constraint that names models, as the FGD
    /// simulator does; no constraint admits every node.
    @inlinable
    public func admits(_ model: String?) -> Bool {
        if allowed.isEmpty { return true }
        guard let model else { return false }
        return allowed.contains(model)
    }
}
