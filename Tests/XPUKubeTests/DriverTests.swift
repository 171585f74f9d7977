import Foundation
import Logging
import Testing
import XPUKube
import XPUKubeDriver
import XPUPool
import XPUProtocol
import XPUTransport

/// A temporary directory for one test, removed at the end.
struct Scratch: ~Copyable {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-kube-\(getpid())-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

let quiet = Logger(label: "xpu-kube-tests", factory: { _ in SwiftLogNoOpLogHandler() })

func apiClient(_ url: String, scratch: borrowing Scratch) throws -> KubeAPIClient {
    let tokenFile = scratch.path + "/api-token"
    try FakeAPIServer.token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
    return try KubeAPIClient(.init(server: url, tokenFile: tokenFile))
}

let claimUID = "2d6f8a10-3c4b-4e5f-8a9b-0c1d2e3f4a5b"
let claimJSON = """
    {"metadata":{"name":"gpu-claim","namespace":"team-a","uid":"\(claimUID)"},
     "status":{"allocation":{"devices":{"results":[{"request":"gpu","driver":"xpu-remote.io","pool":"xpu-remote",
       "device":"10-0-0-5-7070-d0","shareID":"share-1","consumedCapacity":{"memory":"2Gi","compute":"20"}}],
       "config":[{"source":"FromClaim","opaque":{"driver":"xpu-remote.io","parameters":{"apiVersion":"xpu-remote.io/v1","kind":"SliceConfig","priority":"high"}}}]}}}}
    """

@Suite("xpu-kube driver against a fake API server", .serialized)
struct DriverTests {
    @Test func prepareWritesTheSpecAndTokenOnceAndSurvivesRestart() async throws {
        let scratch = try Scratch()
        let fake = FakeAPIServer()
        fake.putClaim(namespace: "team-a", name: "gpu-claim", json: claimJSON)
        fake.putSecret(namespace: "team-a", name: "xpu-remote-token", data: ["token": "s3cret"])
        let store = ClaimStore(stateDirectory: scratch.path + "/state", cdiDirectory: scratch.path + "/cdi")
        let settings = ClaimPreparer.Settings(driver: "xpu-remote.io", poolAddress: "pool:7071", shimDirectory: "/var/lib/xpu-remote/lib", certificateAuthorityFile: nil)
        let reference = ClaimPreparer.ClaimReference(namespace: "team-a", uid: claimUID, name: "gpu-claim")
        try await fake.serve { url in
            let client = try apiClient(url, scratch: scratch)
            let preparer = ClaimPreparer(settings: settings, store: store, api: client, logger: quiet)
            let prepared = try await preparer.prepare(reference).get()
            #expect(prepared.devices.map(\.cdiDeviceIDs) == [["xpu-remote.io/slice=\(claimUID)"]])
            #expect(prepared.devices.first?.shareID == "share-1")
            let spec = try #require(FileManager.default.contents(atPath: store.specPath(claimUID)))
            #expect(CDIRules.violations(spec) == [])
            let text = String(decoding: spec, as: UTF8.self)
            #expect(text.contains("XPU_SLICE=mem=2GiB,compute=20%,priority=high") && text.contains("XPU_TOKEN_FILE="))
            #expect(!text.contains("s3cret"))
            #expect(try String(contentsOfFile: store.tokenPath(claimUID), encoding: .utf8) == "s3cret")
            let mode = try FileManager.default.attributesOfItem(atPath: store.tokenPath(claimUID))[.posixPermissions] as? Int
            #expect(mode == 0o444)

            // A second call, and a new preparer over the same state (a restarted plugin), answer
            // the same without asking the API server again.
            let asked = fake.requests.count
            #expect(try await preparer.prepare(reference).get() == prepared)
            let restarted = ClaimPreparer(settings: settings, store: store, api: client, logger: quiet)
            #expect(try await restarted.prepare(reference).get() == prepared)
            #expect(fake.requests.count == asked)

            #expect(await restarted.unprepare(reference) == nil)
            #expect(!FileManager.default.fileExists(atPath: store.specPath(claimUID)))
            #expect(!FileManager.default.fileExists(atPath: store.tokenPath(claimUID)))
            #expect(await restarted.unprepare(reference) == nil)  // idempotent too

            // A claim recreated under the same name is not the one the kubelet asked for.
            let stale = ClaimPreparer.ClaimReference(namespace: "team-a", uid: "99999999-0000-4000-8000-000000000000", name: "gpu-claim")
            guard case .failure(let error) = await restarted.prepare(stale) else { Issue.record("stale claim prepared"); return }
            #expect(error.message.contains("is now"))
            try await client.shutdown()
        }
    }

    @Test func aClaimWithoutTokenSecretGetsNoTokenFile() async throws {
        let scratch = try Scratch()
        let fake = FakeAPIServer()
        fake.putClaim(namespace: "team-a", name: "gpu-claim", json: claimJSON)
        let store = ClaimStore(stateDirectory: scratch.path + "/state", cdiDirectory: scratch.path + "/cdi")
        try await fake.serve { url in
            let client = try apiClient(url, scratch: scratch)
            let preparer = ClaimPreparer(
                settings: .init(driver: "xpu-remote.io", poolAddress: "pool:7071", shimDirectory: "/lib", certificateAuthorityFile: nil),
                store: store, api: client, logger: quiet)
            _ = try await preparer.prepare(.init(namespace: "team-a", uid: claimUID, name: "gpu-claim")).get()
            let text = String(decoding: FileManager.default.contents(atPath: store.specPath(claimUID)) ?? Data(), as: UTF8.self)
            #expect(!text.contains("XPU_TOKEN_FILE") && text.contains("XPU_POOL=pool:7071"))
            try await client.shutdown()
        }
    }

    @Test func controllerPublishesAndFollowsThePool() async throws {
        let scratch = try Scratch()
        let fake = FakeAPIServer()
        try await fake.serve { url in
            let client = try apiClient(url, scratch: scratch)
            let controller = ResourceSliceController(
                publication: .init(driver: "xpu-remote.io", poolName: "xpu-remote", nodeLabels: []), poolAddress: "unused:1",
                api: client, logger: quiet)
            let two = PoolInventory(servers: [.init(address: "10.0.0.5:7070", labels: [], deviceMemory: [16 << 30, 16 << 30])])
            #expect(try await controller.synchronize(two))
            #expect(fake.slices["xpu-remote-0"]?.spec.devices.count == 2)
            #expect(fake.slices["xpu-remote-0"]?.spec.pool.generation == 1)
            #expect(try await controller.synchronize(two) == false)  // unchanged: nothing written

            let one = PoolInventory(servers: [.init(address: "10.0.0.5:7070", labels: [], deviceMemory: [16 << 30])])
            #expect(try await controller.synchronize(one))
            #expect(fake.slices["xpu-remote-0"]?.spec.devices.map(\.name) == ["10-0-0-5-7070-d0"])
            #expect(fake.slices["xpu-remote-0"]?.spec.pool.generation == 2)

            let many = PoolInventory(servers: (0..<20).map { .init(address: "10.0.1.\($0):7070", labels: [], deviceMemory: Array(repeating: 1 << 34, count: 8)) })
            #expect(try await controller.synchronize(many))
            #expect(fake.slices.keys.sorted() == ["xpu-remote-0", "xpu-remote-1"])
            #expect(try await controller.synchronize(one))
            #expect(fake.slices.keys.sorted() == ["xpu-remote-0"])  // the extra slice is deleted
            #expect(fake.slices["xpu-remote-0"]?.spec.pool == .init(name: "xpu-remote", generation: 4, resourceSliceCount: 1))
            try await client.shutdown()
        }
    }

    @Test func wrongCredentialsAreReportedNotIgnored() async throws {
        let scratch = try Scratch()
        let fake = FakeAPIServer()
        try await fake.serve { url in
            let tokenFile = scratch.path + "/wrong"
            try "nope".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            let client = try KubeAPIClient(.init(server: url, tokenFile: tokenFile))
            await #expect(throws: KubeError.self) { try await client.resourceSlices(driver: "xpu-remote.io") }
            try await client.shutdown()
        }
    }

    @Test func thePoolDirectoryListsItsServers() async throws {
        let directory = Directory(policy: .bestfit, logger: quiet)
        let server = try DirectoryServer(listen: Endpoint(host: "127.0.0.1", port: 0), directory: directory, logger: quiet)
        let task = Task { try await server.run() }
        defer { task.cancel() }
        directory.record(
            PoolHeartbeat(
                address: "10.0.0.5:7070", labels: ["zone=a"],
                devices: [.init(totalMemory: 16 << 30, freeMemory: 8 << 30, freeComputeMilli: 500)], sessions: 1))
        let inventory = try PoolInventoryClient.inventory(at: "127.0.0.1:\(server.endpoint.port)")
        #expect(inventory == PoolInventory(servers: [.init(address: "10.0.0.5:7070", labels: ["zone=a"], deviceMemory: [16 << 30])]))
    }

    @Test func listRepliesRoundTrip() throws {
        let reply = PoolListReply(servers: [
            .init(address: "a:1", labels: ["zone=x"], devices: [.init(totalMemory: 1 << 30, freeMemory: 1 << 29, freeComputeMilli: 700)]),
            .init(address: "b:2", labels: [], devices: []),
        ])
        #expect(try PoolListReply(decoding: reply.encoded) == reply)
        let bytes = reply.encoded
        for cut in 0..<bytes.count { #expect(throws: ProtocolError.self) { try PoolListReply(decoding: Array(bytes.prefix(cut))) } }
    }
}
