import XPUTiming

/// Counts the slices a `DeviceLedger` admitted or gave back, and lets a thread sleep until the
/// next one (the pool announcer, which beats at once when capacity moves): no polling, and a
/// waiter that looked at the count before it sleeps cannot miss a change made in between.
public final class LedgerChanges: @unchecked Sendable {
    /// Guards `count`; its broadcasts wake the waiters.
    private let condition = MonotonicCondition()
    /// Guarded by `condition`.
    private var count: UInt64 = 0

    init() {}

    /// The number of changes so far.
    public var current: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return count
    }

    func record() {
        condition.lock()
        count &+= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Wakes every waiter without counting a change (its `stop` decides whether it returns).
    public func wakeWaiters() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// Sleeps until a change after `seen` (a value of `current`), until `deadline` (monotonic
    /// nanoseconds, `monotonicNanoseconds()`), or until a wake-up finds `stop` true (asked with
    /// the lock held, so a `wakeWaiters` after `stop` became true is never missed). Returns the
    /// count then.
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
