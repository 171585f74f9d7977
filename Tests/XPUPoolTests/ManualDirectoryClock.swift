import Foundation
import XPUPool
import XPUTiming

/// A directory clock that only the test moves: heartbeat timeouts, reservation lifetimes,
/// passing windows and waits pass when the test says, however fast this machine runs.
///
/// `progress` counts the directory's waits begun and the test's `mark()`s, so that the test can
/// wait for a waiting request to have looked at the queue again (and gone back to sleep).
final class ManualDirectoryClock: DirectoryClock, @unchecked Sendable {
    private let monitor = NSCondition()
    private let start = ContinuousClock.now
    /// Guarded by `monitor`.
    private var offset: Duration = .zero
    private var progress = 0
    private var conditions: [MonotonicCondition] = []

    var now: ContinuousClock.Instant {
        monitor.lock()
        defer { monitor.unlock() }
        return start + offset
    }

    func wait(on condition: MonotonicCondition, until deadline: ContinuousClock.Instant) -> Bool {
        monitor.lock()
        guard start + offset < deadline else {
            monitor.unlock()
            return false
        }
        if !conditions.contains(where: { $0 === condition }) { conditions.append(condition) }
        progress += 1
        monitor.broadcast()
        monitor.unlock()
        // The condition's lock is held until the wait begins, and `advance` takes it before it
        // broadcasts: an advance cannot slip between the check above and the wait.
        condition.wait()
        return now < deadline
    }

    /// Moves the clock on and wakes every waiter to look at it.
    func advance(by duration: Duration) {
        monitor.lock()
        offset += duration
        let waiting = conditions
        monitor.broadcast()
        monitor.unlock()
        for condition in waiting {
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Counts as progress (a request got its answer).
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
