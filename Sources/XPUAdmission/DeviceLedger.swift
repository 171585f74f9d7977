import CXPUDriver
import XPUTiming
import Synchronization

/// The slices granted on each device of this server, and the sessions each device serves: a
/// slice is admitted only if its memory quota and compute share fit what the device has not
/// granted yet, so quotas are promises the device can keep, and a session only if its devices
/// serve fewer than `maxTenants` sessions. A session without a slice is counted as a tenant of
/// every device (it may use any of them) but holds no share (it uses what is left).
public final class DeviceLedger: Sendable {
    public struct Granted: Sendable {
        public var memory: UInt64 = 0
        public var compute: Double = 0
        /// Sessions counted on the device, with a slice on it or without a slice.
        public var tenants = 0
    }

    /// What admission counted for one session: given back whole by `release`.
    public struct Tenancy: Sendable {
        public var slice: Slice?
        public var devices: [Int32]
        /// The session it was admitted for (0 when the caller does not say).
        public var session: UInt64 = 0
    }

    private let granted = Mutex<[Int32: Granted]>([:])
    /// The slice of each session that holds one, by session id: what pool heartbeats list, so
    /// that the directory can choose sessions to preempt.
    private let slices = Mutex<[UInt64: Slice]>([:])
    /// Counts every slice admitted or given back: the pool announcer sleeps on it and beats at
    /// once when it moves, so a request waiting in the directory's queue learns of freed
    /// capacity, and a preempting one of a new low-priority slice, without waiting for the next
    /// beat.
    public let changes = ChangeCount()
    /// Pool grant tokens of slices admitted lately, with when: heartbeats report them so that the
    /// directory drops its reservation exactly when the grant is counted here.
    private let recentGrants = Mutex<[(token: String, at: ContinuousClock.Instant)]>([])

    public init() {}

    /// Admits a session asking for `slice` (nil: none, the whole device shared) on a server of
    /// `deviceCount` devices of `deviceMemory` bytes each, or says why not.
    public func admit(
        _ slice: Slice?, deviceMemory: UInt64, deviceCount: Int32, maxTenants: Int? = nil, session: UInt64 = 0
    ) -> Result<Tenancy, SliceRefusal> {
        if let slice, !(slice.device >= 0 && slice.device < deviceCount) {
            return .failure(SliceRefusal(status: CUDA_ERROR_INVALID_DEVICE, reason: "no device \(slice.device) on this server (it has \(deviceCount))"))
        }
        let devices = slice.map { [$0.device] } ?? Array(0..<max(deviceCount, 0))
        let result: Result<Tenancy, SliceRefusal> = granted.withLock { granted in
            if let maxTenants, let full = devices.first(where: { granted[$0, default: Granted()].tenants >= maxTenants }) {
                // What a real device in exclusive-process mode answers when it is taken.
                return .failure(
                    SliceRefusal(
                        status: CUDA_ERROR_DEVICE_UNAVAILABLE,
                        reason: "device \(full) already serves \(granted[full, default: Granted()].tenants) sessions (the server allows \(maxTenants) per device)"))
            }
            if let slice {
                let device = granted[slice.device] ?? Granted()
                let memory = slice.memoryQuota ?? 0
                if memory > 0, device.memory + memory > deviceMemory {
                    return .failure(
                        SliceRefusal(
                            status: CUDA_ERROR_OUT_OF_MEMORY,
                            reason: "mem=\(memory) does not fit device \(slice.device): \(deviceMemory - min(device.memory, deviceMemory)) of \(deviceMemory) bytes are not granted yet"))
                }
                let compute = slice.computePercent ?? 0
                if compute > 0, device.compute + compute > 100.000_001 {
                    return .failure(
                        SliceRefusal(
                            status: CUDA_ERROR_INVALID_DEVICE,
                            reason: "compute=\(compute)% does not fit device \(slice.device): \(100 - device.compute)% is not granted yet"))
                }
                granted[slice.device, default: Granted()].memory += memory
                granted[slice.device, default: Granted()].compute += compute
            }
            for device in devices { granted[device, default: Granted()].tenants += 1 }
            return .success(Tenancy(slice: slice, devices: devices, session: session))
        }
        if case .success = result, let slice {
            slices.withLock { $0[session] = slice }
            if let token = slice.grant { recentGrants.withLock { $0.append((token, .now)) } }
            changes.notify()
        }
        return result
    }

    /// The slices held now, by session id.
    public func heldSlices() -> [(session: UInt64, slice: Slice)] {
        slices.withLock { $0.map { ($0.key, $0.value) } }.sorted { $0.session < $1.session }
    }

    /// Pool grant tokens admitted in the last `window` (read before `granted(on:)`, so that a
    /// token reported is always counted in what follows).
    public func admittedGrants(within window: Duration = .seconds(10)) -> [String] {
        recentGrants.withLock { grants in
            let cutoff = ContinuousClock.now - window
            grants.removeAll { $0.at < cutoff }
            return grants.map(\.token)
        }
    }

    /// What has been granted on `device` so far (memory in bytes, compute in percent): what the
    /// server's pool heartbeats subtract from the device.
    public func granted(on device: Int32) -> (memory: UInt64, compute: Double) {
        let device = state(of: device)
        return (device.memory, device.compute)
    }

    /// What has been granted on `device` and how many sessions it serves (for /metrics).
    public func state(of device: Int32) -> Granted {
        granted.withLock { $0[device] ?? Granted() }
    }

    /// Gives a session's share and tenancy back when it ends.
    public func release(_ tenancy: Tenancy) {
        if tenancy.slice != nil { slices.withLock { _ = $0.removeValue(forKey: tenancy.session) } }
        granted.withLock { granted in
            for device in tenancy.devices {
                granted[device, default: Granted()].tenants = max(0, granted[device, default: Granted()].tenants - 1)
            }
            guard let slice = tenancy.slice, var device = granted[slice.device] else { return }
            device.memory -= min(device.memory, slice.memoryQuota ?? 0)
            device.compute = max(0, device.compute - (slice.computePercent ?? 0))
            granted[slice.device] = device
        }
        // Counted once the capacity is back, so a heartbeat it triggers reports it.
        if tenancy.slice != nil { changes.notify() }
    }
}
