import CXPUDriver
import Synchronization

/// The slices granted on each device of this server: a slice is admitted only if its memory
/// quota and compute share fit what the device has not granted yet, so quotas are promises the
/// device can keep. Sessions without a slice are not counted (they share what is left).
final class DeviceLedger: Sendable {
    struct Granted {
        var memory: UInt64 = 0
        var compute: Double = 0
    }

    private let granted = Mutex<[Int32: Granted]>([:])
    /// Pool grant tokens of slices admitted lately, with when: heartbeats report them so that the
    /// directory drops its reservation exactly when the grant is counted here.
    private let recentGrants = Mutex<[(token: String, at: ContinuousClock.Instant)]>([])

    /// One ledger per server process (one driver, one set of devices).
    static let shared = DeviceLedger()

    /// Grants `slice` on a device of `deviceMemory` bytes and `deviceCount` devices, or says why not.
    func admit(_ slice: Slice, deviceMemory: UInt64, deviceCount: Int32) -> Result<Void, SliceRefusal> {
        guard slice.device >= 0, slice.device < deviceCount else {
            return .failure(SliceRefusal(status: CUDA_ERROR_INVALID_DEVICE, reason: "no device \(slice.device) on this server (it has \(deviceCount))"))
        }
        let result: Result<Void, SliceRefusal> = granted.withLock { granted in
            var device = granted[slice.device] ?? Granted()
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
            device.memory += memory
            device.compute += compute
            granted[slice.device] = device
            return .success(())
        }
        if case .success = result, let token = slice.grant { recentGrants.withLock { $0.append((token, .now)) } }
        return result
    }

    /// Pool grant tokens admitted in the last `window` (read before `granted(on:)`, so that a
    /// token reported is always counted in what follows).
    func admittedGrants(within window: Duration = .seconds(10)) -> [String] {
        recentGrants.withLock { grants in
            let cutoff = ContinuousClock.now - window
            grants.removeAll { $0.at < cutoff }
            return grants.map(\.token)
        }
    }

    /// What has been granted on `device` so far (memory in bytes, compute in percent): what the
    /// server's pool heartbeats subtract from the device.
    func granted(on device: Int32) -> (memory: UInt64, compute: Double) {
        granted.withLock { granted in
            let device = granted[device] ?? Granted()
            return (device.memory, device.compute)
        }
    }

    /// Gives a slice's share back when its session ends.
    func release(_ slice: Slice) {
        granted.withLock { granted in
            guard var device = granted[slice.device] else { return }
            device.memory -= min(device.memory, slice.memoryQuota ?? 0)
            device.compute = max(0, device.compute - (slice.computePercent ?? 0))
            granted[slice.device] = device
        }
    }
}
