import Foundation
import XPUTiming

@testable import XPUServer

/// A scheduler clock that only the test moves: kernels and the test advance it, and a timed wait
/// ends when an advance passes its deadline. Frozen time makes the scheduler's decisions depend on
/// its state alone, never on how fast the machine runs the tenants' threads: a hold for a tenant
/// between two kernels lasts until that tenant comes back.
///
/// `progress` counts the scheduler's waits begun and the test's `mark()`s, so that the test can
/// wait for a tenant to have looked at the schedule again after an advance.
final class ManualSchedulerClock: SchedulerClock, @unchecked Sendable {
    private let monitor = NSCondition()
    /// Guarded by `monitor`.
    private var current: UInt64
    private var progress = 0
    private var conditions: [MonotonicCondition] = []

    init(start: UInt64 = 1_000_000_000) { current = start }

    func now() -> UInt64 {
        monitor.lock()
        defer { monitor.unlock() }
        return current
    }

    func wait(on condition: MonotonicCondition, until deadline: UInt64) -> Bool {
        monitor.lock()
        guard current < deadline else {
            monitor.unlock()
            return false
        }
        if !conditions.contains(where: { $0 === condition }) { conditions.append(condition) }
        progress += 1
        monitor.broadcast()
        monitor.unlock()
        // The scheduler's lock is held until the wait begins, and `advance` takes it before it
        // broadcasts: an advance cannot slip between the check above and the wait.
        condition.wait()
        return now() < deadline
    }

    /// Moves the clock on and wakes every waiter to look at it.
    func advance(by nanoseconds: UInt64) {
        monitor.lock()
        current += nanoseconds
        let waiting = conditions
        monitor.broadcast()
        monitor.unlock()
        for condition in waiting {
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Counts as progress (a kernel began, a tenant left).
    func mark() {
        monitor.lock()
        progress += 1
        monitor.broadcast()
        monitor.unlock()
    }

    var progressCount: Int {
        monitor.lock()
        defer { monitor.unlock() }
        return progress
    }

    /// Waits until something counted as progress after `mark` (a value of `progressCount`).
    func waitForProgress(after mark: Int) {
        monitor.lock()
        while progress <= mark { monitor.wait() }
        monitor.unlock()
    }
}
