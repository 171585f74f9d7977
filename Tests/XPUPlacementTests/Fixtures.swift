import XPUPlacement

/// Small hand-made clusters and requests shared by the tests.
enum Fixture {
    static func node(_ name: String, cpu: Int = 32000, memory: Int = 131072, gpus: Int, model: String? = "T4", free: [Int]? = nil) -> Node {
        var node = Node(name: name, cpuMilli: cpu, memoryMiB: memory, gpuCount: gpus, gpuModel: model)
        if let free { node.gpuFree = free }
        return node
    }

    static func share(_ milli: Int, cpu: Int = 4000, memory: Int = 8192) -> PlacementRequest {
        PlacementRequest(name: "share-\(milli)", cpuMilli: cpu, memoryMiB: memory, gpuCount: 1, gpuMilli: milli)
    }

    static func whole(_ count: Int, cpu: Int = 4000, memory: Int = 8192) -> PlacementRequest {
        PlacementRequest(name: "whole-\(count)", cpuMilli: cpu, memoryMiB: memory, gpuCount: count, gpuMilli: 1000)
    }

    static func place(_ request: PlacementRequest, on nodes: [Node], policy: some PlacementPolicy, mode: PlacementMode = .local) -> Placement? {
        var random = SeededGenerator(seed: 1)
        return Placer(policy: policy, mode: mode).place(request, in: Cluster(nodes: nodes), using: &random)
    }
}
