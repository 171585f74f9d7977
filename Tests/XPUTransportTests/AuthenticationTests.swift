import Synchronization
import Testing
import XPUAdmission
import XPUTransport

@testable import XPUServer

@Suite("Slice requests, policy and authentication")
struct AuthenticationTests {
    static let tokenA = "s3cret-token-of-tenant-a"
    static let tokenB = "another-token-for-b"

    static let policyJSON = """
        { "tenants": [
            { "name": "tenant-a", "tokenSHA256": "\(TokenDigest.hex(tokenDigest(tokenA)))",
              "devices": [0], "maxMemory": "2GiB", "maxCompute": 50, "maxPriority": "normal" },
            { "name": "tenant-b", "tokenSHA256": "\(TokenDigest.hex(tokenDigest(tokenB)).uppercased())",
              "certificateCommonName": "tenant-b-client", "maxPriority": "high" },
            { "name": "cert-only", "certificateCommonName": "tenant-a", "maxMemory": "512MiB" } ] }
        """

    static func policy() throws -> AccessPolicy { try AccessPolicy(json: Array(policyJSON.utf8)) }

    @Test("Slice strings parse into memory, compute, priority and device")
    func sliceParsing() throws {
        let slice = try SliceRequest(parsing: "mem=8GiB, compute=30%,priority=high,device=1")
        #expect(slice == SliceRequest(memoryBytes: 8 << 30, computePercent: 30, priority: .high, device: 1))
        #expect(try SliceRequest(parsing: "") == SliceRequest())
        #expect(try SliceRequest(parsing: "mem=512M,compute=12.5").memoryBytes == 512 << 20)
        for bad in ["mem", "mem=lots", "compute=0", "compute=101%", "priority=urgent", "device=-1", "gpus=2", "mem=1G,mem=2G", "mem=99999999999T"] {
            #expect(throws: SliceRequestError.self, "'\(bad)' must be refused") { try SliceRequest(parsing: bad) }
        }
    }

    @Test("The policy file parses; mistakes in it are reported")
    func policyFile() throws {
        let policy = try Self.policy()
        #expect(policy.tenants.map(\.name) == ["tenant-a", "tenant-b", "cert-only"])
        #expect(policy.tenants[0].maxMemoryBytes == 2 << 30 && policy.tenants[0].maxComputePercent == 50)
        #expect(policy.tenants[1].maxPriority == .high && policy.tenants[1].devices == nil)
        for (json, message) in [
            (#"{"tenants":[{"name":"x"}]}"#, "neither tokenSHA256 nor certificateCommonName"),
            (#"{"tenants":[{"name":"x","tokenSHA256":"abc"}]}"#, "64 hex digits"),
            (#"{"tenants":[{"name":"x","certificateCommonName":"a"},{"name":"x","certificateCommonName":"b"}]}"#, "unique"),
            (#"{"tenants":[{"name":"x","certificateCommonName":"a","maxMemory":"big"}]}"#, "not a size"),
            (#"{"tenants":[{"name":"x","certificateCommonName":"a","maxPriority":"urgent"}]}"#, "not a policy file"),
            ("not json", "not a policy file"),
        ] {
            let error = #expect(throws: PolicyError.self) { try AccessPolicy(json: Array(json.utf8)) }
            #expect(error?.message.contains(message) == true, "\(json): \(String(describing: error))")
        }
    }

    @Test("A valid token is admitted as its tenant, with a slice within the policy")
    func admitted() throws {
        let authenticator = Authenticator(policy: try Self.policy())
        #expect(
            authenticator.decide(token: Self.tokenA, certificateCommonName: nil, slice: "mem=1GiB,compute=50%,device=0", peer: "10.0.0.1")
                == .admitted(tenant: "tenant-a", slice: SliceRequest(memoryBytes: 1 << 30, computePercent: 50, device: 0)))
        // Uppercase hex in the file works the same.
        #expect(
            authenticator.decide(token: Self.tokenB, certificateCommonName: nil, slice: "priority=high", peer: "10.0.0.1")
                == .admitted(tenant: "tenant-b", slice: SliceRequest(priority: .high)))
    }

    @Test("A client certificate's name identifies its tenant when no token is given")
    func certificateIdentity() throws {
        let authenticator = Authenticator(policy: try Self.policy())
        #expect(
            authenticator.decide(token: "", certificateCommonName: "tenant-b-client", slice: "", peer: "p")
                == .admitted(tenant: "tenant-b", slice: SliceRequest()))
        guard case .refused(let reason, _, _) = authenticator.decide(token: "", certificateCommonName: "stranger", slice: "", peer: "p") else {
            Issue.record("an unknown certificate must be refused")
            return
        }
        #expect(reason.contains("client certificate 'stranger' is not in the policy"))
    }

    @Test("Wrong or missing tokens are refused with a clear reason that never contains the token")
    func refused() throws {
        let authenticator = Authenticator(policy: try Self.policy())
        let wrong = "not-the-token-\(Self.tokenA)"
        guard case .refused(let reason, let log, _) = authenticator.decide(token: wrong, certificateCommonName: nil, slice: "", peer: "a") else {
            Issue.record("a wrong token must be refused")
            return
        }
        #expect(reason.contains("authentication failed") && log)
        #expect(!reason.contains(wrong) && !reason.contains(Self.tokenA))
        guard case .refused(let missing, _, _) = authenticator.decide(token: "", certificateCommonName: nil, slice: "", peer: "b") else {
            Issue.record("no identity must be refused")
            return
        }
        #expect(missing.contains("authentication required") && missing.contains("XPU_TOKEN"))
    }

    @Test("A tenant may not ask for more than its policy allows", arguments: [
        ("mem=3GiB", "mem="), ("compute=60%", "compute="), ("priority=high", "priority=high"), ("device=1", "device 1"),
        ("mem=lots", "bad slice request"),
    ])
    func overPolicy(slice: String, expected: String) throws {
        let authenticator = Authenticator(policy: try Self.policy())
        guard case .refused(let reason, _, _) = authenticator.decide(token: Self.tokenA, certificateCommonName: nil, slice: slice, peer: "c")
        else {
            Issue.record("\(slice) must be refused for tenant-a")
            return
        }
        #expect(reason.contains(expected), "\(slice): \(reason)")
        // Authorization refusals do not count as failed authentications.
        #expect(
            authenticator.decide(token: Self.tokenA, certificateCommonName: nil, slice: "mem=2GiB", peer: "c")
                == .admitted(tenant: "tenant-a", slice: SliceRequest(memoryBytes: 2 << 30)))
    }

    @Test("Repeated failures from one source are rate-limited; other sources and later attempts are not")
    func rateLimited() throws {
        let clock = Mutex(ContinuousClock.now)
        let authenticator = Authenticator(
            policy: try Self.policy(), maximumFailures: 3, window: .seconds(60), maximumLogLines: 100,
            now: { clock.withLock { $0 } })
        for _ in 0..<3 {
            guard case .refused(let reason, _, _) = authenticator.decide(token: "guess", certificateCommonName: nil, slice: "", peer: "attacker")
            else { Issue.record("a guess must fail"); return }
            #expect(reason.contains("authentication failed"))
        }
        // Now even the right token is refused from that source, without being checked.
        guard case .refused(let blocked, _, _) = authenticator.decide(token: Self.tokenA, certificateCommonName: nil, slice: "", peer: "attacker")
        else { Issue.record("a blocked source must be refused"); return }
        #expect(blocked.contains("too many failed authentication attempts"))
        // Other sources are unaffected.
        #expect(
            authenticator.decide(token: Self.tokenA, certificateCommonName: nil, slice: "", peer: "friend")
                == .admitted(tenant: "tenant-a", slice: SliceRequest()))
        // After the window the source may try again.
        clock.withLock { $0 = $0 + .seconds(61) }
        #expect(
            authenticator.decide(token: Self.tokenA, certificateCommonName: nil, slice: "", peer: "attacker")
                == .admitted(tenant: "tenant-a", slice: SliceRequest()))
    }

    @Test("Failure logging is throttled and reports how many lines it skipped")
    func logThrottled() throws {
        let clock = Mutex(ContinuousClock.now)
        let authenticator = Authenticator(
            policy: try Self.policy(), maximumFailures: 1000, window: .seconds(60), maximumLogLines: 2,
            now: { clock.withLock { $0 } })
        var logged: [Bool] = []
        for index in 0..<5 {
            guard case .refused(_, let log, _) = authenticator.decide(token: "x", certificateCommonName: nil, slice: "", peer: "p\(index)")
            else { continue }
            logged.append(log)
        }
        #expect(logged == [true, true, false, false, false])
        clock.withLock { $0 = $0 + .seconds(61) }
        guard case .refused(_, let log, let suppressed) = authenticator.decide(token: "x", certificateCommonName: nil, slice: "", peer: "p")
        else { Issue.record("must refuse"); return }
        #expect(log && suppressed == 3)
    }

    @Test("The safe default: non-loopback TCP needs TLS and authentication")
    func exposure() {
        let anywhere = Endpoint(host: "0.0.0.0", port: 7070)
        let refusal = ServerSecurity.exposureRefusal(listeningOn: anywhere, tls: false, authentication: false)
        #expect(refusal?.contains("TLS") == true && refusal?.contains("authentication") == true && refusal?.contains("--insecure") == true)
        #expect(ServerSecurity.exposureRefusal(listeningOn: anywhere, tls: true, authentication: false)?.contains("--policy") == true)
        #expect(ServerSecurity.exposureRefusal(listeningOn: anywhere, tls: false, authentication: true)?.contains("--tls-cert") == true)
        #expect(ServerSecurity.exposureRefusal(listeningOn: anywhere, tls: true, authentication: true) == nil)
        #expect(ServerSecurity.exposureRefusal(listeningOn: Endpoint(host: "127.0.0.1", port: 1), tls: false, authentication: false) == nil)
        #expect(ServerSecurity.exposureRefusal(listeningOn: Endpoint(host: "::1", port: 1), tls: false, authentication: false) == nil)
        #expect(ServerSecurity.exposureRefusal(listeningOn: nil, tls: false, authentication: false) == nil)
    }
}
