import CXPUDriver

// Stream capture queries, answered by the shim: graphs are not served (cuStreamBeginCapture is
// refused), so no stream is ever capturing and every query answers CU_STREAM_CAPTURE_STATUS_NONE
// for a valid stream, with no round trip. CuPy asks before every asynchronous copy and PyTorch's
// caching allocator before every allocation; both take the ordinary path on NONE.

/// NONE for a live stream of this process (the default streams need a current context).
private func captureStatus(_ hStream: CUstream?, _ status: UnsafeMutablePointer<CUstreamCaptureStatus>?) -> CUresult {
    guard let status else { return CUDA_ERROR_INVALID_VALUE }
    let id = Shim.id(hStream)
    if id <= 2 {
        if let refusal = requireContext() { return refusal }
    } else {
        if let refusal = requireInitialized() { return refusal }
        if let refusal = Shim.checkHandle(.stream, id) { return refusal }
    }
    status.pointee = CU_STREAM_CAPTURE_STATUS_NONE
    return CUDA_SUCCESS
}

/// cuStreamGetCaptureInfo in all its versions: NONE and no capture id. The graph, dependency and
/// edge outputs of _v2 and _v3 are defined only while a stream captures (cuda.h), so they are left
/// alone: a caller that asked cuGetProcAddress for the base name at an older version may have been
/// handed a later variant and passes fewer arguments, and nothing is written where it passed none.
private func captureInfo(
    _ hStream: CUstream?, _ status: UnsafeMutablePointer<CUstreamCaptureStatus>?, _ id: UnsafeMutablePointer<cuuint64_t>?
) -> CUresult {
    let result = captureStatus(hStream, status)
    if result == CUDA_SUCCESS { id?.pointee = 0 }
    return result
}

@c @implementation public func cuStreamIsCapturing(_ hStream: CUstream?, _ captureStatus: UnsafeMutablePointer<CUstreamCaptureStatus>?) -> CUresult {
    XPUShim.captureStatus(hStream, captureStatus)
}

@c @implementation public func cuStreamIsCapturing_ptsz(_ hStream: CUstream?, _ captureStatus: UnsafeMutablePointer<CUstreamCaptureStatus>?) -> CUresult {
    XPUShim.captureStatus(hStream, captureStatus)
}

@c @implementation public func cuStreamGetCaptureInfo(
    _ hStream: CUstream?, _ captureStatus_out: UnsafeMutablePointer<CUstreamCaptureStatus>?, _ id_out: UnsafeMutablePointer<cuuint64_t>?
) -> CUresult {
    captureInfo(hStream, captureStatus_out, id_out)
}

@c @implementation public func cuStreamGetCaptureInfo_ptsz(
    _ hStream: CUstream?, _ captureStatus_out: UnsafeMutablePointer<CUstreamCaptureStatus>?, _ id_out: UnsafeMutablePointer<cuuint64_t>?
) -> CUresult {
    captureInfo(hStream, captureStatus_out, id_out)
}

@c @implementation public func cuStreamGetCaptureInfo_v2(
    _ hStream: CUstream?, _ captureStatus_out: UnsafeMutablePointer<CUstreamCaptureStatus>?, _ id_out: UnsafeMutablePointer<cuuint64_t>?,
    _ graph_out: UnsafeMutablePointer<CUgraph?>?, _ dependencies_out: UnsafeMutablePointer<UnsafePointer<CUgraphNode?>?>?,
    _ numDependencies_out: UnsafeMutablePointer<Int>?
) -> CUresult {
    captureInfo(hStream, captureStatus_out, id_out)
}

@c @implementation public func cuStreamGetCaptureInfo_v2_ptsz(
    _ hStream: CUstream?, _ captureStatus_out: UnsafeMutablePointer<CUstreamCaptureStatus>?, _ id_out: UnsafeMutablePointer<cuuint64_t>?,
    _ graph_out: UnsafeMutablePointer<CUgraph?>?, _ dependencies_out: UnsafeMutablePointer<UnsafePointer<CUgraphNode?>?>?,
    _ numDependencies_out: UnsafeMutablePointer<Int>?
) -> CUresult {
    captureInfo(hStream, captureStatus_out, id_out)
}

@c @implementation public func cuStreamGetCaptureInfo_v3(
    _ hStream: CUstream?, _ captureStatus_out: UnsafeMutablePointer<CUstreamCaptureStatus>?, _ id_out: UnsafeMutablePointer<cuuint64_t>?,
    _ graph_out: UnsafeMutablePointer<CUgraph?>?, _ dependencies_out: UnsafeMutablePointer<UnsafePointer<CUgraphNode?>?>?,
    _ edgeData_out: UnsafeMutablePointer<UnsafePointer<CUgraphEdgeData>?>?, _ numDependencies_out: UnsafeMutablePointer<Int>?
) -> CUresult {
    captureInfo(hStream, captureStatus_out, id_out)
}

@c @implementation public func cuStreamGetCaptureInfo_v3_ptsz(
    _ hStream: CUstream?, _ captureStatus_out: UnsafeMutablePointer<CUstreamCaptureStatus>?, _ id_out: UnsafeMutablePointer<cuuint64_t>?,
    _ graph_out: UnsafeMutablePointer<CUgraph?>?, _ dependencies_out: UnsafeMutablePointer<UnsafePointer<CUgraphNode?>?>?,
    _ edgeData_out: UnsafeMutablePointer<UnsafePointer<CUgraphEdgeData>?>?, _ numDependencies_out: UnsafeMutablePointer<Int>?
) -> CUresult {
    captureInfo(hStream, captureStatus_out, id_out)
}

/// Swaps the calling thread's capture mode (kept per thread by xpu_capture_mode_exchange). The mode
/// only matters while a stream captures, which none does, but a caller restores what it read.
@c @implementation public func cuThreadExchangeStreamCaptureMode(_ mode: UnsafeMutablePointer<CUstreamCaptureMode>?) -> CUresult {
    if let refusal = requireInitialized() { return refusal }
    guard let mode, mode.pointee.rawValue <= CU_STREAM_CAPTURE_MODE_RELAXED.rawValue else { return CUDA_ERROR_INVALID_VALUE }
    mode.pointee = CUstreamCaptureMode(rawValue: xpu_capture_mode_exchange(mode.pointee.rawValue))
    return CUDA_SUCCESS
}
