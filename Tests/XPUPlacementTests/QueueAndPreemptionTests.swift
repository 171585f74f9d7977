import Testing
import XPUPlacement

/// The live directory's decisions that do not need a directory: the order in which waiting
/// requests are offered capacity, which slices a high-priority request preempts, and zones as
/// network cost.
@Suite struct QueueAndPreemptionTests {
    @Test func queueOffersHigherPriorityFirstThenArrivalOrder() {
        var queue = PlacementQueue<String>()
        queue.enqueue("normal-1", priority: .normal)
        queue.enqueue("low-1", priority: .bestEffort)
        queue.enqueue("high-1", priority: .high)
        queue.enqueue("normal-2", priority: .normal)
        queue.enqueue("high-2", priority: .high)
        #expect(queue.entries.map(\.ticket) == ["high-1", "high-2", "normal-1", "normal-2", "low-1"])
        var offered: [String] = []
        let placed = queue.serve { ticket in
            offered.append(ticket)
            return .placed
        }
        #expect(placed == offered)
        #expect(placed == ["high-1", "high-2", "normal-1", "normal-2", "low-1"])
        #expect(queue.isEmpty)
    }

    @Test func aWaitingRequestHoldsBackLowerPrioritiesButNotItsOwn() {
        var queue = PlacementQueue<String>()
        queue.enqueue("big-high", priority: .high)
        queue.enqueue("small-high", priority: .high)
        queue.enqueue("small-normal", priority: .normal)
        var offered: [String] = []
        let placed = queue.serve { ticket in
            offered.append(ticket)
            return ticket == "big-high" ? .waits : .placed
        }
        // The small high request passes the big one; nothing of lower priority is offered.
        #expect(offered == ["big-high", "small-high"])
        #expect(placed == ["small-high"])
        #expect(queue.entries.map(\.ticket) == ["big-high", "small-normal"])
        // Once the big one leaves (placed, timed out or gone), the rest is offered again.
        queue.remove("big-high")
        #expect(queue.serve { _ in .placed } == ["small-normal"])
        #expect(!queue.contains("small-normal"))
    }

    @Test func aRequestWaitingPastThePassingWindowHoldsBackItsOwnPriorityToo() {
        let start = ContinuousClock.now
        var queue = PlacementQueue<String>(passingWindow: .seconds(30))
        queue.enqueue("big", priority: .normal, at: start)
        queue.enqueue("small-1", priority: .normal, at: start + .seconds(1))
        queue.enqueue("low", priority: .bestEffort, at: start + .seconds(1))
        let offer: (String) -> PlacementQueue<String>.Offer = { $0 == "big" ? .waits : .placed }
        // Young: the small request passes, the low one waits behind the big one.
        #expect(queue.serve(now: start + .seconds(29), offer) == ["small-1"])
        queue.enqueue("small-2", priority: .normal, at: start + .seconds(29))
        // Past the window: no one of its priority (or below) is offered capacity before it.
        var offered: [String] = []
        #expect(queue.serve(now: start + .seconds(30)) { offered.append($0); return offer($0) }.isEmpty)
        #expect(offered == ["big"])
        // Placed at last, it lets the rest through.
        #expect(queue.serve(now: start + .seconds(31)) { _ in .placed } == ["big", "small-2", "low"])
        // A window of zero is strict arrival order within a priority.
        var strict = PlacementQueue<String>(passingWindow: .zero)
        strict.enqueue("big", priority: .high, at: start)
        strict.enqueue("small", priority: .high, at: start)
        #expect(strict.serve(now: start, offer).isEmpty)
    }

    @Test func aRequestThatFitsNowhereHoldsBackNoOne() {
        var queue = PlacementQueue<String>(passingWindow: .zero)
        queue.enqueue("huge", priority: .high)
        queue.enqueue("small-high", priority: .high)
        queue.enqueue("small-low", priority: .bestEffort)
        #expect(queue.serve { $0 == "huge" ? .fitsNowhere : .placed } == ["small-high", "small-low"])
        #expect(queue.entries.map(\.ticket) == ["huge"])
    }

    /// One card of 1000 MiB (CPU and memory dimensions carry the memory, as in the directory).
    static func device(free: Int, gpuFree: Int = 1000) -> Node {
        var node = Node(name: "d", cpuMilli: 1000, memoryMiB: 1000, gpuCount: 1, gpuModel: "device")
        node.cpuFree = free
        node.memoryFree = free
        node.gpuFree = [gpuFree]
        return node
    }

    static func slice(_ id: UInt64, node: Int = 0, memory: Int, gpu: Int = 0, priority: Priority = .bestEffort) -> RunningSlice {
        RunningSlice(id: id, node: node, gpu: 0, cpuMilli: memory, memoryMiB: memory, gpuMilli: gpu, priority: priority)
    }

    static func request(memory: Int, gpu: Int = 0, priority: Priority = .high) -> PlacementRequest {
        PlacementRequest(name: "r", cpuMilli: memory, memoryMiB: memory, gpuCount: 1, gpuMilli: gpu, priority: priority)
    }

    @Test func preemptionEndsTheFewestSlicesThenTheLeastMemory() {
        let cluster = Cluster(nodes: [Self.device(free: 100)])
        let running = [Self.slice(1, memory: 300), Self.slice(2, memory: 200), Self.slice(3, memory: 400)]
        // 350 MiB needs 250 more: one slice does it; of those that do (300, 400), the smaller.
        let choice = Preemption.victims(for: Self.request(memory: 350), in: cluster, running: running)
        #expect(choice?.node == 0)
        #expect(choice?.victims.map(\.id) == [1])
        // 800 MiB needs 700 more: two slices (300 + 400) rather than three.
        #expect(Preemption.victims(for: Self.request(memory: 800), in: cluster, running: running)?.victims.map(\.id) == [1, 3])
        // More than everything low holds: nothing is preempted.
        #expect(Preemption.victims(for: Self.request(memory: 1001), in: cluster, running: running) == nil)
    }

    @Test func onlyHighPreemptsAndOnlyLowIsPreempted() {
        let cluster = Cluster(nodes: [Self.device(free: 0), Self.device(free: 0)])
        let running = [
            Self.slice(1, node: 0, memory: 500, priority: .normal), Self.slice(2, node: 0, memory: 500, priority: .high),
            Self.slice(3, node: 1, memory: 600), Self.slice(4, node: 1, memory: 400, priority: .normal),
        ]
        #expect(Preemption.victims(for: Self.request(memory: 500, priority: .normal), in: cluster, running: running) == nil)
        let choice = Preemption.victims(for: Self.request(memory: 500), in: cluster, running: running)
        #expect(choice?.node == 1)
        #expect(choice?.victims.map(\.id) == [3])
        #expect(Preemption.victims(for: Self.request(memory: 700), in: cluster, running: running) == nil)
        #expect(Preemption.allows(.high, toPreempt: .bestEffort))
        #expect(!Preemption.allows(.high, toPreempt: .normal))
        #expect(!Preemption.allows(.normal, toPreempt: .bestEffort))
    }

    @Test func preemptionFreesComputeShareToo() {
        // Memory is plenty; the card's compute share is what is missing.
        let cluster = Cluster(nodes: [Self.device(free: 900, gpuFree: 200)])
        let running = [Self.slice(1, memory: 10, gpu: 300), Self.slice(2, memory: 10, gpu: 500)]
        #expect(Preemption.victims(for: Self.request(memory: 100, gpu: 500), in: cluster, running: running)?.victims.map(\.id) == [1])
        #expect(Preemption.victims(for: Self.request(memory: 100, gpu: 700), in: cluster, running: running)?.victims.map(\.id) == [2])
        #expect(Preemption.victims(for: Self.request(memory: 100, gpu: 900), in: cluster, running: running)?.victims.map(\.id) == [1, 2])
    }

    @Test func zonesBreakTiesTowardTheClient() {
        let nodes = [Self.device(free: 500), Self.device(free: 500)].enumerated().map { index, node in
            var named = node
            named.name = "server-\(index)"
            return named
        }
        let zones = ZoneNetworkCost(zones: ["server-0": "a", "server-1": "b"])
        var random = SeededGenerator(seed: 1)
        var request = Self.request(memory: 100, priority: .normal)
        let placer = Placer(policy: BestFitPolicy(), networkCost: zones)
        #expect(placer.place(request, in: Cluster(nodes: nodes), using: &random)?.gpuNode == 0, "no zone: the first node")
        request.origin = "b"
        #expect(placer.place(request, in: Cluster(nodes: nodes), using: &random)?.gpuNode == 1)
        #expect(zones.cost(from: nil, to: nodes[1]) == 0)
        #expect(zones.cost(from: "a", to: nodes[1]) == 1)
    }
}
