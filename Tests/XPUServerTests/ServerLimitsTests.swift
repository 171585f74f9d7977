import Testing
import XPUAdmission

@testable import XPUServer

@Suite("Server limits: tenants per device and allowed slices")
struct ServerLimitsTests {
    static func request(_ text: String) throws -> SliceRequest { try SliceRequest(parsing: text) }

    @Test("No limits allow every slice, and no slice")
    func unlimited() throws {
        let limits = ServerLimits()
        for text in ["", "mem=1TiB", "compute=33.3", "priority=high,mode=capped"] {
            #expect(limits.refusal(for: try Self.request(text)) == nil, "\(text)")
        }
    }

    @Test("Memory bounds refuse sizes outside them, and sessions that ask for none")
    func memory() throws {
        let limits = ServerLimits(minMemoryBytes: 256 << 20, maxMemoryBytes: 4 << 30)
        #expect(limits.refusal(for: try Self.request("mem=256MiB")) == nil)
        #expect(limits.refusal(for: try Self.request("mem=4GiB,compute=50")) == nil)
        #expect(limits.refusal(for: try Self.request("mem=255MiB"))?.contains("outside the slice sizes") == true)
        #expect(limits.refusal(for: try Self.request("mem=5GiB"))?.contains("268435456 to 4294967296 bytes") == true)
        #expect(limits.refusal(for: try Self.request(""))?.contains("ask for one with XPU_SLICE=mem=SIZE") == true)
        #expect(limits.refusal(for: try Self.request("compute=50"))?.contains("mem=") == true)
        // Only a maximum: any size up to it.
        #expect(ServerLimits(maxMemoryBytes: 1 << 30).refusal(for: try Self.request("mem=1")) == nil)
    }

    @Test("Compute bounds and steps")
    func compute() throws {
        let limits = ServerLimits(minComputePercent: 10, maxComputePercent: 50, computeStepPercent: 10)
        for allowed in ["compute=10", "compute=30%", "compute=50"] {
            #expect(limits.refusal(for: try Self.request(allowed)) == nil, "\(allowed)")
        }
        for refused in ["compute=5", "compute=25", "compute=60", "compute=33.3"] {
            #expect(limits.refusal(for: try Self.request(refused))?.contains("10% to 50% in steps of 10%") == true, "\(refused)")
        }
        #expect(limits.refusal(for: try Self.request("mem=1GiB"))?.contains("compute=PCT%") == true)
        // A step alone: multiples of it from one step up to 100%.
        let steps = ServerLimits(computeStepPercent: 12.5)
        #expect(steps.refusal(for: try Self.request("compute=37.5")) == nil)
        #expect(steps.refusal(for: try Self.request("compute=40")) != nil)
    }

    @Test("Priorities and modes")
    func prioritiesAndModes() throws {
        let limits = ServerLimits(priorities: [.low, .normal], modes: [.capped])
        #expect(limits.refusal(for: try Self.request("mode=capped")) == nil)
        #expect(limits.refusal(for: try Self.request("priority=high,mode=capped")) == "priority=high is not allowed on this server (allowed: low, normal)")
        // No mode asked: guaranteed, which is not allowed here.
        #expect(limits.refusal(for: try Self.request("priority=low")) == "mode=guaranteed is not allowed on this server (allowed: capped)")
    }

    @Test("Flags override the policy file's limits one by one; contradictions are found")
    func overridingAndConsistency() {
        let file = ServerLimits(maxTenantsPerDevice: 4, minMemoryBytes: 1 << 20, maxMemoryBytes: 1 << 30)
        let merged = file.overridden(by: ServerLimits(maxTenantsPerDevice: 2, modes: [.guaranteed]))
        #expect(merged == ServerLimits(maxTenantsPerDevice: 2, minMemoryBytes: 1 << 20, maxMemoryBytes: 1 << 30, modes: [.guaranteed]))
        #expect(merged.summary == "maxTenantsPerDevice=2 mem=1048576 to 1073741824 bytes modes=guaranteed")
        #expect(ServerLimits().inconsistency == nil)
        #expect(ServerLimits(maxTenantsPerDevice: 0).inconsistency != nil)
        #expect(ServerLimits(minMemoryBytes: 2, maxMemoryBytes: 1).inconsistency != nil)
        #expect(ServerLimits(minComputePercent: 60, maxComputePercent: 50).inconsistency != nil)
        #expect(ServerLimits(computeStepPercent: 0).inconsistency != nil)
        #expect(ServerLimits(priorities: []).inconsistency != nil)
    }

    @Test("The policy file carries limits and per-tenant session limits")
    func policyFile() throws {
        let json = """
            { "limits": { "maxTenantsPerDevice": 3, "minMemory": "64MiB", "maxMemory": "2GiB", "minCompute": 10,
                          "maxCompute": 90, "computeStep": 10, "priorities": ["low", "normal"], "modes": ["guaranteed"] },
              "tenants": [ { "name": "a", "certificateCommonName": "a", "maxSessions": 2 } ] }
            """
        let policy = try AccessPolicy(json: Array(json.utf8))
        #expect(
            policy.limits
                == ServerLimits(
                    maxTenantsPerDevice: 3, minMemoryBytes: 64 << 20, maxMemoryBytes: 2 << 30, minComputePercent: 10,
                    maxComputePercent: 90, computeStepPercent: 10, priorities: [.low, .normal], modes: [.guaranteed]))
        #expect(policy.tenants[0].maxSessions == 2)
        #expect(try AccessPolicy(json: Array(#"{ "tenants": [] }"#.utf8)).limits == ServerLimits())
        for (bad, message) in [
            (#"{ "limits": { "maxMemory": "lots" }, "tenants": [] }"#, "maxMemory 'lots'"),
            (#"{ "limits": { "minCompute": 50, "maxCompute": 40 }, "tenants": [] }"#, "limits: the slice compute minimum"),
            (#"{ "limits": { "modes": ["sometimes"] }, "tenants": [] }"#, "not a policy file"),
            (#"{ "tenants": [ { "name": "a", "certificateCommonName": "a", "maxSessions": 0 } ] }"#, "maxSessions must be at least 1"),
        ] {
            #expect(throws: PolicyError.self) { try AccessPolicy(json: Array(bad.utf8)) }
            do {
                _ = try AccessPolicy(json: Array(bad.utf8))
            } catch {
                #expect(error.message.contains(message), "\(error.message)")
            }
        }
    }

    @Test("A tenant's sessions are counted against its maxSessions and given back")
    func tenantSessions() throws {
        let policy = try AccessPolicy(
            tenants: [.init(name: "a", certificateCommonName: "a", maxSessions: 2), .init(name: "b", certificateCommonName: "b")])
        let authenticator = Authenticator(policy: policy)
        #expect(authenticator.openSession(of: "a") == nil)
        #expect(authenticator.openSession(of: "a") == nil)
        #expect(authenticator.openSession(of: "a") == "not authorized: tenant 'a' already has 2 sessions open (policy allows 2)")
        for _ in 0..<10 { #expect(authenticator.openSession(of: "b") == nil) }
        authenticator.closeSession(of: "a")
        #expect(authenticator.openSession(of: "a") == nil)
    }
}
