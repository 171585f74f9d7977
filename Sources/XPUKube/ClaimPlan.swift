/// What preparing a claim means for xpu-remote: the devices the kubelet is told about and the one
/// CDI device that carries the slice's variables. Pure: the plugin fetches the claim and the
/// pool's inventory, this decides.
///
/// Every allocation result of our driver in a claim must consume the same capacity: they become
/// `XPU_DEVICES` slices of one shape (the shim asks the pool for all of them at once). With
/// `placement: device` a claim has exactly one result, reached directly on its server.
public struct ClaimPlan: Hashable, Sendable {
    public struct Device: Hashable, Sendable {
        public var request: String
        public var pool: String
        public var device: String
        public var shareID: String?
        /// The CDI devices the runtime applies: the claim's one device, listed on the first result.
        public var cdiDevices: [String]
    }

    public var devices: [Device]
    public var cdiDeviceName: String
    public var injection: SliceInjection

    /// - Parameters:
    ///   - poolAddress: the directory's `host:port` (`XPU_POOL`).
    ///   - locate: the server address and ordinal of a published device name (placement `device`).
    public static func make(
        claim: ResourceClaim, driver: String, poolAddress: String, hasToken: Bool, hasCertificateAuthority: Bool,
        locate: (String) -> (server: String, ordinal: Int32)?
    ) throws(KubeError) -> ClaimPlan {
        let name = "\(claim.metadata.namespace ?? "")/\(claim.metadata.name)"
        guard let uid = claim.metadata.uid, CDISpec.isValidDeviceName(uid) else {
            throw KubeError(.badClaim, "claim \(name) has no usable uid")
        }
        let allocation = claim.status?.allocation?.devices
        let results = (allocation?.results ?? []).filter { $0.driver == driver }
        guard let first = results.first else { throw KubeError(.badClaim, "claim \(name) has no device of \(driver) allocated") }

        let config = configuration(of: claim, driver: driver)

        let shapes = try results.map { result throws(KubeError) in try Self.shape(of: result, claim: name) }
        guard shapes.allSatisfy({ $0 == shapes[0] }) else {
            throw KubeError(.badClaim, "claim \(name): every slice of one claim must consume the same memory and compute")
        }
        var shape = shapes[0]
        shape.priority = config.priority
        shape.mode = config.mode

        let target: SliceInjection.Target
        switch config.placement ?? .pool {
        case .pool:
            target = .pool(poolAddress)
        case .device:
            guard results.count == 1 else {
                throw KubeError(.badClaim, "claim \(name): placement 'device' serves one slice per claim, \(results.count) allocated")
            }
            guard let location = locate(first.device) else {
                throw KubeError(.badClaim, "claim \(name): device \(first.device) is not in the pool (its server left?)")
            }
            target = .server(location.server, device: location.ordinal)
        }
        let injection = SliceInjection(
            target: target, shape: shape, count: results.count, poolWait: config.poolWait, hasToken: hasToken,
            hasCertificateAuthority: hasCertificateAuthority)
        let devices = results.enumerated().map { index, result in
            Device(
                request: result.request, pool: result.pool, device: result.device, shareID: result.shareID,
                cdiDevices: index == 0 ? [CDISpec.qualifiedName(uid)] : [])
        }
        return ClaimPlan(devices: devices, cdiDeviceName: uid, injection: injection)
    }

    /// The CDI spec the runtime applies for this claim: the injection's variables, the shim's
    /// mounts from `shimDirectory`, and the token's and CA's files (node paths) when there are
    /// any, mounted where the variables point.
    public func cdiSpec(shimDirectory: String, tokenPath: String?, certificateAuthorityPath: String?) -> CDISpec {
        var mounts = SliceInjection.shimMounts(shimDirectory: shimDirectory)
        if let tokenPath { mounts.append(.init(hostPath: tokenPath, containerPath: SliceInjection.ContainerPath.token)) }
        if let certificateAuthorityPath {
            mounts.append(.init(hostPath: certificateAuthorityPath, containerPath: SliceInjection.ContainerPath.certificateAuthority))
        }
        return CDISpec(deviceName: cdiDeviceName, injection: injection, mounts: mounts)
    }

    /// The claim's configuration for our driver: the class's, then the claim's own, field by field.
    public static func configuration(of claim: ResourceClaim, driver: String) -> SliceConfig {
        let allocation = claim.status?.allocation?.devices
        let results = (allocation?.results ?? []).filter { $0.driver == driver }
        var config = SliceConfig()
        for source in ["FromClass", "FromClaim"] {
            for entry in allocation?.config ?? [] where entry.source == source {
                guard let opaque = entry.opaque, opaque.driver == driver else { continue }
                let requests = entry.requests ?? []
                guard requests.isEmpty || results.contains(where: { requests.contains($0.request) }) else { continue }
                config = config.overridden(by: opaque.parameters)
            }
        }
        return config
    }

    /// The slice a result consumed: `memory` in bytes and `compute` in percent (whole, 10...100
    /// in steps of 10 by the devices' request policy).
    static func shape(of result: ResourceClaim.Result, claim: String) throws(KubeError) -> SliceShape {
        var shape = SliceShape()
        let consumed = result.consumedCapacity ?? [:]
        if let memory = consumed[DeviceCapacity.memory] {
            guard let bytes = KubeQuantity.parse(memory) else { throw KubeError(.badClaim, "claim \(claim): memory '\(memory)' is not a quantity") }
            shape.memoryBytes = bytes > 0 ? bytes : nil
        }
        if let compute = consumed[DeviceCapacity.compute] {
            guard let percent = KubeQuantity.parse(compute), percent <= 100 else {
                throw KubeError(.badClaim, "claim \(claim): compute '\(compute)' is not a percentage")
            }
            shape.computePercent = percent > 0 ? Int(percent) : nil
        }
        return shape
    }
}
