#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Synchronization
import XPUAdmission
import XPUTiming
import XPUTransport

/// A tenant process's side of its control channel: its kernels' turns come from the server's
/// `ComputeScheduler` (turn request → grant → kernel → done with its device time), and its usage
/// goes to the server's /metrics. The session's thread asks and waits; a reporter thread sends
/// usage after calls were served, and the process's `HangupWatch` watches the server: when the
/// server is gone, the process ends (the server held the session's grant; no session runs
/// unaccounted).
///
/// Nothing here wakes while the session is idle: the reporter sleeps until a call was served
/// (`callServed`), then reports at most once per `reportInterval` while calls go on, and once
/// more after the last of them.
final class TenantControl: ComputeTurns, @unchecked Sendable {
    let channel: TenantChannel
    let logger: Logger
    /// The shortest time between two usage reports while calls are being served.
    static let reportInterval: UInt64 = 100_000_000  // ns
    private let reporting = Mutex<Reporting>(Reporting())
    /// Set by each call served, cleared by the reporter when it reads the usage.
    private let served = Atomic<Bool>(false)
    private let ended = Atomic<Bool>(false)
    /// What the reporter sleeps on: a call served (`served`) or the end of reporting.
    private let wake = MonotonicCondition()

    struct Reporting {
        var usage: SessionUsage?
        var last: TenantUsageReport?
        var stopped = false
        var watch: HangupWatch.Registration?
    }

    init(channel: TenantChannel, logger: Logger) {
        self.channel = channel
        self.logger = logger
    }

    /// The server registered the session when it admitted it.
    func register(_ session: UInt64, slice: Slice) {}

    func run<T>(_ session: UInt64, _ kernel: () -> T) -> T {
        do {
            try channel.send(.turnRequest)
        } catch {
            serverGone()
        }
        guard channel.receive() == .turnGranted else { serverGone() }
        let start = monotonicNanoseconds()
        let result = kernel()
        let elapsed = monotonicNanoseconds() - start
        do {
            try channel.send(.turnDone(deviceNanoseconds: elapsed))
        } catch {
            serverGone()
        }
        return result
    }

    func usage(_ session: UInt64) -> (deviceNanoseconds: UInt64, waitNanoseconds: UInt64, stalls: Int) {
        guard (try? channel.send(.scheduleQuery)) != nil, case .schedule(let device, let wait, let stalls)? = channel.receive() else {
            return (0, 0, 0)
        }
        return (device, wait, Int(clamping: stalls))
    }

    /// The session's thread served a call (its usage may have changed): one atomic exchange,
    /// and a wake-up of the reporter only when it sleeps.
    func callServed() {
        guard !served.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.lock()
        wake.broadcast()
        wake.unlock()
    }

    /// Starts watching the server, and reporting `usage` to it while the session is open (nil:
    /// the server does not report /metrics).
    func startReporting(_ usage: SessionUsage?) {
        reporting.withLock { $0.usage = usage }
        // The server's end closes the channel: the watch ends the process then, however idle.
        let watch = HangupWatch.watch(channel.socket.descriptor) { [self] in serverGone() }
        reporting.withLock { $0.watch = watch }
        let watched = watch != nil
        Thread.start(named: "xpu-usage") { [self] in
            var reported: UInt64 = 0
            while true {
                // Where no watch could be made, the reporter looks at the server itself, every
                // `reportInterval`.
                let calls = waitForCalls(orUntil: watched ? nil : monotonicNanoseconds() + Self.reportInterval)
                if !watched, channel.socket.peerHasClosed { serverGone() }
                if ended.load(ordering: .acquiring) { return }
                guard calls else { continue }
                let since = monotonicNanoseconds() &- reported
                if since < Self.reportInterval { usleep(UInt32((Self.reportInterval - since) / 1000)) }
                served.store(false, ordering: .releasing)
                reported = monotonicNanoseconds()
                let stopped = reporting.withLock { reporting in
                    guard !reporting.stopped else { return true }
                    report(&reporting)
                    return false
                }
                if stopped { return }
            }
        }
    }

    /// Sleeps until a call was served or reporting ended (true: a call), or until `deadline`.
    private func waitForCalls(orUntil deadline: UInt64?) -> Bool {
        wake.lock()
        defer { wake.unlock() }
        while !served.load(ordering: .acquiring), !ended.load(ordering: .acquiring) {
            if let deadline {
                if !wake.wait(until: deadline) { break }
            } else {
                wake.wait()
            }
        }
        return served.load(ordering: .acquiring)
    }

    /// Sends the last report (before the session frees what it holds: the server shows the
    /// session's series until the process ends) and stops the reporter.
    func stopReporting() {
        let watch = reporting.withLock { reporting in
            report(&reporting)
            reporting.stopped = true
            return reporting.watch.take()
        }
        // The session is over: the process ends its own way now, whatever the server does.
        if let watch { HangupWatch.forget(watch) }
        ended.store(true, ordering: .releasing)
        wake.lock()
        wake.broadcast()
        wake.unlock()
    }

    /// Sends the usage if it changed since the last report. Lock held (reports stay in order).
    private func report(_ reporting: inout Reporting) {
        guard !reporting.stopped, let usage = reporting.usage else { return }
        let now = TenantUsageReport(
            memoryBytes: usage.memoryBytes.load(ordering: .relaxed), launches: usage.launches.load(ordering: .relaxed),
            deviceTime: usage.meteredDeviceTime.withLock { $0 })
        guard now != reporting.last else { return }
        reporting.last = now
        try? channel.send(.usage(now))
    }

    /// The server ended (or broke the channel): end this process now. The client's connection
    /// closes with it; the driver frees what the process held.
    private func serverGone() -> Never {
        logger.error("the server is gone; ending the session's process")
        fflush(nil)  // every stdio stream: the log line above must not be lost
        _exit(3)
    }
}
