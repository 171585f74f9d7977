import CXPUDriver
import Prometheus
import Synchronization
import XPUAdmission
import XPUTransport

/// What `/metrics` reports (`--metrics HOST:PORT`): every open session's usage and every device's
/// granted and busy fractions, in the Prometheus text format. A server in a pool (`--pool`) keeps
/// it too, without the endpoint: its heartbeats report the devices' measured busy time.
///
/// The server's own counters are the source of truth (`SessionUsage`, `DeviceLedger`,
/// `ComputeScheduler`); each scrape renders a snapshot of them through a fresh
/// `PrometheusCollectorRegistry`. So a session's series exist exactly while it is open (nothing
/// to unregister, nothing that grows across sessions), and the sessions pay nothing for scrapes.
public final class ServerMetrics: Sendable {
    /// Memory of each device in bytes, by ordinal (fixed while the server runs).
    let deviceMemory: [UInt64]
    /// The server's ledger and scheduler, whose counters the scrapes read.
    let serverDevices: ServerDevices
    private let state: Mutex<State>

    struct State {
        var sessions: [UInt64: SessionUsage] = [:]
        /// Device time of sessions that ended, per device (ns), so device busy time never goes back.
        var retiredDeviceTime: [Int32: UInt64] = [:]
        /// The busy fraction is measured from one scrape to the next.
        var scrapeWindow: DeviceBusyWindow
    }

    /// Sessions the server ended because the pool preempted them (`xpu_server_preemptions_total`).
    let preemptions = Atomic<UInt64>(0)

    /// Connections before their Hello: pending, refused at a cap, closed at the deadline.
    public let admission = AdmissionStatistics()

    /// Reads the devices' memory from `driver` (once).
    public convenience init(driver: Driver, devices: ServerDevices) {
        self.init(deviceMemory: (0..<driver.deviceCount()).map { driver.totalMemory($0) }, devices: devices)
    }

    init(deviceMemory: [UInt64], devices: ServerDevices = ServerDevices()) {
        self.deviceMemory = deviceMemory
        self.serverDevices = devices
        state = Mutex(State(scrapeWindow: DeviceBusyWindow(now: monotonicNanoseconds())))
    }

    func open(_ usage: SessionUsage) {
        state.withLock { $0.sessions[usage.session] = usage }
    }

    /// Ends a session's series; its device time stays in the devices' busy time. Call before
    /// the session leaves the ComputeScheduler (which holds the device time of scheduled sessions).
    func close(_ usage: SessionUsage) {
        let deviceTime = deviceTime(of: usage)
        state.withLock { state in
            state.sessions[usage.session] = nil
            for (device, nanoseconds) in deviceTime { state.retiredDeviceTime[device, default: 0] += nanoseconds }
        }
    }

    /// Sessions whose series a scrape shows now.
    var openSessions: Int { state.withLock { $0.sessions.count } }

    /// Device time of a session's kernels per device (ns): measured by the ComputeScheduler for a
    /// session with a compute share, by its DeviceTimeMeter otherwise.
    func deviceTime(of usage: SessionUsage) -> [Int32: UInt64] {
        if usage.isScheduled, let slice = usage.slice {
            return [slice.device: serverDevices.scheduler.usage(usage.session).deviceNanoseconds]
        }
        return usage.meteredDeviceTime.withLock { $0 }
    }

    /// Device time of every session's kernels per device (ns) since the server started, ended
    /// sessions included.
    func busyTime() -> [Int32: UInt64] {
        let (sessions, retired) = state.withLock { state in (Array(state.sessions.values), state.retiredDeviceTime) }
        var busy = retired
        for usage in sessions {
            for (device, nanoseconds) in deviceTime(of: usage) { busy[device, default: 0] += nanoseconds }
        }
        return busy
    }

    /// The devices this server has, as ordinals.
    var devices: Range<Int32> { 0..<Int32(deviceMemory.count) }

    /// The Prometheus text exposition of everything above, as of now.
    public func render() -> [UInt8] {
        let now = monotonicNanoseconds()
        let sessions = state.withLock { Array($0.sessions.values) }
        let busy = busyTime()
        let fractions = state.withLock { $0.scrapeWindow.read(busy: busy, now: now, devices: devices) }
        let registry = PrometheusCollectorRegistry()
        for usage in sessions.sorted(by: { $0.session < $1.session }) {
            var labels = [("session", "\(usage.session)")]
            if let tenant = usage.tenant { labels.append(("tenant", tenant)) }
            let deviceTime = deviceTime(of: usage)
            registry.makeGauge(descriptor: Names.memoryUsed, labels: labels).set(Double(usage.memoryBytes.load(ordering: .relaxed)))
            registry.makeCounter(descriptor: Names.launches, labels: labels).increment(by: Int64(usage.launches.load(ordering: .relaxed)))
            registry.makeCounter(descriptor: Names.deviceTime, labels: labels).increment(by: Self.seconds(deviceTime.values.reduce(0, +)))
            if let quota = usage.slice?.memoryQuota {
                registry.makeGauge(descriptor: Names.memoryQuota, labels: labels).set(Double(quota))
            }
            if let share = usage.slice?.computePercent {
                registry.makeGauge(descriptor: Names.computeShare, labels: labels).set(share / 100)
                let waited = serverDevices.scheduler.usage(usage.session).waitNanoseconds
                registry.makeCounter(descriptor: Names.queueWait, labels: labels).increment(by: Self.seconds(waited))
            }
        }
        for (index, memory) in deviceMemory.enumerated() {
            let device = Int32(index)
            let labels = [("device", "\(device)")]
            let ledger = serverDevices.ledger.state(of: device)
            let busyNow = busy[device] ?? 0
            registry.makeGauge(descriptor: Names.memoryAllocated, labels: labels)
                .set(memory == 0 ? 0 : Double(ledger.memory) / Double(memory))
            registry.makeGauge(descriptor: Names.computeAllocated, labels: labels).set(ledger.compute / 100)
            registry.makeGauge(descriptor: Names.tenants, labels: labels).set(Double(ledger.tenants))
            registry.makeCounter(descriptor: Names.busyTime, labels: labels).increment(by: Self.seconds(busyNow))
            registry.makeGauge(descriptor: Names.busyFraction, labels: labels).set(fractions[device] ?? 0)
        }
        registry.makeCounter(descriptor: Names.preemptions).increment(by: Int64(preemptions.load(ordering: .relaxed)))
        registry.makeGauge(descriptor: Names.sessions).set(Double(sessions.count))
        registry.makeGauge(descriptor: Names.handshakesPending).set(Double(admission.pending.load(ordering: .relaxed)))
        registry.makeCounter(descriptor: Names.handshakeTimeouts).increment(by: Int64(admission.timedOut.load(ordering: .relaxed)))
        let refused = [
            ("source", admission.refusedPerSource.load(ordering: .relaxed)), ("total", admission.refusedTotal.load(ordering: .relaxed)),
        ]
        for (cap, count) in refused {
            registry.makeCounter(descriptor: Names.connectionsRefused, labels: [("cap", cap)]).increment(by: Int64(count))
        }
        var text: [UInt8] = []
        registry.emit(into: &text)
        return text
    }

    private static func seconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1e9 }

    /// The metric names and help texts, documented in docs/metrics.md. (Computed: the
    /// descriptor type is not Sendable, so it cannot be a static constant.)
    enum Names {
        static var memoryUsed: MetricNameDescriptor { tenant("memory_used", "bytes", "Device memory the session holds (allocations rounded up to 512 bytes, as its quota counts them).") }
        static var memoryQuota: MetricNameDescriptor { tenant("memory_quota", "bytes", "The session's memory quota (sessions with mem= only).") }
        static var computeShare: MetricNameDescriptor { tenant("compute_share", "ratio", "The session's compute share, 0 to 1 (sessions with compute= only).") }
        static var deviceTime: MetricNameDescriptor { tenant("device", "seconds_total", "Device time of the session's kernels.") }
        static var launches: MetricNameDescriptor { tenant("launches", "total", "Kernel launches the driver accepted for the session.") }
        static var queueWait: MetricNameDescriptor { tenant("queue_wait", "seconds_total", "Time the session's kernels waited for their turn in the compute scheduler (sessions with compute= only).") }
        static var memoryAllocated: MetricNameDescriptor { device("memory_allocated", "ratio", "Device memory granted to slices over the device's memory.") }
        static var computeAllocated: MetricNameDescriptor { device("compute_allocated", "ratio", "Compute shares granted to slices over the whole device.") }
        static var tenants: MetricNameDescriptor { device("tenants", "", "Sessions counted on the device (a session without a slice counts on every device).") }
        static var busyTime: MetricNameDescriptor { device("busy", "seconds_total", "Device time of all sessions' kernels on the device, ended sessions included.") }
        static var busyFraction: MetricNameDescriptor { device("busy", "ratio", "Device time over wall time since the previous scrape, at most 1.") }
        static var preemptions: MetricNameDescriptor {
            MetricNameDescriptor(
                namespace: "xpu", subsystem: "server", metricName: "preemptions", unitName: "total",
                helpText: "Sessions ended because the pool preempted them for a request of higher priority.")
        }

        static var sessions: MetricNameDescriptor {
            server("sessions", "", "Sessions open (past their handshake).")
        }
        static var handshakesPending: MetricNameDescriptor {
            server("handshakes_pending", "", "Accepted connections whose Hello has not arrived yet.")
        }
        static var handshakeTimeouts: MetricNameDescriptor {
            server("handshake_timeouts", "total", "Connections closed because their Hello (and TLS handshake) missed the deadline (--handshake-timeout).")
        }
        static var connectionsRefused: MetricNameDescriptor {
            server(
                "connections_refused", "total",
                "Connections closed at accept because too many were waiting for their handshake: from their source (cap=\"source\", --max-pending-per-source) or in all (cap=\"total\", --max-pending-connections).")
        }

        private static func server(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "xpu", subsystem: "server", metricName: name, unitName: unit, helpText: help)
        }

        private static func tenant(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "xpu", subsystem: "tenant", metricName: name, unitName: unit, helpText: help)
        }

        private static func device(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "xpu", subsystem: "device", metricName: name, unitName: unit, helpText: help)
        }
    }
}
