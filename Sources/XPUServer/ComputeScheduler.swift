import XPUAdmission
import XPUTiming
import XPUTransport

/// Shares one device's compute among the sliced tenants that asked for a share (`compute=`):
/// their kernels take turns on the device (time slicing), and the next turn goes to the waiting
/// tenant of the highest priority that has used the least device time for its share (stride
/// scheduling: each tenant's virtual time advances by device time / share). A guaranteed share is
/// a floor — a tenant alone, or with idle neighbours, uses the whole device — and a capped share
/// is also a ceiling: after a kernel of d ns the tenant waits d·(1/share − 1) before its next one.
///
/// Device time is measured by the server around each kernel (launch to completion), so the
/// shares are exact whatever the kernels do. On a real GPU green contexts (SM partitions) can back
/// the same shares spatially instead of in time; the simulated device uses time slicing.
/// Sessions without a compute share are not scheduled (they launch as they come).
///
/// Whose turn it is must be a function of the schedule alone: every waiter decides for itself
/// whether the turn is its own, and a waiter that finds it is someone else's sleeps without
/// waking that one, trusting it to reach the same answer. Ties (equal virtual times, as every
/// newcomer has with the tenant furthest behind) therefore go to the lower session number, never
/// to the order a dictionary happens to list them in (`precedes`).
final class ComputeScheduler: @unchecked Sendable {
    struct Tenant {
        var share: Double
        var priority: SlicePriority
        var capped: Bool
        /// Device time used per unit of share (stride scheduling's virtual time).
        var pass: Double = 0
        var waiting = false
        /// A capped tenant may not start a kernel before this (monotonic ns).
        var notBefore: UInt64 = 0
        var deviceNanoseconds: UInt64 = 0
        /// Time its kernels waited in `run` for their turn (queueing delay, for /metrics).
        var waitNanoseconds: UInt64 = 0
        /// Turns that began only when a wait timed out with nothing changed since it began (see
        /// `run`): a missed wake-up, each one delaying the turn by up to `longestWait`.
        var stalls = 0
        /// When its last kernel ended (monotonic ns): a tenant between two kernels is briefly not
        /// waiting, and is held for rather than skipped.
        var lastEnd: UInt64 = 0
    }

    private let condition = MonotonicCondition()
    private let clock: any SchedulerClock
    /// Guarded by `condition`.
    private var tenants: [UInt64: Tenant] = [:]
    private var busy = false
    /// Broadcasts so far: a wait that times out with no broadcast since it began and then finds
    /// its turn has come missed a wake-up.
    private var broadcasts: UInt64 = 0
    /// After a kernel, the device is held briefly for its tenant when that tenant should run next
    /// anyway (it is still the furthest behind its share) or outranks someone: between two of
    /// its kernels the tenant is not waiting for an instant (the server reads its next request),
    /// and without the hold a neighbour would slip in every time, skewing shares toward the
    /// smaller ones and making high-priority work wait behind kernels that are not preempted.
    static let graceNanoseconds: UInt64 = 300_000
    static let anticipationNanoseconds: UInt64 = 1_000_000
    static let longestWaitNanoseconds: UInt64 = 5_000_000
    private var reserved: (session: UInt64, until: UInt64)?

    init(clock: any SchedulerClock = MonotonicSchedulerClock()) {
        self.clock = clock
    }

    func register(_ session: UInt64, slice: Slice) {
        guard let percent = slice.computePercent else { return }
        condition.lock()
        defer { condition.unlock() }
        // A newcomer starts level with the others, so it neither starves nor is owed the past.
        let start = tenants.values.map(\.pass).min() ?? 0
        tenants[session] = Tenant(share: percent / 100, priority: slice.priority, capped: slice.capped, pass: start)
    }

    func unregister(_ session: UInt64) {
        condition.lock()
        tenants[session] = nil
        notifyAll()
        condition.unlock()
    }

    func isScheduled(_ session: UInt64) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return tenants[session] != nil
    }

    /// Runs `kernel` (launch and wait for completion) in the session's turn and charges its
    /// device time. Returns what `kernel` returns.
    func run<T>(_ session: UInt64, _ kernel: () -> T) -> T {
        run(session, measured: { (kernel(), nil) })
    }

    /// The same for a kernel that measures its own device time (a session in a tenant process
    /// times its kernel there): `kernel` returns its result and the nanoseconds to charge, or nil
    /// to charge the time from its start to its end here.
    func run<T>(_ session: UInt64, measured kernel: () -> (T, UInt64?)) -> T {
        let arrived = clock.now()
        condition.lock()
        tenants[session]?.waiting = true
        var missedWakeUp = false
        while true {
            let now = clock.now()
            if !busy, let next = nextTenant(now: now), next == session {
                if missedWakeUp { tenants[session]?.stalls += 1 }
                break
            }
            // A capped tenant's wait, and a hold for another tenant, end by themselves: wake up
            // then even if no one broadcasts. Every other change that can make this the turn
            // broadcasts. No wait is longer than `longestWait`, so that a wake-up missed all the
            // same delays a turn by that much at most, and is counted in `stalls`.
            let expiry = earliestCapExpiry(after: now) ?? .max
            let until = min(expiry, now + Self.longestWaitNanoseconds)
            let before = broadcasts
            let signalled = clock.wait(on: condition, until: until)
            missedWakeUp = !signalled && until < expiry && broadcasts == before
        }
        busy = true
        tenants[session]?.waiting = false
        let start = clock.now()
        tenants[session]?.waitNanoseconds += start - arrived
        condition.unlock()

        let (result, reported) = kernel()
        let end = clock.now()
        let elapsed = max(reported ?? (end - start), 1)

        condition.lock()
        if var tenant = tenants[session] {
            tenant.pass += Double(elapsed) / tenant.share
            tenant.deviceNanoseconds += elapsed
            tenant.lastEnd = end
            // A capped tenant may use `share` of the time from this kernel's start on.
            if tenant.capped { tenant.notBefore = start + UInt64(Double(elapsed) / tenant.share) }
            tenants[session] = tenant
            let others = tenants.filter { $0.key != session }.values
            let outranks = others.contains { $0.priority < tenant.priority }
            let stillFirst = !others.contains {
                $0.priority > tenant.priority || ($0.priority == tenant.priority && $0.pass < tenant.pass)
            }
            if outranks {
                reserved = (session, end + Self.anticipationNanoseconds)
            } else if stillFirst && !tenant.capped {
                reserved = (session, end + Self.graceNanoseconds)
            } else {
                reserved = nil
            }
        }
        busy = false
        notifyAll()
        condition.unlock()
        return result
    }

    /// Device time charged to a session so far, and how long its kernels waited for their turn.
    func usage(_ session: UInt64) -> (deviceNanoseconds: UInt64, waitNanoseconds: UInt64, stalls: Int) {
        condition.lock()
        defer { condition.unlock() }
        guard let tenant = tenants[session] else { return (0, 0, 0) }
        return (tenant.deviceNanoseconds, tenant.waitNanoseconds, tenant.stalls)
    }

    /// Wakes every waiter to look again whose turn it is (lock held).
    private func notifyAll() {
        broadcasts &+= 1
        condition.broadcast()
    }

    /// The waiting tenant whose turn it is: highest priority first (low-priority work only runs
    /// when no one above it waits), then the least virtual time, then the lower session number.
    /// The same answer for whoever asks (see the type's comment). Lock held.
    private func nextTenant(now: UInt64) -> UInt64? {
        if let reserved, reserved.until > now, let holder = tenants[reserved.session] {
            // Held for one tenant: only it may start, or someone of a higher priority.
            let ready = tenants.filter {
                $0.value.waiting && $0.value.notBefore <= now && ($0.key == reserved.session || $0.value.priority > holder.priority)
            }
            guard let top = ready.values.map(\.priority).max() else { return nil }
            return ready.filter { $0.value.priority == top }.min(by: Self.precedes)?.key
        }
        let ready = tenants.filter { $0.value.waiting && $0.value.notBefore <= now }
        guard let top = ready.values.map(\.priority).max() else { return nil }
        guard let candidate = ready.filter({ $0.value.priority == top }).min(by: Self.precedes) else { return nil }
        // A tenant further behind its share that finished a kernel a moment ago is between two
        // kernels, not idle: hold the device for it for the grace period rather than let a
        // neighbour take its turn.
        let someoneBehind = tenants.contains {
            !$0.value.waiting && $0.value.priority >= top && !$0.value.capped && $0.value.pass < candidate.value.pass
                && now < $0.value.lastEnd + Self.graceNanoseconds
        }
        return someoneBehind ? nil : candidate.key
    }

    /// Whether `a` goes before `b` among tenants of one priority: less virtual time first, and on
    /// a tie the lower session number (a dictionary's order is no order: each one Swift builds,
    /// such as the one `filter` returns, lists its keys by a hash seed of its own).
    private static func precedes(_ a: (key: UInt64, value: Tenant), _ b: (key: UInt64, value: Tenant)) -> Bool {
        a.value.pass != b.value.pass ? a.value.pass < b.value.pass : a.key < b.key
    }

    /// The sessions waiting for a turn now (they sleep in `run`: a waiter marks itself and goes
    /// to sleep in one hold of the lock).
    func waitingSessions() -> Set<UInt64> {
        condition.lock()
        defer { condition.unlock() }
        return Set(tenants.filter(\.value.waiting).keys)
    }

    private func earliestCapExpiry(after now: UInt64) -> UInt64? {
        var times = tenants.values.filter { $0.waiting && $0.notBefore > now }.map(\.notBefore)
        times += tenants.values.filter { !$0.waiting && now < $0.lastEnd + Self.graceNanoseconds }.map { $0.lastEnd + Self.graceNanoseconds }
        if let reserved, reserved.until > now { times.append(reserved.until) }
        return times.min()
    }
}
