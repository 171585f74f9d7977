/// Whether a workload's CPU side must sit on the server that holds its GPUs.
public enum PlacementMode: String, Hashable, Sendable, CaseIterable {
    /// Locally attached GPUs: CPU, memory and GPUs on one server (the FGD simulator's model).
    case local
    /// API remoting: the GPU share may be on another server than the CPU and memory. The CPU side
    /// stays on the GPU server when it fits there (no network hop); otherwise it goes to the
    /// server, CPU-only ones included, that fits it most tightly.
    case remote
}

/// What a policy knows about the placement beyond the node and the request.
public struct PlacementContext: Hashable, Sendable {
    public var mode: PlacementMode
    /// The largest node of the pool, to normalize scores.
    public var scale: NodeScale

    public init(mode: PlacementMode, scale: NodeScale) {
        self.mode = mode
        self.scale = scale
    }

    /// Whether a node's free CPU limits who can use its GPUs. With remoting it does not: a
    /// workload whose CPU does not fit runs its CPU elsewhere.
    public var cpuBindsGPU: Bool { mode == .local }
}
