import Testing
import XPUPlacement

@Suite struct PolicyTests {
    let nodes = [
        Fixture.node("half", gpus: 2, free: [500, 1000]),
        Fixture.node("idle", gpus: 2),
        Fixture.node("tight", gpus: 2, free: [300, 0]),
    ]

    @Test func bestFitTakesTheTightestNodeAndCard() {
        let placement = Fixture.place(Fixture.share(250), on: nodes, policy: BestFitPolicy())
        #expect(placement == Placement(gpuNode: 2, gpuIndices: [0], hostNode: 2))
    }

    @Test func spreadTakesTheEmptiestNodeAndCard() {
        let placement = Fixture.place(Fixture.share(250), on: nodes, policy: SpreadPolicy())
        #expect(placement?.gpuNode == 1)
    }

    @Test func loadTakesTheLeastAllocatedNode() {
        let placement = Fixture.place(Fixture.share(250), on: nodes, policy: LoadPolicy())
        #expect(placement?.gpuNode == 1)
        // A measured busy time overrides the allocated share.
        let measured = LoadPolicy(measuredBusy: ["idle": 0.9, "half": 0.1, "tight": 0.5])
        #expect(Fixture.place(Fixture.share(250), on: nodes, policy: measured)?.gpuNode == 0)
        // On the chosen node, the card with the most free share.
        #expect(Fixture.place(Fixture.share(250), on: nodes, policy: measured)?.gpuIndices == [1])
    }

    @Test func fgdKeepsWholeCardsForWholeCardDemand() {
        // Demand is all whole cards: a share placed on the idle node would strand the rest of a
        // card; on the half-used card it strands nothing new.
        let demand = DemandDistribution(shapes: [.init(cpuMilli: 1000, gpuCount: 1, gpuMilli: 1000, frequency: 1)])
        let placement = Fixture.place(Fixture.share(500), on: nodes, policy: FGDPolicy(demand: demand, resolution: 0))
        #expect(placement == Placement(gpuNode: 0, gpuIndices: [0], hostNode: 0))
    }

    @Test func fgdAvoidsCardsItWouldLeaveUnusable() {
        // Demand is 0.5-GPU shares: taking 0.3 of the 0.5 card leaves 0.2 nobody can use, taking
        // 0.3 of a whole card leaves 0.7, still enough for a share.
        let demand = DemandDistribution(shapes: [.init(cpuMilli: 1000, gpuCount: 1, gpuMilli: 500, frequency: 1)])
        let single = [Fixture.node("a", gpus: 2, free: [500, 1000])]
        let placement = Fixture.place(Fixture.share(300), on: single, policy: FGDPolicy(demand: demand, resolution: 0))
        #expect(placement?.gpuIndices == [1])
    }

    @Test func wholeCardRequestsTakeIdleCardsOnOneNode() {
        let placement = Fixture.place(Fixture.whole(2), on: nodes, policy: BestFitPolicy())
        #expect(placement == Placement(gpuNode: 1, gpuIndices: [0, 1], hostNode: 1))
        #expect(Fixture.place(Fixture.whole(3), on: nodes, policy: BestFitPolicy()) == nil)
    }

    @Test func cpuAndMemoryAndModelMustFit() {
        let small = [Fixture.node("small", cpu: 2000, gpus: 1)]
        #expect(Fixture.place(Fixture.share(100, cpu: 4000), on: small, policy: BestFitPolicy()) == nil)
        #expect(Fixture.place(Fixture.share(100, cpu: 1000, memory: 1 << 30), on: small, policy: BestFitPolicy()) == nil)
        var v100 = Fixture.share(100, cpu: 1000)
        v100.models = ModelConstraint(spec: "V100M16|V100M32")
        #expect(Fixture.place(v100, on: small, policy: BestFitPolicy()) == nil)
        v100.models = ModelConstraint(spec: "T4")
        #expect(Fixture.place(v100, on: small, policy: BestFitPolicy()) != nil)
    }

    @Test func equalCandidatesGoToTheFirstNode() {
        let twins = [Fixture.node("a", gpus: 1), Fixture.node("b", gpus: 1)]
        #expect(Fixture.place(Fixture.share(100), on: twins, policy: BestFitPolicy())?.gpuNode == 0)
    }

    @Test func networkCostBreaksTies() {
        let twins = [Fixture.node("a", gpus: 1), Fixture.node("b", gpus: 1)]
        var request = Fixture.share(100)
        request.origin = "b"
        var random = SeededGenerator(seed: 1)
        let placer = Placer(policy: BestFitPolicy(), networkCost: TableNetworkCost(costs: [:]))
        #expect(placer.place(request, in: Cluster(nodes: twins), using: &random)?.gpuNode == 1)
    }

    @Test func namedPoliciesResolve() {
        let demand = DemandDistribution(shapes: [])
        for name in NamedPolicy.Name.allCases {
            #expect(NamedPolicy(name, demand: demand).name == name.rawValue)
        }
    }
}
