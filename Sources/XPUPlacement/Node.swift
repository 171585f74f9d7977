/// One server in the pool: its CPU and memory, and the free share of each of its GPUs.
///
/// Units follow the openb trace so that the simulator and the live directory speak the same
/// numbers: CPU in milli-cores, memory in MiB, GPU in milli-GPU (1000 = one whole card).
public struct Node: Hashable, Sendable {
    /// Milli-GPU of one whole card.
    public static let wholeGPU = 1000

    public var name: String
    /// The GPU model label (`"V100M16"`, `"T4"`, ...); `nil` for a CPU-only server.
    public var gpuModel: String?
    public var cpuCapacity: Int
    public var memoryCapacity: Int
    public var cpuFree: Int
    public var memoryFree: Int
    /// Free milli-GPU of each card, indexed by device number. A card at 1000 is idle.
    public var gpuFree: [Int]

    /// A node with nothing allocated.
    public init(name: String, cpuMilli: Int, memoryMiB: Int, gpuCount: Int, gpuModel: String?) {
        self.name = name
        self.gpuModel = gpuCount > 0 ? gpuModel : nil
        self.cpuCapacity = cpuMilli
        self.memoryCapacity = memoryMiB
        self.cpuFree = cpuMilli
        self.memoryFree = memoryMiB
        self.gpuFree = Array(repeating: Node.wholeGPU, count: gpuCount)
    }

    public var gpuCount: Int { gpuFree.count }
    public var gpuCapacity: Int { gpuFree.count * Node.wholeGPU }

    /// Free milli-GPU summed over the cards.
    public var gpuFreeTotal: Int {
        var total = 0
        for free in gpuFree { total += free }
        return total
    }

    /// Cards with nothing allocated on them.
    public var idleGPUCount: Int {
        var count = 0
        for free in gpuFree where free == Node.wholeGPU { count += 1 }
        return count
    }

    /// Whether the node can hold the request's CPU and memory.
    @inlinable
    public func canHostCPU(of request: PlacementRequest) -> Bool {
        cpuFree >= request.cpuMilli && memoryFree >= request.memoryMiB
    }

    /// Whether the request's model constraint admits this node's cards.
    @inlinable
    public func admitsModel(of request: PlacementRequest) -> Bool {
        request.models.admits(gpuModel)
    }
}
