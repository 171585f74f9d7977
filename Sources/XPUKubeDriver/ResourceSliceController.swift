import Logging
import ServiceLifecycle
import Synchronization
import XPUKube

/// Keeps the driver's ResourceSlices in step with the pool directory, reacting to change on both
/// sides: a long poll of the directory (call 303: it answers when a server registers, is dropped,
/// or changes its labels or devices) and the Kubernetes API's watch of the driver's slices (a
/// slice edited or deleted by someone else is written back). Each change leads to one
/// `synchronize`, which writes the slices that differ, with the DRA pool's generation raised,
/// and deletes slices no longer needed; changes that arrive while one runs are folded into the
/// next. When the directory cannot be reached the slices stay as they were (claims already
/// allocated keep working through the servers; a directory restarted is whole again one
/// heartbeat later) and the controller tries again every `retryInterval`.
public struct ResourceSliceController: Service {
    public var publication: ResourceSlicePublication
    public var poolAddress: String
    /// How long the directory may hold one long poll (it caps this at 60 s).
    public var pollWait: Duration
    /// How long the API server may hold one watch before the controller watches again.
    public var watchTimeoutSeconds: Int
    /// The pause before trying again after the directory or the API server failed.
    public var retryInterval: Duration
    let api: KubeAPIClient
    let logger: Logger

    public init(
        publication: ResourceSlicePublication, poolAddress: String, pollWait: Duration = .seconds(30), watchTimeoutSeconds: Int = 300,
        retryInterval: Duration = .seconds(5), api: KubeAPIClient, logger: Logger
    ) {
        self.publication = publication
        self.poolAddress = poolAddress
        self.pollWait = pollWait
        self.watchTimeoutSeconds = watchTimeoutSeconds
        self.retryInterval = retryInterval
        self.api = api
        self.logger = logger
    }

    public func run() async throws {
        let (changes, change) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let latest = LatestInventory()
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await followPool(latest: latest, change: change) }
                group.addTask { await followSlices(change: change) }
                for await _ in changes {
                    guard let inventory = latest.value.withLock({ $0 }) else { continue }
                    do {
                        try await synchronize(inventory)
                    } catch {
                        logger.warning("ResourceSlices not updated: \(error)")
                    }
                }
                group.cancelAll()
            }
        }
        change.finish()
    }

    /// The directory's last answer, shared by the task that follows it and the one that writes.
    final class LatestInventory: Sendable {
        let value = Mutex<PoolInventory?>(nil)
    }

    /// Long-polls the directory; each new generation of its inventory is a change.
    func followPool(latest: LatestInventory, change: AsyncStream<Void>.Continuation) async {
        var known: UInt64 = 0
        while !Task.isCancelled {
            do {
                let (generation, inventory) = try await PoolInventoryClient.watch(at: poolAddress, known: known, wait: pollWait)
                guard generation != known else { continue }
                known = generation
                latest.value.withLock { $0 = inventory }
                change.yield()
            } catch {
                guard !Task.isCancelled else { return }
                logger.warning("pool directory not followed: \(error)")
                try? await Task.sleep(for: retryInterval)
            }
        }
    }

    /// Watches the driver's ResourceSlices; each event is a change (our own writes come back as
    /// events too, and find nothing to write).
    func followSlices(change: AsyncStream<Void>.Continuation) async {
        var version: String?
        while !Task.isCancelled {
            do {
                if version == nil {
                    version = try await api.resourceSliceList(driver: publication.driver).resourceVersion ?? ""
                    change.yield()
                }
                version = try await api.watchResourceSlices(driver: publication.driver, from: version ?? "", timeoutSeconds: watchTimeoutSeconds) {
                    change.yield()
                }
            } catch {
                guard !Task.isCancelled else { return }
                version = nil
                if error.code != .expired {
                    logger.warning("ResourceSlices not watched: \(error)")
                    try? await Task.sleep(for: retryInterval)
                }
            }
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
