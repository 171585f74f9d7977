import XPUTiming
import XPUTransport

/// The clock the compute scheduler reads and sleeps on: the monotonic clock in the server, a
/// clock the test moves in tests (so that they drive time instead of sleeping).
protocol SchedulerClock: Sendable {
    /// Now, in nanoseconds.
    func now() -> UInt64
    /// Waits on `condition` (its lock held) for a broadcast or until `deadline` on this clock;
    /// false when the deadline passed first.
    func wait(on condition: MonotonicCondition, until deadline: UInt64) -> Bool
}

/// CLOCK_MONOTONIC, with timed waits on it.
struct MonotonicSchedulerClock: SchedulerClock {
    func now() -> UInt64 { monotonicNanoseconds() }
    func wait(on condition: MonotonicCondition, until deadline: UInt64) -> Bool { condition.wait(until: deadline) }
}
