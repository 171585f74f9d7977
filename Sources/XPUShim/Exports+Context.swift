import CXPUDriver
import CXPURuntimeSupport
import CXPUShimSupport
import XPUProtocol

// The context stack is per thread and lives in the shim: pushing, popping and asking for the
// current context need no round trip. Every request carries the caller's current context (when
// it lives on the server the request goes to). A context's handle names its server (`Lanes`).

@c @implementation public func cuCtxCreate_v4(
    _ pctx: UnsafeMutablePointer<CUcontext?>?, _ ctxCreateParams: UnsafeMutablePointer<CUctxCreateParams>?,
    _ flags: UInt32, _ dev: CUdevice
) -> CUresult {
    if let parameters = ctxCreateParams?.pointee,
        parameters.execAffinityParams != nil || parameters.cigParams != nil || parameters.numExecAffinityParams != 0
    {
        // Execution affinity (MPS) and CUDA-in-graphics contexts are not served.
        return CUDA_ERROR_NOT_SUPPORTED
    }
    return cuCtxCreate_v2(pctx, flags, dev)
}

@c @implementation public func cuCtxPushCurrent_v2(_ ctx: CUcontext?) -> CUresult {
    let id = Shim.id(ctx)
    guard id != 0, Shim.checkHandle(.context, id) == nil else { return initializedOr(CUDA_ERROR_INVALID_CONTEXT) }
    return xpu_context_push(id) == 1 ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY
}

@c @implementation public func cuCtxPopCurrent_v2(_ pctx: UnsafeMutablePointer<CUcontext?>?) -> CUresult {
    guard isInitialized() else { return CUDA_ERROR_NOT_INITIALIZED }
    guard xpu_context_current() != 0 else { return CUDA_ERROR_INVALID_CONTEXT }
    let id = xpu_context_pop()
    pctx?.pointee = CUcontext(bitPattern: UInt(id))
    return CUDA_SUCCESS
}

@c @implementation public func cuCtxSetCurrent(_ ctx: CUcontext?) -> CUresult {
    guard isInitialized() else { return CUDA_ERROR_NOT_INITIALIZED }
    let id = Shim.id(ctx)
    guard id == 0 || Shim.checkHandle(.context, id) == nil else { return CUDA_ERROR_INVALID_CONTEXT }
    xpu_context_set_current(id)
    return CUDA_SUCCESS
}

@c @implementation public func cuCtxGetCurrent(_ pctx: UnsafeMutablePointer<CUcontext?>?) -> CUresult {
    guard isInitialized() else { return CUDA_ERROR_NOT_INITIALIZED }
    guard let pctx else { return CUDA_ERROR_INVALID_VALUE }
    pctx.pointee = CUcontext(bitPattern: UInt(xpu_context_current()))
    return CUDA_SUCCESS
}

// Primary contexts: the server keeps one private context per device for each session, so a
// tenant's reset or release never touches another tenant's work.

@c @implementation public func cuDevicePrimaryCtxRetain(_ pctx: UnsafeMutablePointer<CUcontext?>?, _ dev: CUdevice) -> CUresult {
    guard let pctx else { return CUDA_ERROR_INVALID_VALUE }
    let target = Target(device: dev)
    return Shim.perform(PrimaryCtxRetainRequest(device: target.remoteDevice), on: target) { lane, reply in
        let context = lane.tagged(reply.context)
        lane.remember(context: context, device: dev)
        lane.primaryContexts[dev] = context
        pctx.pointee = CUcontext(bitPattern: UInt(context))
    }
}

@c @implementation public func cuDevicePrimaryCtxRelease_v2(_ dev: CUdevice) -> CUresult {
    let target = Target(device: dev)
    var destroyed: UInt64?
    let status = Shim.perform(PrimaryCtxReleaseRequest(device: target.remoteDevice), on: target) { lane, reply in
        if reply.destroyed != 0 { destroyed = forgetPrimary(dev, lane: lane) }
    }
    // Only the server knows whether this was the last release: the runtime's context-local
    // storage destructors run once it has said so.
    if let destroyed { xpu_runtime_context_destroying(CUcontext(bitPattern: UInt(destroyed))) }
    return status
}

@c @implementation public func cuDevicePrimaryCtxSetFlags_v2(_ dev: CUdevice, _ flags: UInt32) -> CUresult {
    let target = Target(device: dev)
    return Shim.perform(PrimaryCtxSetFlagsRequest(device: target.remoteDevice, flags: flags), on: target) { _, _ in }
}

@c @implementation public func cuDevicePrimaryCtxGetState(
    _ dev: CUdevice, _ flags: UnsafeMutablePointer<UInt32>?, _ active: UnsafeMutablePointer<Int32>?
) -> CUresult {
    guard let flags, let active else { return CUDA_ERROR_INVALID_VALUE }
    let target = Target(device: dev)
    return Shim.perform(PrimaryCtxGetStateRequest(device: target.remoteDevice), on: target) { _, reply in
        flags.pointee = reply.flags
        active.pointee = reply.active
    }
}

@c @implementation public func cuDevicePrimaryCtxReset_v2(_ dev: CUdevice) -> CUresult {
    let target = Target(device: dev)
    // The runtime's context-local storage destructors run while the context still works.
    if let primary = target.lane?.locked({ $0.primaryContexts[dev] }) {
        xpu_runtime_context_destroying(CUcontext(bitPattern: UInt(primary)))
    }
    return Shim.perform(PrimaryCtxResetRequest(device: target.remoteDevice), on: target) { lane, _ in
        _ = forgetPrimary(dev, lane: lane)
    }
}

/// The server destroyed the session's primary context of `device`: forget it and what it held
/// (lane lock held). Returns the context's handle, when the shim knew it.
private func forgetPrimary(_ device: CUdevice, lane: Lane) -> UInt64? {
    guard let id = lane.primaryContexts.removeValue(forKey: device) else { return nil }
    lane.forget(.context, id)
    return id
}

/// cuInit succeeded in this process (and the first server is still there).
private func isInitialized() -> Bool {
    requireInitialized() == nil
}

/// `status`, unless the driver is not initialized (which CUDA reports first).
private func initializedOr(_ status: CUresult) -> CUresult {
    isInitialized() ? status : CUDA_ERROR_NOT_INITIALIZED
}
