#if canImport(Glibc)
import Glibc
#endif

/// A lock with a condition whose timed waits run on the monotonic clock.
///
/// `NSCondition.wait(until:)` waits for a wall-clock date (on Linux, `pthread_cond_timedwait` on
/// CLOCK_REALTIME), so a clock stepped back — NTP setting it at boot, a VM resumed, someone's
/// `date` — would stretch a wait by the whole step. The compute scheduler's deadlines (cap
/// expiries, holds, the 5 ms re-check) are monotonic nanoseconds, and a stretched wait there is
/// every scheduled tenant stalled.
public final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// Waits (the lock held) for a broadcast; wake-ups may be spurious.
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits (the lock held) for a broadcast or until `deadline` on the monotonic clock, in
    /// nanoseconds (`monotonicNanoseconds()`); false when the deadline passed first.
    public func wait(until deadline: UInt64) -> Bool {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(condition, mutex, &time) != ETIMEDOUT
    }
}
