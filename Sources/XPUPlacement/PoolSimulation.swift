/// A trace-driven replay of the pool: the tuned workload placed request by request, in order,
/// with no departures; a request that fits nowhere fails and is skipped. The FGD simulator's
/// protocol, run on the placement code the directory uses.
public struct PoolSimulation: Sendable {
    public var nodes: [Node]
    public var trace: [PlacementRequest]
    public var policy: NamedPolicy.Name
    public var mode: PlacementMode
    /// Every GPU request takes whole cards (a share of a card becomes a whole card): the pool
    /// without slicing.
    public var wholeCards: Bool
    public var tuning: WorkloadTuning
    /// How equal candidates are decided; the FGD simulator's scheduler takes the first node.
    public var tieBreak: TieBreak = .firstNode

    public init(
        nodes: [Node], trace: [PlacementRequest], policy: NamedPolicy.Name, mode: PlacementMode = .local,
        wholeCards: Bool = false, tuning: WorkloadTuning = WorkloadTuning()
    ) {
        self.nodes = nodes
        self.trace = trace
        self.policy = policy
        self.mode = mode
        self.wholeCards = wholeCards
        self.tuning = tuning
    }

    /// The demand distribution FGD targets, and the one fragmentation is measured against: the
    /// trace's requests as the pool will see them (whole cards when slicing is off).
    public var demand: DemandDistribution {
        DemandDistribution(requests: wholeCards ? trace.map { $0.wholeCards() } : trace)
    }

    /// Replays the workload tuned with `seed`. `progress` is called with (placed, total) every
    /// `progressEvery` requests.
    public func run(
        seed: UInt64, progressEvery: Int = 500, progress: ((Int, Int) -> Void)? = nil
    ) -> ReplayOutcome {
        // The pool's node order is shuffled by the seed, as the FGD simulator prefixes node names
        // with a random permutation; equal candidates go to the first node in that order.
        var order = SeededGenerator(seed: seed ^ 0x5DEE_CE66_D1CE_5EED)
        var shuffled = nodes
        order.shuffle(&shuffled)
        var cluster = Cluster(nodes: shuffled)
        let capacity = cluster.gpuCapacity
        let workload = tuning.workload(from: trace, gpuCapacity: capacity, seed: seed)
        let demand = self.demand
        let placer = Placer(policy: NamedPolicy(policy, demand: demand), mode: mode, tieBreak: tieBreak)
        var random = SeededGenerator(seed: seed ^ 0x0DDB_A11C_0FFE_E000)
        var outcome = ReplayOutcome(seed: seed, gpuCapacity: capacity, tasks: workload.count)
        var arrived = 0
        var served = 0
        var nextSample = 0.0
        for (number, asked) in workload.enumerated() {
            let request = wholeCards ? asked.wholeCards() : asked
            arrived += asked.totalGPUMilli
            if let placement = placer.place(request, in: cluster, using: &random) {
                cluster.commit(request, at: placement)
                served += asked.totalGPUMilli
                if !placement.isLocal { outcome.remoteTasks += 1 }
            } else {
                outcome.failedTasks += 1
                if asked.gpuCount > 0 { outcome.failedGPUTasks += 1 }
                outcome.failedGPUMilli += asked.totalGPUMilli
                outcome.failedByKind[RequestKind(asked), default: 0] += 1
            }
            let arrivedShare = Double(arrived) / Double(max(capacity, 1))
            if arrivedShare >= nextSample || number == workload.count - 1 {
                outcome.samples.append(
                    ReplayOutcome.Sample(
                        arrived: arrivedShare, allocation: cluster.gpuAllocationRate,
                        served: Double(served) / Double(max(capacity, 1))))
                nextSample = arrivedShare + 0.01
            }
            if let progress, (number + 1) % progressEvery == 0 { progress(number + 1, workload.count) }
        }
        outcome.arrivedGPUMilli = arrived
        outcome.allocatedGPUMilli = cluster.gpuAllocated
        outcome.servedGPUMilli = served
        let fragments = Fragmentation.amounts(
            of: cluster, under: demand, cpuBindsGPU: PlacementContext(mode: mode, scale: cluster.largestNode).cpuBindsGPU)
        outcome.fragmentedGPUMilli = fragments.fragments
        outcome.idleGPUMilli = fragments.idle
        return outcome
    }
}

/// What one replay ended with.
public struct ReplayOutcome: Hashable, Sendable {
    /// The pool's state after a prefix of the workload had arrived.
    public struct Sample: Hashable, Sendable {
        /// Milli-GPU asked so far over the pool's milli-GPU (reaches about 1.3).
        public var arrived: Double
        /// Allocated milli-GPU over the pool's milli-GPU.
        public var allocation: Double
        /// Milli-GPU asked by the requests placed so far over the pool's milli-GPU (less than
        /// `allocation` when whole cards hold shares).
        public var served: Double
    }

    public var seed: UInt64
    public var gpuCapacity: Int
    public var tasks: Int
    public var failedTasks = 0
    public var failedGPUTasks = 0
    public var failedGPUMilli = 0
    /// Placed requests whose CPU side runs on another server than their GPUs.
    public var remoteTasks = 0
    public var arrivedGPUMilli = 0
    public var allocatedGPUMilli = 0
    public var servedGPUMilli = 0
    public var fragmentedGPUMilli = 0.0
    public var idleGPUMilli = 0
    public var samples: [Sample] = []
    /// Failed requests by kind of GPU demand.
    public var failedByKind: [RequestKind: Int] = [:]

    public init(seed: UInt64, gpuCapacity: Int, tasks: Int) {
        self.seed = seed
        self.gpuCapacity = gpuCapacity
        self.tasks = tasks
    }

    /// Allocated milli-GPU over the pool's milli-GPU: the FGD paper's GPU allocation rate.
    public var allocationRate: Double { ratio(allocatedGPUMilli) }
    /// Milli-GPU asked by placed requests over the pool's milli-GPU: equal to the allocation rate
    /// with slicing, lower with whole cards (a 0.3-GPU task holds a whole card).
    public var servedRate: Double { ratio(servedGPUMilli) }
    /// Share of the idle milli-GPU that the workload's demand cannot use (FGD's fragmentation).
    public var fragmentationRate: Double { idleGPUMilli == 0 ? 0 : fragmentedGPUMilli / Double(idleGPUMilli) }

    private func ratio(_ milli: Int) -> Double { gpuCapacity == 0 ? 0 : Double(milli) / Double(gpuCapacity) }
}

/// A coarse class of request, to tell which kinds of work a policy turns away.
public enum RequestKind: String, Hashable, Sendable, CaseIterable, Comparable {
    case cpuOnly = "cpu-only"
    case sharedGPU = "shared-gpu"
    case oneGPU = "1-gpu"
    case multiGPU = "multi-gpu"

    public init(_ request: PlacementRequest) {
        if request.gpuCount == 0 {
            self = .cpuOnly
        } else if request.isShared {
            self = .sharedGPU
        } else if request.gpuCount == 1 {
            self = .oneGPU
        } else {
            self = .multiGPU
        }
    }

    public static func < (lhs: RequestKind, rhs: RequestKind) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
