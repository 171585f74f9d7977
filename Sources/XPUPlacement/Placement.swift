/// Where a request was placed: the server and cards that hold its GPU share, and the server that
/// runs its CPU and memory. They are the same server unless placement is remote.
public struct Placement: Hashable, Sendable {
    /// Index in `Cluster.nodes` of the server holding the GPUs (the host itself for CPU-only
    /// requests).
    public var gpuNode: Int
    /// Device numbers on `gpuNode`; empty for CPU-only requests.
    public var gpuIndices: [Int]
    /// Index in `Cluster.nodes` of the server that runs the workload's CPU and memory.
    public var hostNode: Int

    public init(gpuNode: Int, gpuIndices: [Int], hostNode: Int) {
        self.gpuNode = gpuNode
        self.gpuIndices = gpuIndices
        self.hostNode = hostNode
    }

    /// Whether the workload reaches its GPUs without crossing the network.
    public var isLocal: Bool { gpuNode == hostNode }
}
