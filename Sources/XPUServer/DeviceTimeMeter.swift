#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import XPUProtocol
import XPUTransport

/// Device time a session's kernels took, measured with driver events around each launch.
///
/// Before a launch the server records a *start* event on the launch's stream, after it an *end*
/// event: the stream reaches the start event when the work queued ahead of the kernel is done, so
/// `cuEventElapsedTime(start, end)` is the kernel's own execution time, on a real GPU and on the
/// simulated device (whose events carry the time its stream worker reached them). Completed pairs
/// are harvested when the session asks for its view (or when `pendingLimit` pairs are in flight);
/// a kernel still running then counts at the next harvest. Kernels on concurrent streams add up,
/// so a share above 100% is reported as 100%.
///
/// Metering starts when the session opens the management API (`ManagementOpen`), or at session
/// open when the server reports `/metrics` (`--metrics`) and the session has no compute share
/// (the ComputeScheduler measures those): otherwise sessions pay nothing. Events are created once
/// per context and reused, and harvesting compacts in place, so a metered launch allocates
/// nothing once its context's events exist.
struct DeviceTimeMeter {
    struct Probe {
        var context: UInt64
        /// The device of `context`, which the kernel's time is charged to.
        var device: Int32
        var stream: CUstream?
        var start: CUevent
        var end: CUevent? = nil
    }

    struct Sample {
        var time: UInt64
        var busy: UInt64
    }

    static let pendingLimit = 1024
    /// Utilization is device time over (at least) the last second, as NVML's sample period.
    static let windowNanoseconds: UInt64 = 1_000_000_000

    private(set) var enabled = false
    private var pending: [Probe] = []
    /// Events ready for reuse, by the context they belong to.
    private var spare: [UInt64: [CUevent]] = [:]
    /// Device time of every harvested kernel since metering started.
    private(set) var busyNanoseconds: UInt64 = 0
    /// The same per device (what /metrics reports).
    private(set) var busyByDevice: [Int32: UInt64] = [:]
    private var samples: [Sample] = []

    mutating func enable(now: UInt64) {
        guard !enabled else { return }
        enabled = true
        samples = [Sample(time: now, busy: 0)]
    }

    /// Records the start event of a launch on `stream` (the session's current context is the
    /// launch's). Nil when metering is off or the launch cannot be measured.
    mutating func start(context: UInt64, device: Int32, stream: CUstream?, table: DriverTable, alive: (UInt64) -> Bool) -> Probe? {
        guard enabled, context != 0 else { return nil }
        if pending.count >= Self.pendingLimit { harvest(table: table, alive: alive) }
        guard pending.count < Self.pendingLimit, let event = event(for: context, table: table) else { return nil }
        guard table.cuEventRecord(event, stream) == CUDA_SUCCESS else {
            _ = table.cuEventDestroy_v2(event)
            return nil
        }
        return Probe(context: context, device: device, stream: stream, start: event)
    }

    /// Records the end event after a launch that succeeded; recycles the start event otherwise.
    mutating func finish(_ probe: Probe, launched: Bool, table: DriverTable) {
        guard launched, let end = event(for: probe.context, table: table) else {
            spare[probe.context, default: []].append(probe.start)
            return
        }
        guard table.cuEventRecord(end, probe.stream) == CUDA_SUCCESS else {
            spare[probe.context, default: []].append(contentsOf: [probe.start, end])
            return
        }
        var finished = probe
        finished.end = end
        pending.append(finished)
    }

    /// Launches measured but not harvested yet.
    var hasPending: Bool { !pending.isEmpty }

    /// Adds the device time of every completed launch. Probes of destroyed contexts are dropped
    /// (their events went with the context). Compacts `pending` in place: no allocation.
    mutating func harvest(table: DriverTable, alive: (UInt64) -> Bool) {
        guard !pending.isEmpty else { return }
        var kept = 0
        for index in pending.indices {
            let probe = pending[index]
            guard alive(probe.context), let end = probe.end else { continue }
            let status = table.cuEventQuery(end)
            if status == CUDA_ERROR_NOT_READY {
                pending[kept] = probe
                kept += 1
                continue
            }
            var milliseconds: Float = 0
            if status == CUDA_SUCCESS, table.cuEventElapsedTime_v2(&milliseconds, probe.start, end) == CUDA_SUCCESS {
                let nanoseconds = UInt64(max(0, Double(milliseconds)) * 1_000_000)
                busyNanoseconds += nanoseconds
                busyByDevice[probe.device, default: 0] += nanoseconds
                spare[probe.context, default: []].append(probe.start)
                spare[probe.context, default: []].append(end)
            }
        }
        pending.removeLast(pending.count - kept)
        if spare.keys.contains(where: { !alive($0) }) { spare = spare.filter { alive($0.key) } }
    }

    /// The share of device time (percent) over the last `windowNanoseconds` or since metering
    /// started, whichever is shorter. Call after `harvest`.
    mutating func utilization(now: UInt64) -> UInt32 {
        guard enabled else { return 0 }
        samples.append(Sample(time: now, busy: busyNanoseconds))
        // Keep the newest sample at least a window old, and everything after it.
        if let keep = samples.lastIndex(where: { now &- $0.time >= Self.windowNanoseconds }), keep > 0 {
            samples.removeFirst(keep)
        }
        let reference = samples[0]
        let elapsed = now &- reference.time
        guard elapsed > 0 else { return 0 }
        let busy = Double(busyNanoseconds &- reference.busy)
        return UInt32(min(100, (busy / Double(elapsed) * 100).rounded()))
    }

    private mutating func event(for context: UInt64, table: DriverTable) -> CUevent? {
        if let event = spare[context]?.popLast() { return event }
        var event: CUevent?
        guard table.cuEventCreate(&event, 0) == CUDA_SUCCESS else { return nil }
        return event
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    static func now() -> UInt64 { monotonicNanoseconds() }
}
