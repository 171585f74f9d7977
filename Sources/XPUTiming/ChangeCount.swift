/// Changes counted, and a condition to wait for the next one on: a waiter notes `current` before
/// it looks at the state it watches and sleeps only if nothing changed since, so that it cannot
/// sleep through a change made while it looked. The pool directory's queues and the device
/// ledger (which the pool announcer sleeps on) each count their changes with one.
public final class ChangeCount: @unchecked Sendable {
    /// Guards `count`; its broadcasts wake the waiters.
    private let condition = MonotonicCondition()
    /// Guarded by `condition`.
    private var count: UInt64 = 0

    public init() {}

    /// The number of changes so far.
    public var current: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return count
    }

    /// Counts a change and wakes every waiter.
    public func notify() {
        condition.lock()
        count &+= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Wakes every waiter without counting a change (a waiter's `stop` decides whether it returns).
    public func wakeWaiters() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// Sleeps once, with `sleep` (given the condition, its lock held), unless a change came after
    /// `seen`. For a waiter whose clock decides how long a sleep lasts.
    public func sleepOnce(after seen: UInt64, _ sleep: (MonotonicCondition) -> Void) {
        condition.lock()
        defer { condition.unlock() }
        guard count == seen else { return }
        sleep(condition)
    }

    /// Sleeps until a change after `seen`, until `deadline` (monotonic nanoseconds,
    /// `monotonicNanoseconds()`), or until a wake-up finds `stop` true (asked with the lock held,
    /// so a `wakeWaiters` after `stop` became true is never missed). Returns the count then.
    @discardableResult
    public func wait(after seen: UInt64, until deadline: UInt64, unless stop: () -> Bool) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        while count == seen, !stop() {
            if !condition.wait(until: deadline) { break }
        }
        return count
    }
}
