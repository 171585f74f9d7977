#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Synchronization
import XPUAdmission
import XPUTransport

/// A tenant process's side of its control channel: its kernels' turns come from the server's
/// `ComputeScheduler` (turn request → grant → kernel → done with its device time), and its usage
/// goes to the server's /metrics. The session's thread asks and waits; a reporter thread sends
/// usage and watches the server: when the server is gone, the process ends (the server held the
/// session's grant; no session runs unaccounted).
final class TenantControl: ComputeTurns, @unchecked Sendable {
    let channel: TenantChannel
    let logger: Logger
    /// How often usage is reported when it changed (and the server's liveness checked).
    static let reportInterval: UInt32 = 100_000  // µs
    private let reporting = Mutex<Reporting>(Reporting())

    struct Reporting {
        var usage: SessionUsage?
        var last: TenantUsageReport?
        var stopped = false
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

    /// Starts watching the server, and reporting `usage` to it while the session is open (nil:
    /// the server does not report /metrics).
    func startReporting(_ usage: SessionUsage?) {
        reporting.withLock { $0.usage = usage }
        Thread.start(named: "xpu-usage") { [self] in
            while true {
                usleep(Self.reportInterval)
                if channel.socket.peerHasClosed { serverGone() }
                let stopped = reporting.withLock { reporting in
                    guard !reporting.stopped else { return true }
                    report(&reporting)
                    return false
                }
                if stopped { return }
            }
        }
    }

    /// Sends the last report (before the session frees what it holds: the server shows the
    /// session's series until the process ends) and stops the reporter.
    func stopReporting() {
        reporting.withLock { reporting in
            report(&reporting)
            reporting.stopped = true
        }
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
