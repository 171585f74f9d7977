#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPUShimSupport
import XPUProtocol

/// What the exports (generated and hand-written) share: round trips and fire-and-forget posts,
/// handle conversion, local validation, and the client-side effects of calls.
enum Shim {
    /// Sends `request`, waits for its reply, and on success hands the decoded reply to `onSuccess`.
    /// All of it happens under one hold of the lane lock, so the shim's bookkeeping of a call is
    /// atomic with the call (another thread never sees a freed address still recorded, or a new
    /// one not yet). A `cached` call is answered from the first successful reply to the request.
    static func perform<R: CallRequest>(_ request: R, cached: Bool = false, _ onSuccess: (R.Reply) -> Void) -> CUresult {
        do {
            return try Lane.shared.locked { lane throws(ShimFailure) in
                _ = try lane.channel()
                let encoded = request.encoded
                let key = Lane.CacheKey(call: R.call.rawValue, request: encoded)
                var outcome: (CUresult, [UInt8])
                if cached, let reply = lane.cache[key] {
                    outcome = (CUDA_SUCCESS, reply)
                } else {
                    outcome = try lane.exchange([(R.call, encoded, false)])[0]
                    if cached, outcome.0 == CUDA_SUCCESS { lane.cache[key] = outcome.1 }
                }
                guard outcome.0 == CUDA_SUCCESS else { return outcome.0 }
                guard let reply = try? R.Reply(decoding: outcome.1) else {
                    throw ShimFailure.lost(lane, "malformed reply to \(R.call)")
                }
                onSuccess(reply)
                return CUDA_SUCCESS
            }
        } catch {
            return error.status
        }
    }

    /// Queues a fire-and-forget request. Its arguments were checked locally; a failure on the
    /// server comes back with the next reply, as CUDA reports asynchronous errors.
    static func post<R: CallRequest>(_ request: R) -> CUresult {
        do {
            return try Lane.shared.locked { lane throws(ShimFailure) in
                _ = try lane.channel()
                return try lane.post(request)
            }
        } catch {
            return error.status
        }
    }

    /// A handle as it travels: the session-local id (0 for NULL).
    static func wire(_ handle: OpaquePointer?) -> UInt64 {
        UInt64(UInt(bitPattern: handle))
    }

    static func store(uuid: [UInt8], to destination: UnsafeMutablePointer<CUuuid>) {
        withUnsafeMutableBytes(of: &destination.pointee) { bytes in
            for index in 0..<min(bytes.count, uuid.count) { bytes[index] = uuid[index] }
        }
    }

    /// Copies a string into a C buffer of `capacity` bytes, always NUL-terminated (as the driver).
    static func store(string: String, to destination: UnsafeMutablePointer<CChar>, capacity: Int32) {
        guard capacity > 0 else { return }
        let utf8 = Array(string.utf8.prefix(Int(capacity) - 1))
        for (index, byte) in utf8.enumerated() { destination[index] = CChar(bitPattern: byte) }
        destination[utf8.count] = 0
    }

    // Local checks before a fire-and-forget call, mirroring the server's (and the driver's).

    /// CUDA_ERROR_NOT_INITIALIZED before cuInit, CUDA_ERROR_INVALID_CONTEXT without a current context.
    static func requireContext() -> CUresult? {
        if let refusal = Lane.shared.locked({ lane in lane.refusal() }) { return refusal }
        return xpu_context_current() == 0 ? CUDA_ERROR_INVALID_CONTEXT : nil
    }

    static func checkHandle(_ kind: HandleSets.Kind, _ handle: OpaquePointer?) -> CUresult? {
        checkHandle(kind, wire(handle))
    }

    static func checkHandle(_ kind: HandleSets.Kind, _ id: UInt64) -> CUresult? {
        if kind == .stream, id <= 2 { return nil }  // NULL, legacy and per-thread default streams
        let known = Lane.shared.locked { lane in lane.handles.contains(kind, id) }
        if known { return nil }
        return kind == .context ? CUDA_ERROR_INVALID_CONTEXT : CUDA_ERROR_INVALID_HANDLE
    }

    static func checkRange(_ start: CUdeviceptr, count: UInt64, elementSize: UInt64) -> CUresult? {
        let (length, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard !overflow else { return CUDA_ERROR_INVALID_VALUE }
        guard length > 0 else { return nil }
        let inside = Lane.shared.locked { lane in lane.memory.contains(start: start, length: length) }
        return inside ? nil : CUDA_ERROR_INVALID_VALUE
    }

    static func checkAllocationStart(_ start: CUdeviceptr) -> CUresult? {
        let allocation = Lane.shared.locked { lane in lane.memory.allocation(startingAt: start) }
        guard let allocation, !allocation.isGlobal else { return CUDA_ERROR_INVALID_VALUE }
        return nil
    }

    // Bookkeeping of what the session holds (annotations in proto/cuda-driver.api).

    static func recordAllocation(_ start: CUdeviceptr, bytes: UInt64) {
        let context = xpu_context_current()
        Lane.shared.locked { lane in
            lane.memory.insert(.init(start: start, bytes: bytes, context: context, isGlobal: false))
        }
    }

    static func recordGlobal(_ start: CUdeviceptr, bytes: UInt64, module: UInt64) {
        let context = xpu_context_current()
        Lane.shared.locked { lane in
            lane.memory.insert(.init(start: start, bytes: bytes, context: context, isGlobal: true))
            lane.globalModules[start] = module
        }
    }

    static func forgetAllocation(_ start: CUdeviceptr) {
        Lane.shared.locked { lane in lane.memory.remove(startingAt: start) }
    }

    static func forget(_ kind: HandleSets.Kind, _ id: UInt64) {
        Lane.shared.locked { lane in
            lane.handles.remove(kind, id)
            if kind == .context {
                lane.memory.removeAll(ownedBy: id)
                lane.globalModules = lane.globalModules.filter { lane.memory.allocation(startingAt: $0.key) != nil }
                lane.contextDevices[id] = nil
            }
        }
    }

    static func remember(context id: UInt64, device: Int32) {
        Lane.shared.locked { lane in
            lane.handles.insert(.context, id, context: id)
            lane.contextDevices[id] = device
        }
    }

    // Hooks of remote calls that also change client-side state (`hook` in proto/cuda-driver.api).

    /// cuCtxCreate makes the new context current on the calling thread.
    static func completedCuCtxCreate_v2(_ request: CuCtxCreate_v2Request, _ reply: CuCtxCreate_v2Reply) {
        remember(context: reply.pctx, device: request.dev)
        _ = xpu_context_push(reply.pctx)
    }

    static func completedCuCtxDestroy_v2(_ request: CuCtxDestroy_v2Request, _ reply: CuCtxDestroy_v2Reply) {
        xpu_context_forget(request.ctx)
    }

    static func completedCuModuleUnload(_ request: CuModuleUnloadRequest) {
        Lane.shared.locked { lane in
            for function in lane.moduleKernels.removeValue(forKey: request.hmod) ?? [] {
                if let kernel = lane.kernels.removeValue(forKey: function) { free(kernel.name) }
                lane.handles.remove(.function, function)
            }
            // The module's variables go with it: the driver frees their memory.
            for (start, module) in lane.globalModules where module == request.hmod {
                lane.memory.remove(startingAt: start)
                lane.globalModules[start] = nil
            }
        }
    }
}

/// Every driver entry point the shim does not serve yet calls this (generated unsupported.c).
/// It answers CUDA_ERROR_NOT_SUPPORTED and logs each name once.
@c(xpu_shim_unsupported) public func xpuShimUnsupported(_ name: UnsafePointer<CChar>?) -> Int32 {
    let symbol = name.map { String(cString: $0) } ?? "?"
    let first = Lane.shared.locked { _ in UnsupportedCalls.seen.insert(symbol).inserted }
    if first { ShimLog.log(.warn, "\(symbol) is not supported by xpu-remote yet: returning CUDA_ERROR_NOT_SUPPORTED") }
    return Int32(CUDA_ERROR_NOT_SUPPORTED.rawValue)
}

enum UnsupportedCalls {
    /// Guarded by the lane lock.
    nonisolated(unsafe) static var seen = Set<String>()
}
