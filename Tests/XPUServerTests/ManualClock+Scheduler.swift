import XPUTiming
import XPUTimingTesting

@testable import XPUServer

/// The scheduler on the test's clock: kernels and the test advance it, and frozen time makes the
/// scheduler's decisions depend on its state alone, never on how fast the machine runs the
/// tenants' threads (a hold for a tenant between two kernels lasts until that tenant comes back).
extension ManualClock: SchedulerClock {
    public func wait(on condition: MonotonicCondition, until deadline: UInt64) -> Bool {
        wait(on: condition, until: Optional(deadline))
    }
}
