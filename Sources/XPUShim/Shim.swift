#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPURuntimeSupport
import CXPUShimSupport
import XPUProtocol

/// What the exports (generated and hand-written) share: round trips and fire-and-forget posts,
/// handle conversion, and the client-side effects of calls (the checks and records are the
/// lane's, `Lane+Bookkeeping.swift`).
enum Shim {
    /// Sends `request` to `target`, waits for its reply, and on success hands the decoded reply to
    /// `onSuccess`. All of it happens under one hold of the lane's lock, so the shim's bookkeeping
    /// of a call is atomic with the call (another thread never sees a freed address still
    /// recorded, or a new one not yet). A `cached` call is answered from the first successful
    /// reply to the request.
    static func perform<R: CallRequest>(
        _ request: R, on target: Target, cached: Bool = false, _ onSuccess: (Lane, R.Reply) -> Void
    ) -> CUresult {
        // Managed and mapped memory (coherent.c): the device sees the host's writes before
        // device work, and after a synchronization the host sees what the device wrote. The
        // lane's lock is not held here: pushes and pulls copy through it.
        if writesDeviceMemory(R.call) { xpu_coherent_push() }
        let status = exchange(request, on: target, cached: cached, onSuccess)
        if status == CUDA_SUCCESS, synchronizes(R.call) { xpu_coherent_pull() }
        return status
    }

    /// Generated calls that write device memory the host may map (launches and copies are
    /// hand-written). A switch, not a set: every call of the program asks.
    static func writesDeviceMemory(_ call: CallID) -> Bool {
        switch call {
        case .cuMemsetD8_v2, .cuMemsetD32_v2: true
        default: false
        }
    }

    /// The calls after which the device's work so far is visible to the host.
    static func synchronizes(_ call: CallID) -> Bool {
        switch call {
        case .cuCtxSynchronize, .cuStreamSynchronize, .cuEventSynchronize, .cuMemsetD8_v2, .cuMemsetD32_v2: true
        default: false
        }
    }

    private static func exchange<R: CallRequest>(
        _ request: R, on target: Target, cached: Bool, _ onSuccess: (Lane, R.Reply) -> Void
    ) -> CUresult {
        target.locked { lane throws(ShimFailure) in
            _ = try lane.channel()
            let encoded = request.encoded
            let key = Lane.CacheKey(call: R.call.rawValue, request: encoded)
            var outcome: (CUresult, [UInt8])
            if cached, let reply = lane.cache[key] {
                outcome = (CUDA_SUCCESS, reply)
            } else {
                outcome = try lane.exchange([(R.call, encoded, false)], context: target.context)[0]
                if cached, outcome.0 == CUDA_SUCCESS { lane.cache[key] = outcome.1 }
            }
            guard outcome.0 == CUDA_SUCCESS else { return outcome.0 }
            guard let reply = try? R.Reply(decoding: outcome.1) else {
                throw ShimFailure.lost(lane, "malformed reply to \(R.call)")
            }
            onSuccess(lane, reply)
            return CUDA_SUCCESS
        }
    }

    /// Queues a fire-and-forget request on `lane` (its lock held by the caller). Its arguments
    /// were checked locally; a failure on the server comes back with the next reply, as CUDA
    /// reports asynchronous errors.
    static func post<R: CallRequest>(_ request: R, on lane: Lane, context: UInt64) -> CUresult {
        do {
            _ = try lane.channel()
            return try lane.post(request, context: context)
        } catch {
            return error.status
        }
    }

    /// A handle as the application holds it (tagged with its lane; 0 for NULL).
    static func id(_ handle: OpaquePointer?) -> UInt64 {
        UInt64(UInt(bitPattern: handle))
    }

    /// A handle as it travels to its server: the session-local id (0 for NULL).
    static func wire(_ handle: OpaquePointer?) -> UInt64 {
        Lanes.wire(id(handle))
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

    // Hooks of remote calls that also change client-side state (`hook` in proto/cuda-driver.api).

    /// cuCtxCreate makes the new context current on the calling thread.
    static func completedCuCtxCreate_v2(_ request: CuCtxCreate_v2Request, _ reply: CuCtxCreate_v2Reply, lane: Lane) {
        let context = lane.tagged(reply.pctx)
        lane.remember(context: context, device: lane.clientDevice(request.dev))
        _ = xpu_context_push(context)
    }

    static func completedCuCtxDestroy_v2(_ request: CuCtxDestroy_v2Request, _ reply: CuCtxDestroy_v2Reply, lane: Lane) {
        let context = lane.tagged(request.ctx)
        xpu_context_forget(context)
        xpu_runtime_context_destroying(CUcontext(bitPattern: UInt(context)))
    }

    static func completedCuModuleUnload(_ request: CuModuleUnloadRequest, lane: Lane) {
        for function in lane.moduleKernels.removeValue(forKey: lane.tagged(request.hmod)) ?? [] {
            if let kernel = lane.kernels.removeValue(forKey: function) { free(kernel.name) }
            lane.handles.remove(.function, function)
        }
        // The module's variables go with it: the driver frees their memory.
        let module = lane.tagged(request.hmod)
        for (start, owner) in lane.globalModules where owner == module {
            lane.memory.remove(startingAt: start)
            lane.globalModules[start] = nil
        }
    }
}

/// Every driver entry point the shim does not serve yet calls this (generated unsupported.c).
/// It answers CUDA_ERROR_NOT_SUPPORTED and logs each name once.
@c(xpu_shim_unsupported) public func xpuShimUnsupported(_ name: UnsafePointer<CChar>?) -> Int32 {
    let symbol = name.map { String(cString: $0) } ?? "?"
    xpu_registry_lock()
    let first = UnsupportedCalls.seen.insert(symbol).inserted
    xpu_registry_unlock()
    if first { ShimLog.log(.warn, "\(symbol) is not supported by xpu-remote yet: returning CUDA_ERROR_NOT_SUPPORTED") }
    return Int32(CUDA_ERROR_NOT_SUPPORTED.rawValue)
}

enum UnsupportedCalls {
    /// Guarded by the registry lock.
    nonisolated(unsafe) static var seen = Set<String>()
}
