import CXPUDriver
import CXPUShimSupport
import XPUProtocol

// The context stack is per thread and lives in the shim: pushing, popping and asking for the
// current context need no round trip. Every request carries the caller's current context.

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
    let id = Shim.wire(ctx)
    guard id != 0, Shim.checkHandle(.context, ctx) == nil else { return initializedOr(CUDA_ERROR_INVALID_CONTEXT) }
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
    let id = Shim.wire(ctx)
    guard id == 0 || Shim.checkHandle(.context, ctx) == nil else { return CUDA_ERROR_INVALID_CONTEXT }
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
    return Shim.perform(PrimaryCtxRetainRequest(device: dev)) { reply in
        Shim.remember(context: reply.context, device: dev)
        Lane.shared.locked { lane in lane.primaryContexts[dev] = reply.context }
        pctx.pointee = CUcontext(bitPattern: UInt(reply.context))
    }
}

@c @implementation public func cuDevicePrimaryCtxRelease_v2(_ dev: CUdevice) -> CUresult {
    Shim.perform(PrimaryCtxReleaseRequest(device: dev)) { reply in
        if reply.destroyed != 0 { forgetPrimary(dev) }
    }
}

@c @implementation public func cuDevicePrimaryCtxSetFlags_v2(_ dev: CUdevice, _ flags: UInt32) -> CUresult {
    Shim.perform(PrimaryCtxSetFlagsRequest(device: dev, flags: flags)) { _ in }
}

@c @implementation public func cuDevicePrimaryCtxGetState(
    _ dev: CUdevice, _ flags: UnsafeMutablePointer<UInt32>?, _ active: UnsafeMutablePointer<Int32>?
) -> CUresult {
    guard let flags, let active else { return CUDA_ERROR_INVALID_VALUE }
    return Shim.perform(PrimaryCtxGetStateRequest(device: dev)) { reply in
        flags.pointee = reply.flags
        active.pointee = reply.active
    }
}

@c @implementation public func cuDevicePrimaryCtxReset_v2(_ dev: CUdevice) -> CUresult {
    Shim.perform(PrimaryCtxResetRequest(device: dev)) { _ in forgetPrimary(dev) }
}

/// The server destroyed the session's primary context of `device`: forget it and what it held.
private func forgetPrimary(_ device: CUdevice) {
    let id = Lane.shared.locked { lane in lane.primaryContexts.removeValue(forKey: device) }
    if let id { Shim.forget(.context, id) }
}

private func isInitialized() -> Bool {
    Lane.shared.locked { lane in (try? lane.channel()) != nil }
}

/// `status`, unless the driver is not initialized (which CUDA reports first).
private func initializedOr(_ status: CUresult) -> CUresult {
    isInitialized() ? status : CUDA_ERROR_NOT_INITIALIZED
}
