import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Testing
import XPUKube
import XPUKubeDriver
import XPUKubeletAPI

/// The kubelet's side of the plugin APIs, over the same Unix sockets a kubelet uses: watch the
/// registry directory, ask the plugin who it is, tell it it is registered, then prepare and
/// unprepare claims on the socket it named.
struct FakeKubelet {
    let directory: String

    /// Waits until `path` is a socket; the plugin creates it.
    static func waitForSocket(_ path: String, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var status = stat()
            if lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFSOCK { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw KubeError(.io, "no socket at \(path) after \(timeout)")
    }

    func register(_ socket: String) async throws -> Registration_PluginInfo {
        try await withGRPCClient(transport: try .http2NIOPosix(target: .unixDomainSocket(path: socket), transportSecurity: .plaintext)) { client in
            let registration = Registration_Registration.Client(wrapping: client)
            let info = try await registration.getInfo(Registration_InfoRequest())
            _ = try await registration.notifyRegistrationStatus(.with { $0.pluginRegistered = true })
            return info
        }
    }

    func prepare(_ endpoint: String, _ claims: [DRA_Claim]) async throws -> DRA_NodePrepareResourcesResponse {
        try await withGRPCClient(transport: try .http2NIOPosix(target: .unixDomainSocket(path: endpoint), transportSecurity: .plaintext)) { client in
            try await DRA_DRAPlugin.Client(wrapping: client).nodePrepareResources(.with { $0.claims = claims })
        }
    }

    /// Prepare as kubelets 1.32 and 1.33 call it (dra/v1beta1).
    func prepareV1beta1(_ endpoint: String, _ claims: [DRAv1beta1_Claim]) async throws -> DRAv1beta1_NodePrepareResourcesResponse {
        try await withGRPCClient(transport: try .http2NIOPosix(target: .unixDomainSocket(path: endpoint), transportSecurity: .plaintext)) { client in
            try await DRAv1beta1_DRAPlugin.Client(wrapping: client).nodePrepareResources(.with { $0.claims = claims })
        }
    }

    func unprepareV1beta1(_ endpoint: String, _ claims: [DRAv1beta1_Claim]) async throws -> DRAv1beta1_NodeUnprepareResourcesResponse {
        try await withGRPCClient(transport: try .http2NIOPosix(target: .unixDomainSocket(path: endpoint), transportSecurity: .plaintext)) { client in
            try await DRAv1beta1_DRAPlugin.Client(wrapping: client).nodeUnprepareResources(.with { $0.claims = claims })
        }
    }

    func unprepare(_ endpoint: String, _ claims: [DRA_Claim]) async throws -> DRA_NodeUnprepareResourcesResponse {
        try await withGRPCClient(transport: try .http2NIOPosix(target: .unixDomainSocket(path: endpoint), transportSecurity: .plaintext)) { client in
            try await DRA_DRAPlugin.Client(wrapping: client).nodeUnprepareResources(.with { $0.claims = claims })
        }
    }
}

@Suite("DRA kubelet plugin with a fake kubelet", .serialized)
struct FakeKubeletTests {
    @Test func registrationPrepareUnprepareRestartAndReregistration() async throws {
        let scratch = try Scratch()
        let fake = FakeAPIServer()
        fake.putClaim(namespace: "team-a", name: "gpu-claim", json: claimJSON)
        let kubelet = FakeKubelet(directory: scratch.path + "/kubelet")
        let store = ClaimStore(stateDirectory: scratch.path + "/state", cdiDirectory: scratch.path + "/cdi")
        let settings = KubeletPlugin.Settings(driver: "xpu-remote.io", kubeletDirectory: kubelet.directory, watchInterval: .milliseconds(50))
        let claim = DRA_Claim.with {
            $0.namespace = "team-a"
            $0.uid = claimUID
            $0.name = "gpu-claim"
        }
        let unknown = DRA_Claim.with {
            $0.namespace = "team-a"
            $0.uid = "0a0a0a0a-0000-4000-8000-000000000000"
            $0.name = "no-such-claim"
        }

        try await fake.serve { url in
            let client = try apiClient(url, scratch: scratch)
            func startPlugin() -> Task<Void, any Error> {
                let preparer = ClaimPreparer(
                    settings: .init(driver: "xpu-remote.io", poolAddress: "pool:7071", shimDirectory: "/lib", certificateAuthorityFile: nil),
                    store: store, api: client, logger: quiet)
                let plugin = KubeletPlugin(settings: settings, preparer: preparer, logger: quiet)
                return Task { try await plugin.run() }
            }

            var plugin = startPlugin()
            try await FakeKubelet.waitForSocket(settings.registrationSocket)
            let info = try await kubelet.register(settings.registrationSocket)
            #expect(info.type == "DRAPlugin" && info.name == "xpu-remote.io")
            #expect(info.endpoint == settings.pluginSocket && info.supportedVersions == ["v1.DRAPlugin", "v1beta1.DRAPlugin"])

            // Prepare: our claim succeeds, an unknown one carries its error, both answered.
            let prepared = try await kubelet.prepare(info.endpoint, [claim, unknown])
            let devices = try #require(prepared.claims[claimUID]).devices
            #expect(prepared.claims[claimUID]?.error == "")
            #expect(devices.map(\.cdiDeviceIds) == [["xpu-remote.io/slice=\(claimUID)"]])
            #expect(devices.first?.shareID == "share-1" && devices.first?.deviceName == "10-0-0-5-7070-d0" && devices.first?.requestNames == ["gpu"])
            #expect(prepared.claims[unknown.uid]?.error.contains("not found") == true)
            #expect(FileManager.default.fileExists(atPath: store.specPath(claimUID)))

            // The plugin restarts: the same claim prepared again is answered from its state.
            plugin.cancel()
            _ = try? await plugin.value
            let asked = fake.requests.count
            plugin = startPlugin()
            try await FakeKubelet.waitForSocket(settings.registrationSocket)
            _ = try await kubelet.register(settings.registrationSocket)
            let again = try await kubelet.prepare(info.endpoint, [claim])
            #expect(again.claims[claimUID] == prepared.claims[claimUID])
            #expect(fake.requests.count == asked)

            // The kubelet wipes its registry (a kubelet restart): the plugin makes a new socket
            // (the path is empty from the unlink until then) and registers again.
            #expect(unlink(settings.registrationSocket) == 0)
            try await FakeKubelet.waitForSocket(settings.registrationSocket)
            #expect(try await kubelet.register(settings.registrationSocket) == info)

            let unprepared = try await kubelet.unprepare(info.endpoint, [claim, unknown])
            #expect(unprepared.claims[claimUID]?.error == "" && unprepared.claims[unknown.uid]?.error == "")
            #expect(!FileManager.default.fileExists(atPath: store.specPath(claimUID)))
            plugin.cancel()
            _ = try? await plugin.value
            try await client.shutdown()
        }
    }
}

extension FakeKubeletTests {
    /// A 1.32 or 1.33 kubelet: the same claim through dra/v1beta1, on the same socket.
    @Test func anOlderKubeletPreparesThroughV1beta1() async throws {
        let scratch = try Scratch()
        let fake = FakeAPIServer()
        fake.putClaim(namespace: "team-a", name: "gpu-claim", json: claimJSON)
        let kubelet = FakeKubelet(directory: scratch.path + "/kubelet")
        let store = ClaimStore(stateDirectory: scratch.path + "/state", cdiDirectory: scratch.path + "/cdi")
        let settings = KubeletPlugin.Settings(driver: "xpu-remote.io", kubeletDirectory: kubelet.directory, watchInterval: .milliseconds(50))
        let claim = DRAv1beta1_Claim.with {
            $0.namespace = "team-a"
            $0.uid = claimUID
            $0.name = "gpu-claim"
        }
        try await fake.serve { url in
            let client = try apiClient(url, scratch: scratch)
            let preparer = ClaimPreparer(
                settings: .init(driver: "xpu-remote.io", poolAddress: "pool:7071", shimDirectory: "/lib", certificateAuthorityFile: nil),
                store: store, api: client, logger: quiet)
            let plugin = Task { try await KubeletPlugin(settings: settings, preparer: preparer, logger: quiet).run() }
            try await FakeKubelet.waitForSocket(settings.registrationSocket)
            let info = try await kubelet.register(settings.registrationSocket)
            #expect(info.supportedVersions.contains("v1beta1.DRAPlugin"))

            let prepared = try await kubelet.prepareV1beta1(info.endpoint, [claim])
            let device = try #require(prepared.claims[claimUID]?.devices.first)
            #expect(prepared.claims[claimUID]?.error == "")
            #expect(device.cdiDeviceIds == ["xpu-remote.io/slice=\(claimUID)"] && device.deviceName == "10-0-0-5-7070-d0")
            #expect(device.poolName == "xpu-remote" && device.requestNames == ["gpu"])
            #expect(FileManager.default.fileExists(atPath: store.specPath(claimUID)))

            let unprepared = try await kubelet.unprepareV1beta1(info.endpoint, [claim])
            #expect(unprepared.claims[claimUID]?.error == "")
            #expect(!FileManager.default.fileExists(atPath: store.specPath(claimUID)))
            plugin.cancel()
            _ = try? await plugin.value
            try await client.shutdown()
        }
    }
}
