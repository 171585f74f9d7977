import Logging
import ServiceLifecycle
import XPUKube

/// Keeps the driver's ResourceSlices in step with the pool directory: every `interval` it lists
/// the directory's servers and devices (call 302) and writes the slices that differ, with the DRA
/// pool's generation raised, and deletes slices no longer needed. When the directory cannot be
/// reached the slices stay as they were (claims already allocated keep working through the
/// servers; a directory restarted is whole again one heartbeat later).
public struct ResourceSliceController: Service {
    public var publication: ResourceSlicePublication
    public var poolAddress: String
    public var interval: Duration
    let api: KubeAPIClient
    let logger: Logger

    public init(publication: ResourceSlicePublication, poolAddress: String, interval: Duration, api: KubeAPIClient, logger: Logger) {
        self.publication = publication
        self.poolAddress = poolAddress
        self.interval = interval
        self.api = api
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let inventory = try PoolInventoryClient.inventory(at: poolAddress)
                try await synchronize(inventory)
            } catch {
                logger.warning("ResourceSlices not updated: \(error)")
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Writes what differs between the published slices and `inventory`; returns whether anything
    /// was written.
    @discardableResult
    public func synchronize(_ inventory: PoolInventory) async throws(KubeError) -> Bool {
        let existing = try await api.resourceSlices(driver: publication.driver).filter { $0.spec.pool.name == publication.poolName }
        let generation = existing.map(\.spec.pool.generation).max() ?? 0
        let current = publication.slices(of: inventory, generation: generation)
        let byName = Dictionary(existing.map { ($0.metadata.name, $0) }, uniquingKeysWith: { first, _ in first })
        let unchanged = current.count == existing.count && current.allSatisfy { slice in byName[slice.metadata.name]?.spec == slice.spec }
        guard !unchanged else { return false }
        let desired = publication.slices(of: inventory, generation: generation + 1)
        for var slice in desired {
            slice.metadata.resourceVersion = byName[slice.metadata.name]?.metadata.resourceVersion
            try await api.write(slice)
        }
        let kept = Set(desired.map(\.metadata.name))
        for slice in existing where !kept.contains(slice.metadata.name) {
            try await api.deleteResourceSlice(slice.metadata.name)
        }
        let devices = desired.reduce(0) { $0 + $1.spec.devices.count }
        logger.info("published \(devices) devices in \(desired.count) ResourceSlices, pool generation \(generation + 1)")
        return true
    }
}
