import Synchronization
import XPUAdmission

/// What one session has used, as /metrics reports it. The session's own thread writes it with
/// relaxed atomic stores and adds (a launch costs one add, and nothing is allocated); scrapes read
/// it from another thread, so a scrape sees each number as of an instant, not all of them at once.
final class SessionUsage: Sendable {
    let session: UInt64
    /// The tenant's name in the policy when the server authenticates; nil otherwise.
    let tenant: String?
    let slice: Slice?
    /// Bytes charged to the session: its allocations, each rounded up as the quota counts them
    /// (`Slice.charge`); module variables are not charged.
    let memoryBytes = Atomic<UInt64>(0)
    /// Kernel launches the driver accepted.
    let launches = Atomic<UInt64>(0)
    /// Device time of the session's kernels per device (ns), as its `DeviceTimeMeter` last
    /// harvested it. Sessions with a compute share are measured by the `ComputeScheduler` instead.
    let meteredDeviceTime = Mutex<[Int32: UInt64]>([:])

    init(session: UInt64, tenant: String?, slice: Slice?) {
        self.session = session
        self.tenant = tenant
        self.slice = slice
    }

    /// Launches go through the ComputeScheduler, which measures their device time and queueing.
    var isScheduled: Bool { slice?.computePercent != nil }
}
