import XPUTiming
import XPUTransport

/// The directory's time: when heartbeats were seen, reservations made, requests queued, and how
/// long a waiting request sleeps. The continuous clock in `xpu-pool`; in tests a clock the test
/// moves, so that heartbeat timeouts, passing windows and waits are driven instead of slept.
public protocol DirectoryClock: Sendable {
    var now: ContinuousClock.Instant { get }
    /// Waits on `condition` (its lock held) for a broadcast or until `deadline` on this clock;
    /// false when the deadline passed first.
    func wait(on condition: MonotonicCondition, until deadline: ContinuousClock.Instant) -> Bool
    /// Waits on `condition` (its lock held) for a broadcast, however long that takes.
    func wait(on condition: MonotonicCondition)
}

extension DirectoryClock {
    public func wait(on condition: MonotonicCondition) { condition.wait() }
}

/// `ContinuousClock`, with timed waits on the monotonic clock (never stretched by a wall clock
/// stepped back).
public struct SystemDirectoryClock: DirectoryClock {
    public init() {}

    public var now: ContinuousClock.Instant { .now }

    public func wait(on condition: MonotonicCondition, until deadline: ContinuousClock.Instant) -> Bool {
        let left = deadline - .now
        guard left > .zero else { return false }
        let nanoseconds = UInt64(left.components.seconds) * 1_000_000_000 + UInt64(left.components.attoseconds / 1_000_000_000)
        return condition.wait(until: monotonicNanoseconds() + nanoseconds)
    }
}

/// The directory's waits for its change counts run on its clock.
extension ChangeCount {
    /// Waits for a change after `seen` (a value of `current`), or until `deadline` on `clock`
    /// (nil: for a change only).
    func wait(after seen: UInt64, until deadline: ContinuousClock.Instant?, on clock: any DirectoryClock) {
        sleepOnce(after: seen) { condition in
            if let deadline {
                _ = clock.wait(on: condition, until: deadline)
            } else {
                clock.wait(on: condition)
            }
        }
    }
}
