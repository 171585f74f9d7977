import Foundation
import Logging
import XPUKube

/// Prepares and unprepares claims for the kubelet, one call at a time (the kubelet may call again
/// before an earlier call returned; serializing keeps the files of one claim consistent).
/// Prepare is idempotent: a claim prepared before, by this process or an earlier one, is
/// answered from the store without asking the API server again.
public actor ClaimPreparer {
    public struct Settings: Sendable {
        /// The DRA driver's name (`xpu-remote.io`).
        public var driver: String
        /// The pool directory, `host:port` (`XPU_POOL`, and where devices are looked up).
        public var poolAddress: String
        /// The node's directory holding the shim (`libcuda.so.1`, `libnvidia-ml.so.1`), mounted
        /// into containers.
        public var shimDirectory: String
        /// The servers' CA on the node's filesystem as the plugin sees it; nil: none.
        public var certificateAuthorityFile: String?
        /// The Secret, in the claim's namespace, whose `token` key is the tenant's token.
        public var tokenSecret: String

        public init(driver: String, poolAddress: String, shimDirectory: String, certificateAuthorityFile: String?, tokenSecret: String = "xpu-remote-token") {
            self.driver = driver
            self.poolAddress = poolAddress
            self.shimDirectory = shimDirectory
            self.certificateAuthorityFile = certificateAuthorityFile
            self.tokenSecret = tokenSecret
        }
    }

    public struct ClaimReference: Hashable, Sendable {
        public var namespace: String
        public var uid: String
        public var name: String
        public init(namespace: String, uid: String, name: String) {
            self.namespace = namespace
            self.uid = uid
            self.name = name
        }
    }

    let settings: Settings
    let store: ClaimStore
    let api: KubeAPIClient
    let logger: Logger

    public init(settings: Settings, store: ClaimStore, api: KubeAPIClient, logger: Logger) {
        self.settings = settings
        self.store = store
        self.api = api
        self.logger = logger
    }

    public func prepare(_ claim: ClaimReference) async -> Result<ClaimStore.Prepared, KubeError> {
        if let prepared = store.load(claim.uid) { return .success(prepared) }
        do {
            let prepared = try await prepareAnew(claim)
            logger.info("prepared claim \(claim.namespace)/\(claim.name) (\(claim.uid))")
            return .success(prepared)
        } catch {
            logger.error("cannot prepare claim \(claim.namespace)/\(claim.name) (\(claim.uid)): \(error)")
            return .failure(error)
        }
    }

    public func unprepare(_ claim: ClaimReference) -> KubeError? {
        do {
            try store.remove(claim.uid)
            logger.info("unprepared claim \(claim.namespace)/\(claim.name) (\(claim.uid))")
            return nil
        } catch {
            logger.error("cannot unprepare claim \(claim.uid): \(error)")
            return error
        }
    }

    func prepareAnew(_ reference: ClaimReference) async throws(KubeError) -> ClaimStore.Prepared {
        let claim = try await api.claim(namespace: reference.namespace, name: reference.name)
        guard claim.metadata.uid == reference.uid else {
            throw KubeError(.badClaim, "claim \(reference.namespace)/\(reference.name) is now \(claim.metadata.uid ?? "?"), not \(reference.uid)")
        }
        let token = try await api.secret(namespace: reference.namespace, name: settings.tokenSecret)?["token"]
        var certificateAuthority: Data?
        if let file = settings.certificateAuthorityFile, FileManager.default.fileExists(atPath: file) {
            certificateAuthority = FileManager.default.contents(atPath: file)
        }
        var inventory = PoolInventory(servers: [])
        if ClaimPlan.configuration(of: claim, driver: settings.driver).placement == .device {
            inventory = try PoolInventoryClient.inventory(at: settings.poolAddress)
        }
        let plan = try ClaimPlan.make(
            claim: claim, driver: settings.driver, poolAddress: settings.poolAddress, hasToken: token != nil,
            hasCertificateAuthority: certificateAuthority != nil, locate: inventory.locate)
        let spec = plan.cdiSpec(
            shimDirectory: settings.shimDirectory, tokenPath: token == nil ? nil : store.tokenPath(reference.uid),
            certificateAuthorityPath: certificateAuthority == nil ? nil : store.certificateAuthorityPath(reference.uid))
        let prepared = ClaimStore.Prepared(
            devices: plan.devices.map {
                .init(requestNames: [$0.request], poolName: $0.pool, deviceName: $0.device, cdiDeviceIDs: $0.cdiDevices, shareID: $0.shareID)
            })
        try store.save(reference.uid, prepared: prepared, spec: spec, token: token, certificateAuthority: certificateAuthority)
        return prepared
    }
}
