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

    /// One ledger per server process (one driver, one set of devices).
    static let shared = DeviceLedger()

    /// Grants `slice` on a device of `deviceMemory` bytes and `deviceCount` devices, or says why not.
    func admit(_ slice: Slice, deviceMemory: UInt64, deviceCount: Int32) -> Result<Void, SliceRefusal> {
        guard slice.device >= 0, slice.device < deviceCount else {
            return .failure(SliceRefusal(status: CUDA_ERROR_INVALID_DEVICE, reason: "no device \(slice.device) on this server (it has \(deviceCount))"))
        }
        return granted.withLock { granted in
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
