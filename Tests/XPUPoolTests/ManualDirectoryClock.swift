import XPUPool
import XPUTiming
import XPUTimingTesting

/// The test's `ManualClock` as the directory reads it: instants from a fixed origin. Heartbeat
/// timeouts, reservation lifetimes, passing windows and waits pass when the test says.
struct ManualDirectoryClock: DirectoryClock {
    let manual = ManualClock(start: 0)
    let origin = ContinuousClock.now

    var now: ContinuousClock.Instant { origin + .nanoseconds(manual.now()) }

    func wait(on condition: MonotonicCondition, until deadline: ContinuousClock.Instant) -> Bool {
        manual.wait(on: condition, until: nanoseconds(deadline))
    }

    func wait(on condition: MonotonicCondition) { manual.wait(on: condition, until: nil) }

    /// The clock's reading at `instant` (0 for one before the origin).
    func nanoseconds(_ instant: ContinuousClock.Instant) -> UInt64 {
        let (seconds, attoseconds) = (instant - origin).components
        return seconds < 0 ? 0 : UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }

    func advance(by duration: Duration) { manual.advance(by: duration) }
    func mark() { manual.mark() }
    var progressCount: Int { manual.progressCount }
    func waitForProgress(after mark: Int) { manual.waitForProgress(after: mark) }
}
