import Testing
import XPUPlacement

@Suite struct TraceTests {
    static let nodesCSV = """
        sn,cpu_milli,memory_mib,gpu,model
        openb-node-0000,32000,262144,0,
        openb-node-0001,64000,262144,2,P100\r
        """

    static let podsCSV = """
        name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time
        openb-pod-0000,12000,16384,1,1000,,LS,Running,0,12537496,0
        openb-pod-0001,6000,12288,1,460,V100M16|V100M32,BE,Running,427061,12902960,427061
        openb-pod-0002,8000,30517,0,0,,Burstable,Running,0,1,0
        openb-pod-0003,88000,30517,8,1000,,LS,Running,0,1,0

        """

    @Test func readsNodes() throws {
        let nodes = try TraceCSV.nodes(fromCSV: Self.nodesCSV)
        #expect(nodes.count == 2)
        #expect(nodes[0].gpuModel == nil && nodes[0].gpuCount == 0)
        #expect(nodes[1].gpuModel == "P100" && nodes[1].gpuFree == [1000, 1000] && nodes[1].cpuFree == 64000)
    }

    @Test func readsRequests() throws {
        let requests = try TraceCSV.requests(fromCSV: Self.podsCSV)
        #expect(requests.count == 4)
        #expect(requests[1].isShared && requests[1].gpuMilli == 460)
        #expect(requests[1].models == ModelConstraint(["V100M16", "V100M32"]))
        #expect(requests[1].priority == .bestEffort && requests[0].priority == .high)
        #expect(requests[2].gpuCount == 0 && requests[2].totalGPUMilli == 0)
        #expect(requests[3].totalGPUMilli == 8000)
    }

    @Test func readsTheShortVariant() throws {
        let requests = try TraceCSV.requests(fromCSV: "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,2,1,50\n")
        #expect(requests == [PlacementRequest(name: "p", cpuMilli: 1, memoryMiB: 2, gpuCount: 1, gpuMilli: 50)])
    }

    @Test func reportsBadInput() {
        #expect(throws: TraceFormatError.self) { try TraceCSV.nodes(fromCSV: "sn,cpu_milli\nx,1\n") }
        do {
            _ = try TraceCSV.requests(fromCSV: "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,2,x,50\n")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .badNumber && error.line == 2)
        }
    }
}
