import Foundation
import Testing
import XPUTiming
import XPUTransport

@testable import XPUServer

/// The compute scheduler's condition: timed waits on the monotonic clock.
@Suite("Monotonic condition")
struct MonotonicConditionTests {
    @Test("a timed wait lasts until its monotonic deadline (read as a wall-clock time it would be decades past, and end at once)")
    func deadline() {
        let condition = MonotonicCondition()
        condition.lock()
        let start = monotonicNanoseconds()
        let deadline = start + 30_000_000
        // A wake-up before the deadline may be spurious: wait again, as the scheduler does.
        while condition.wait(until: deadline), monotonicNanoseconds() < start + 5_000_000_000 {}
        let waited = monotonicNanoseconds() - start
        condition.unlock()
        #expect(waited >= 29_000_000 && waited < 5_000_000_000, "waited \(waited) ns for a 30 ms deadline")
    }

    @Test("a broadcast ends a wait long before its deadline")
    func broadcast() {
        let condition = MonotonicCondition()
        let woken = DispatchSemaphore(value: 0)
        condition.lock()
        Thread {
            // The lock is the waiter's until its wait has begun: this broadcast comes during it.
            condition.lock()
            condition.broadcast()
            condition.unlock()
            woken.signal()
        }.start()
        let start = monotonicNanoseconds()
        let signalled = condition.wait(until: start + 10_000_000_000)
        let waited = monotonicNanoseconds() - start
        condition.unlock()
        #expect(signalled && waited < 5_000_000_000, "signalled \(signalled) after \(waited) ns")
        _ = woken.wait(timeout: .now() + 10)
    }
}
