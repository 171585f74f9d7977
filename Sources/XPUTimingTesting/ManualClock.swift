import Foundation
import XPUTiming

/// A clock that only the test moves, for code that sleeps on a `MonotonicCondition` until a
/// deadline (the compute scheduler, the pool directory): a timed wait ends when an advance passes
/// its deadline, so time passes when the test says, however fast the machine runs the threads.
///
/// `progress` counts the waits begun and the test's `mark()`s, so that a test can wait for a
/// thread to have looked at its state again (and gone back to sleep) after a change.
public final class ManualClock: @unchecked Sendable {
    private let monitor = NSCondition()
    /// Guarded by `monitor`.
    private var current: UInt64
    private var progress = 0
    private var conditions: [MonotonicCondition] = []
    private var deadlines: [UInt64?] = []

    /// A clock that reads `start` nanoseconds until the test advances it.
    public init(start: UInt64 = 1_000_000_000) { current = start }

    /// Now, in nanoseconds.
    public func now() -> UInt64 {
        monitor.lock()
        defer { monitor.unlock() }
        return current
    }

    /// Waits on `condition` (its lock held) for a broadcast, or until an advance reaches
    /// `deadline` (nanoseconds; nil: no deadline); false when the deadline has passed.
    @discardableResult
    public func wait(on condition: MonotonicCondition, until deadline: UInt64?) -> Bool {
        monitor.lock()
        if let deadline, current >= deadline {
            monitor.unlock()
            return false
        }
        if !conditions.contains(where: { $0 === condition }) { conditions.append(condition) }
        deadlines.append(deadline)
        progress += 1
        monitor.broadcast()
        monitor.unlock()
        // The waiter holds the condition's lock until the wait begins, and `advance` takes it
        // before it broadcasts: an advance cannot slip between the check above and the wait.
        condition.wait()
        guard let deadline else { return true }
        return now() < deadline
    }

    /// Moves the clock on and wakes every waiter to look at it.
    public func advance(by nanoseconds: UInt64) {
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

    public func advance(by duration: Duration) {
        let (seconds, attoseconds) = duration.components
        advance(by: UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000))
    }

    /// Counts as progress (a request got its answer, a kernel began).
    public func mark() {
        monitor.lock()
        progress += 1
        monitor.broadcast()
        monitor.unlock()
    }

    public var progressCount: Int {
        monitor.lock()
        defer { monitor.unlock() }
        return progress
    }

    /// Waits until something counted as progress after `mark` (a value of `progressCount`).
    public func waitForProgress(after mark: Int) {
        monitor.lock()
        while progress <= mark { monitor.wait() }
        monitor.unlock()
    }

    /// The deadline of every wait begun so far, in order (nil for a wait without one).
    public var waitDeadlines: [UInt64?] {
        monitor.lock()
        defer { monitor.unlock() }
        return deadlines
    }
}
