import Foundation
import Testing
import XPUKube

@Suite struct ClaimPlanTests {
    static func claim(results: String, config: String = "[]", uid: String = "7c1d3e5f-0000-4000-8000-000000000001") -> ResourceClaim {
        let json = """
            {"metadata":{"name":"gpu","namespace":"team-a","uid":"\(uid)"},
             "status":{"allocation":{"devices":{"results":\(results),"config":\(config)}}}}
            """
        return try! JSONDecoder().decode(ResourceClaim.self, from: Data(json.utf8))
    }

    static let oneSlice = """
        [{"request":"gpu","driver":"xpu-remote.io","pool":"xpu-remote","device":"10-0-0-5-7070-d1","shareID":"s-1",
          "consumedCapacity":{"memory":"4Gi","compute":"30"}}]
        """
    static let inventory = PoolInventory(servers: [.init(address: "10.0.0.5:7070", labels: [], deviceMemory: [16 << 30, 16 << 30])])

    func plan(_ claim: ResourceClaim) throws -> ClaimPlan {
        try ClaimPlan.make(
            claim: claim, driver: "xpu-remote.io", poolAddress: "pool:7071", hasToken: true, hasCertificateAuthority: false,
            locate: Self.inventory.locate)
    }

    @Test func consumedCapacityAndConfigBecomeThePoolsSlice() throws {
        let config = """
            [{"source":"FromClass","opaque":{"driver":"xpu-remote.io","parameters":{"apiVersion":"xpu-remote.io/v1","kind":"SliceConfig","priority":"low","placement":"pool"}}},
             {"source":"FromClaim","requests":["gpu"],"opaque":{"driver":"xpu-remote.io","parameters":{"apiVersion":"xpu-remote.io/v1","kind":"SliceConfig","priority":"high","mode":"capped","poolWait":"30s"}}}]
            """
        let plan = try plan(Self.claim(results: Self.oneSlice, config: config))
        #expect(plan.injection.target == .pool("pool:7071"))
        #expect(plan.injection.shape == SliceShape(memoryBytes: 4 << 30, computePercent: 30, priority: .high, mode: .capped))
        #expect(plan.injection.poolWait == "30s")
        #expect(plan.devices.map(\.cdiDevices) == [["xpu-remote.io/slice=7c1d3e5f-0000-4000-8000-000000000001"]])
        #expect(plan.devices.first?.shareID == "s-1")
    }

    @Test func devicePlacementReachesTheAllocatedDevice() throws {
        let config = """
            [{"source":"FromClaim","opaque":{"driver":"xpu-remote.io","parameters":{"apiVersion":"xpu-remote.io/v1","kind":"SliceConfig","placement":"device"}}}]
            """
        let plan = try plan(Self.claim(results: Self.oneSlice, config: config))
        #expect(plan.injection.target == .server("10.0.0.5:7070", device: 1))
        #expect(plan.injection.variables.first { $0.name == "XPU_SLICE" }?.value == "mem=4GiB,compute=30%,device=1")
    }

    @Test func claimsThisDriverCannotServeAreRefused() {
        let other = #"[{"request":"gpu","driver":"gpu.nvidia.com","pool":"n","device":"gpu-0"}]"#
        #expect(throws: KubeError.self) { try plan(Self.claim(results: other)) }
        let mixed = """
            [{"request":"a","driver":"xpu-remote.io","pool":"p","device":"d1","consumedCapacity":{"memory":"4Gi","compute":"30"}},
             {"request":"b","driver":"xpu-remote.io","pool":"p","device":"d2","consumedCapacity":{"memory":"8Gi","compute":"30"}}]
            """
        #expect(throws: KubeError.self) { try plan(Self.claim(results: mixed)) }
        let gone = """
            [{"request":"gpu","driver":"xpu-remote.io","pool":"p","device":"gone-d0","consumedCapacity":{"compute":"10"}}]
            """
        let device = """
            [{"source":"FromClaim","opaque":{"driver":"xpu-remote.io","parameters":{"apiVersion":"xpu-remote.io/v1","kind":"SliceConfig","placement":"device"}}}]
            """
        #expect(throws: KubeError.self) { try plan(Self.claim(results: gone, config: device)) }
    }

    @Test func misspeltConfigurationIsNotIgnored() {
        let json = #"{"apiVersion":"xpu-remote.io/v1","kind":"SliceConfig","priorty":"high"}"#
        #expect(throws: (any Error).self) { try JSONDecoder().decode(SliceConfig.self, from: Data(json.utf8)) }
    }

    @Test func twoEqualSlicesAreTwoPoolDevices() throws {
        let two = """
            [{"request":"gpu","driver":"xpu-remote.io","pool":"p","device":"d1","consumedCapacity":{"memory":"2Gi","compute":"20"}},
             {"request":"gpu","driver":"xpu-remote.io","pool":"p","device":"d2","consumedCapacity":{"memory":"2Gi","compute":"20"}}]
            """
        let plan = try plan(Self.claim(results: two))
        #expect(plan.injection.variables.contains(.init("XPU_DEVICES", "2")))
        #expect(plan.devices.map(\.cdiDevices.count) == [1, 0])
    }
}

@Suite struct ResourceSliceTests {
    @Test func devicesCarryShareableCapacities() throws {
        let inventory = PoolInventory(servers: [
            .init(address: "10.0.0.5:7070", labels: ["zone=a", "bad label=x"], deviceMemory: [80 << 30, 80 << 30]),
            .init(address: "gpu-b.example:7070", labels: [], deviceMemory: [16 << 30]),
        ])
        let publication = ResourceSlicePublication(driver: "xpu-remote.io", poolName: "xpu-remote", nodeLabels: [("xpu-remote.io/slices", "true")])
        let slices = publication.slices(of: inventory, generation: 3)
        #expect(slices.count == 1)
        let slice = try #require(slices.first)
        #expect(slice.spec.pool == .init(name: "xpu-remote", generation: 3, resourceSliceCount: 1))
        #expect(slice.spec.allNodes == nil)
        #expect(slice.spec.nodeSelector?.nodeSelectorTerms.first?.matchExpressions.first?.key == "xpu-remote.io/slices")
        #expect(slice.spec.devices.map(\.name) == ["10-0-0-5-7070-d0", "10-0-0-5-7070-d1", "gpu-b-example-7070-d0"])
        let device = slice.spec.devices[0]
        #expect(device.allowMultipleAllocations)
        #expect(device.capacity["memory"]?.value == "80Gi")
        #expect(device.capacity["compute"]?.requestPolicy?.validRange == .init(min: "10", max: "100", step: "10"))
        #expect(device.attributes["zone"]?.string == "a")
        #expect(device.attributes["server"]?.string == "10.0.0.5:7070")
        #expect(inventory.locate("gpu-b-example-7070-d0")! == ("gpu-b.example:7070", 0))
    }

    @Test func manyDevicesSpreadOverSlicesAndLongNamesStayLabels() {
        let servers = (0..<40).map { PoolInventory.Server(address: "server-\($0).a-very-long-domain-name-indeed.example.com:7070", labels: [], deviceMemory: Array(repeating: 1 << 34, count: 8)) }
        let publication = ResourceSlicePublication(driver: "xpu-remote.io", poolName: "p", nodeLabels: [])
        let slices = publication.slices(of: PoolInventory(servers: servers), generation: 1)
        #expect(slices.map(\.spec.devices.count) == [128, 128, 64])
        #expect(slices.allSatisfy { $0.spec.pool.resourceSliceCount == 3 && $0.spec.allNodes == true })
        let names = slices.flatMap { $0.spec.devices.map(\.name) }
        #expect(Set(names).count == 320)
        #expect(names.allSatisfy { $0.count <= 63 && $0.first!.isLetter || $0.first!.isNumber })
        #expect(publication.slices(of: PoolInventory(servers: []), generation: 1).map(\.spec.devices.count) == [0])
    }
}
