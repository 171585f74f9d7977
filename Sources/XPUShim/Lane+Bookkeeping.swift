import CXPUDriver
import CXPURuntimeSupport
import XPUProtocol

// What a lane knows about its session, mirroring the server's checks so that fire-and-forget
// calls fail at the call as CUDA's do (annotations in proto/cuda-driver.api). Ids are the
// application's (tagged); every function runs with the lane's lock held.

extension Lane {
    func checkHandle(_ kind: HandleSets.Kind, _ id: UInt64) -> CUresult? {
        if kind == .stream, id <= 2 { return nil }  // NULL, legacy and per-thread default streams
        if handles.contains(kind, id) { return nil }
        return kind == .context ? CUDA_ERROR_INVALID_CONTEXT : CUDA_ERROR_INVALID_HANDLE
    }

    func checkHandle(_ kind: HandleSets.Kind, _ handle: OpaquePointer?) -> CUresult? {
        checkHandle(kind, Shim.id(handle))
    }

    func checkRange(_ start: CUdeviceptr, count: UInt64, elementSize: UInt64) -> CUresult? {
        let (length, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard !overflow else { return CUDA_ERROR_INVALID_VALUE }
        guard length > 0 else { return nil }
        return memory.contains(start: start, length: length) ? nil : CUDA_ERROR_INVALID_VALUE
    }

    func checkAllocationStart(_ start: CUdeviceptr) -> CUresult? {
        guard let allocation = memory.allocation(startingAt: start), !allocation.isGlobal else { return CUDA_ERROR_INVALID_VALUE }
        return nil
    }

    func recordAllocation(_ start: CUdeviceptr, bytes: UInt64, context: UInt64) {
        memory.insert(.init(start: start, bytes: bytes, context: context, isGlobal: false))
    }

    func recordGlobal(_ start: CUdeviceptr, bytes: UInt64, context: UInt64, module: UInt64) {
        memory.insert(.init(start: start, bytes: bytes, context: context, isGlobal: true))
        globalModules[start] = module
    }

    func forgetAllocation(_ start: CUdeviceptr) {
        memory.remove(startingAt: start)
        xpu_coherent_device_freed(start)
    }

    func forget(_ kind: HandleSets.Kind, _ id: UInt64) {
        handles.remove(kind, id)
        if kind == .context {
            memory.removeAll(ownedBy: id)
            globalModules = globalModules.filter { memory.allocation(startingAt: $0.key) != nil }
            contextDevices[id] = nil
        }
    }

    /// A context of this session and the application's device it runs on.
    func remember(context id: UInt64, device: Int32) {
        handles.insert(.context, id, context: id)
        contextDevices[id] = device
    }
}

extension Shim {
    /// Whether `id` names a live handle of `kind` on the lane it belongs to.
    static func checkHandle(_ kind: HandleSets.Kind, _ id: UInt64) -> CUresult? {
        guard let lane = Lanes.lane(of: id) else { return kind == .context ? CUDA_ERROR_INVALID_CONTEXT : CUDA_ERROR_INVALID_HANDLE }
        return lane.locked { $0.checkHandle(kind, id) }
    }
}
