import Foundation
import Testing
import XPUAdmission
import XPUTimingTesting

@testable import XPUServer

/// The compute scheduler on its own, on threads of this process: the rules in `ComputeScheduler`
/// without a device, a server or a client (ComputeShareTests checks them end to end). Kernels
/// advance a clock the test owns (`ManualClock`), so device time, holds and caps are
/// exact and no test depends on how fast this machine runs its threads.
@Suite("Compute scheduler", .serialized)
struct ComputeSchedulerTests {
    /// A tenant's thread: `kernels` turns (or turns while `more` says so), each advancing `clock`
    /// by `length` ns and logging the session, then it leaves the schedule as a session that ends
    /// does. Returns the group to wait on.
    private static func tenant(
        _ session: UInt64, _ scheduler: ComputeScheduler, clock: ManualClock?, length: UInt64, log: Shared<[UInt64]>,
        group: DispatchGroup, more: @escaping @Sendable () -> Bool
    ) {
        group.enter()
        Thread {
            defer { group.leave() }
            while more() {
                scheduler.run(session) {
                    log.withLock { $0.append(session) }
                    clock?.mark()
                    clock?.advance(by: length)
                }
            }
            scheduler.unregister(session)
            clock?.mark()
        }.start()
    }

    /// Holds the device with a turn of session `gate`, starts the tenants (`start`) and waits
    /// until `sessions` all wait (asleep in `run`: a waiter marks itself and sleeps in one hold of
    /// the lock), then leaves the schedule: the tenants all decide whose turn it is from the same
    /// start.
    private static func gate(
        _ scheduler: ComputeScheduler, session gate: UInt64, until sessions: Set<UInt64>, start: () -> Void
    ) {
        scheduler.register(gate, slice: Slice(SliceRequest(computePercent: 1)))
        scheduler.run(gate) {
            start()
            while scheduler.waitingSessions() != sessions { sched_yield() }
        }
        scheduler.unregister(gate)
    }

    /// Waits for the tenants' threads; false (and an issue) when one never finished: a turn
    /// was never given.
    @discardableResult
    private static func join(_ group: DispatchGroup, seconds: Int = 120) -> Bool {
        let finished = group.wait(timeout: .now() + .seconds(seconds)) == .success
        #expect(finished, "a tenant never finished: a turn was never given")
        return finished
    }

    @Test("two tenants tied in virtual time: the turn goes to the lower session number, whoever asks, and neither misses it")
    func tiesAreBrokenTheSameWayByEveryWaiter() {
        // The wake-up this guards against: both tenants wake from the same broadcast and each
        // decides on its own whose turn it is. When a tie went to whichever tenant a freshly built
        // dictionary listed first, each could find the other's turn and sleep, and neither ran
        // until a re-check 5 ms later (counted in `stalls`) that could find the same again, for
        // as long as each thread's allocator handed it the same address for the dictionary.
        for round in 0..<40 {
            let scheduler = ComputeScheduler()
            for session: UInt64 in [1, 2] { scheduler.register(session, slice: Slice(SliceRequest(computePercent: 30))) }
            let log = Shared<[UInt64]>([])
            let group = DispatchGroup()
            let turns = Shared(0)
            // The gate stays registered (not waiting) while the two decide, as a tenant between
            // kernels would.
            scheduler.register(3, slice: Slice(SliceRequest(computePercent: 30)))
            scheduler.run(3) {
                for session: UInt64 in [1, 2] {
                    Self.tenant(session, scheduler, clock: nil, length: 0, log: log, group: group) {
                        turns.withLock { turns in defer { turns += 1 }; return turns < 2 }
                    }
                }
                while scheduler.waitingSessions() != [1, 2] { sched_yield() }
            }
            guard Self.join(group, seconds: 30) else { break }
            let stalls = [1, 2].map { scheduler.usage($0).stalls }
            let order = log.withLock { $0 }
            #expect(stalls == [0, 0], "round \(round): a missed wake-up (stalls \(stalls))")
            #expect(order == [1, 2], "round \(round)")
            scheduler.unregister(3)
            if stalls != [0, 0] || order != [1, 2] { break }
        }
    }

    @Test("guaranteed shares divide a saturated device in proportion to the shares")
    func proportionalShares() {
        let clock = ManualClock()
        let scheduler = ComputeScheduler(clock: clock)
        let shares: [Double] = [30, 30, 40]
        for (index, share) in shares.enumerated() {
            scheduler.register(UInt64(index + 1), slice: Slice(SliceRequest(computePercent: share)))
        }
        let log = Shared<[UInt64]>([])
        let group = DispatchGroup()
        let budget = Shared(3000)
        Self.gate(scheduler, session: 9, until: [1, 2, 3]) {
            for session: UInt64 in [1, 2, 3] {
                // Kernels of different lengths: shares divide device time, not turns.
                Self.tenant(session, scheduler, clock: clock, length: 10_000 * (session + 1), log: log, group: group) {
                    budget.withLock { left in defer { left -= 1 }; return left > 0 }
                }
            }
        }
        Self.join(group)
        let device = [1, 2, 3].map { session in log.withLock { $0.filter { $0 == session }.count } * 10_000 * (session + 1) }
        let total = Double(device.reduce(0, +))
        let fractions = device.map { Double($0) / total }
        // Stride scheduling keeps each tenant's device time / share within one kernel of the
        // others' while all three wait: 3000 kernels leave a few of them of difference.
        for (fraction, share) in zip(fractions, shares) {
            #expect(abs(fraction - share / 100) < 0.01, "fractions \(fractions)")
        }
        #expect([1, 2, 3].map { scheduler.usage($0).stalls } == [0, 0, 0])
    }

    @Test("low-priority work runs only when nothing of a higher priority waits")
    func strictPriorities() {
        let clock = ManualClock()
        let scheduler = ComputeScheduler(clock: clock)
        let tenants: [(UInt64, SliceRequest)] = [
            (1, SliceRequest(computePercent: 45, priority: .low)), (2, SliceRequest(computePercent: 45, priority: .normal)),
            (3, SliceRequest(computePercent: 10, priority: .high)),
        ]
        for (session, request) in tenants { scheduler.register(session, slice: Slice(request)) }
        let log = Shared<[UInt64]>([])
        let group = DispatchGroup()
        Self.gate(scheduler, session: 9, until: [1, 2, 3]) {
            for (session, _) in tenants {
                let left = Shared(100)
                Self.tenant(session, scheduler, clock: clock, length: 20_000, log: log, group: group) {
                    left.withLock { left in defer { left -= 1 }; return left > 0 }
                }
            }
        }
        Self.join(group)
        // By shares the normal tenant would get 4.5 times the high one's time. By priority, the
        // high tenant takes every turn while it has kernels (the device is held for it between
        // two of them, however late its thread comes back), then the normal one, then the low.
        let expected = Array(repeating: UInt64(3), count: 100) + Array(repeating: 2, count: 100) + Array(repeating: 1, count: 100)
        #expect(log.withLock { $0 } == expected)
    }

    @Test("a capped tenant alone starts each kernel once its share of the time since the last one has passed, not before, not later")
    func cappedShare() {
        let clock = ManualClock()
        let scheduler = ComputeScheduler(clock: clock)
        var request = SliceRequest(computePercent: 25)
        request.capped = true
        scheduler.register(1, slice: Slice(request))
        let starts = Shared<[UInt64]>([])
        let done = Shared(false)
        let group = DispatchGroup()
        group.enter()
        Thread {
            defer { group.leave() }
            for _ in 0..<6 {
                scheduler.run(1) {
                    starts.withLock { $0.append(clock.now()) }
                    clock.advance(by: 10_000)
                }
            }
            done.withLock { $0 = true }
            clock.mark()
        }.start()
        // The test moves time in steps of 5 µs, each once the tenant has looked at it (from its
        // first wait on: the first kernel starts at once).
        clock.waitForProgress(after: 0)
        while !done.withLock({ $0 }) {
            let mark = clock.progressCount
            clock.advance(by: 5_000)
            clock.waitForProgress(after: mark)
        }
        Self.join(group)
        let times = starts.withLock { $0 }
        #expect(times.count == 6)
        // 10 µs of a 25% share: the next kernel 40 µs after this one's start, within one step.
        for (earlier, later) in zip(times, times.dropFirst()) {
            #expect(later - earlier >= 40_000 && later - earlier < 45_000, "starts \(times)")
        }
        #expect(scheduler.usage(1).deviceNanoseconds == 60_000)
    }
}

/// A value the test's threads share, behind a pthread mutex: ThreadSanitizer sees its ordering.
/// (Synchronization.Mutex hands a contended lock over in the kernel, with FUTEX_UNLOCK_PI, an
/// ordering TSan cannot see, so `scripts/tsan.sh` reported accesses under it as races.)
final class Shared<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
