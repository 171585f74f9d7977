import Testing
import XPUPlacement

@Suite struct FragmentationTests {
    @Test func sharesStrandSmallRemainders() {
        // One shape, 0.5 GPU: cards with less than 500 free are fragments.
        let demand = DemandDistribution(shapes: [.init(cpuMilli: 1000, gpuCount: 1, gpuMilli: 500, frequency: 1)])
        let node = Fixture.node("n", gpus: 4, free: [1000, 400, 500, 100])
        #expect(Fragmentation.expected(of: node, under: demand, cpuBindsGPU: true) == 500)
    }

    @Test func aShapeThatCannotFitMakesEverythingAFragment() {
        let twoCards = DemandDistribution(shapes: [.init(cpuMilli: 1000, gpuCount: 2, gpuMilli: 1000, frequency: 1)])
        let node = Fixture.node("n", gpus: 2, free: [1000, 600])
        #expect(Fragmentation.expected(of: node, under: twoCards, cpuBindsGPU: true) == 1600)
        // Too little CPU: every free milli-GPU is a fragment, unless CPU does not bind (remote).
        let hungry = DemandDistribution(shapes: [.init(cpuMilli: 64000, gpuCount: 1, gpuMilli: 500, frequency: 1)])
        #expect(Fragmentation.expected(of: node, under: hungry, cpuBindsGPU: true) == 1600)
        #expect(Fragmentation.expected(of: node, under: hungry, cpuBindsGPU: false) == 0)
    }

    @Test func expectationWeighsShapesByFrequency() {
        let demand = DemandDistribution(shapes: [
            .init(cpuMilli: 0, gpuCount: 0, gpuMilli: 0, frequency: 0.25),  // CPU-only: all idle
            .init(cpuMilli: 1000, gpuCount: 1, gpuMilli: 1000, frequency: 0.5),  // whole card
            .init(cpuMilli: 1000, gpuCount: 1, gpuMilli: 300, frequency: 0.25),
        ])
        let node = Fixture.node("n", gpus: 2, free: [1000, 200])
        // 0.25 * 1200 + 0.5 * 200 + 0.25 * 200
        #expect(Fragmentation.expected(of: node, under: demand, cpuBindsGPU: true) == 450)
    }

    @Test func candidateEvaluationMatchesTheChangedNode() {
        let demand = DemandDistribution(shapes: [
            .init(cpuMilli: 4000, gpuCount: 1, gpuMilli: 300, frequency: 0.4),
            .init(cpuMilli: 30000, gpuCount: 2, gpuMilli: 1000, frequency: 0.6),
        ])
        let node = Fixture.node("n", gpus: 4, free: [1000, 700, 1000, 250])
        var changed = node
        changed.gpuFree[1] -= 500
        changed.cpuFree -= 3000
        let direct = Fragmentation.expected(of: changed, under: demand, cpuBindsGPU: true)
        let virtual = Fragmentation.expected(
            of: node, taking: .share(1), milli: 500, cpuTaken: 3000, under: demand, cpuBindsGPU: true)
        #expect(direct == virtual)
        var twoTaken = node
        twoTaken.gpuFree[0] = 0
        twoTaken.gpuFree[2] = 0
        #expect(
            Fragmentation.expected(of: twoTaken, under: demand, cpuBindsGPU: true)
                == Fragmentation.expected(of: node, taking: .idle(2), milli: 1000, cpuTaken: 0, under: demand, cpuBindsGPU: true))
    }

    @Test func clusterRateIsFragmentsOverIdle() {
        let demand = DemandDistribution(shapes: [.init(cpuMilli: 1000, gpuCount: 1, gpuMilli: 500, frequency: 1)])
        let cluster = Cluster(nodes: [Fixture.node("a", gpus: 1, free: [400]), Fixture.node("b", gpus: 1)])
        #expect(Fragmentation.rate(of: cluster, under: demand, cpuBindsGPU: true) == 400.0 / 1400.0)
    }

    @Test func demandKeepsTheMostFrequentShapes() {
        var requests = Array(repeating: Fixture.share(500), count: 18)
        requests += [Fixture.whole(1), Fixture.whole(8)]
        let demand = DemandDistribution(requests: requests, coverage: 0.9)
        #expect(demand.gpuShapes.count == 1)
        #expect(demand.gpuShapes[0].frequency == 1)
        #expect(DemandDistribution(requests: requests).gpuShapes.count == 2)
    }
}
