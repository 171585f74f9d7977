import CXPUDriver

// Stream capture queries. The simulated device builds no graphs (cuStreamBeginCapture is not
// served), so no stream is ever capturing: every query answers CU_STREAM_CAPTURE_STATUS_NONE for
// a valid stream. Libraries ask before each asynchronous copy or allocation (CuPy, PyTorch's
// caching allocator) and take the ordinary path on NONE.

/// The answer for any valid stream; the stream is checked as cuStreamQuery checks it.
private func captureStatus(_ hStream: CUstream?, _ status: UnsafeMutablePointer<CUstreamCaptureStatus>?) throws(Failure) {
    guard let status else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
    _ = try resolveStream(hStream)
    status.pointee = CU_STREAM_CAPTURE_STATUS_NONE
}

/// cuStreamGetCaptureInfo in all its versions: NONE, and no capture id. The graph, dependency and
/// edge outputs of _v2 and _v3 are defined only while a stream captures (cuda.h), so they are left
/// alone: a caller that asked for the base name and got a later version through an older
/// cuGetProcAddress table passes fewer arguments, and nothing is written where it passed none.
private func captureInfo(
    _ hStream: CUstream?, _ status: UnsafeMutablePointer<CUstreamCaptureStatus>?, _ id: UnsafeMutablePointer<cuuint64_t>?
) -> CUresult {
    api { () throws(Failure) in
        try captureStatus(hStream, status)
        id?.pointee = 0
    }
}

@c @implementation public func cuStreamIsCapturing(_ hStream: CUstream?, _ captureStatus: UnsafeMutablePointer<CUstreamCaptureStatus>?) -> CUresult {
    api { () throws(Failure) in try XPUSim.captureStatus(hStream, captureStatus) }
}

@c @implementation public func cuStreamIsCapturing_ptsz(_ hStream: CUstream?, _ captureStatus: UnsafeMutablePointer<CUstreamCaptureStatus>?) -> CUresult {
    api { () throws(Failure) in try XPUSim.captureStatus(hStream, captureStatus) }
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

/// Swaps the calling thread's capture mode (xpu_capture_mode_exchange keeps it per thread). The mode
/// only matters while a stream captures, which none does, but a caller restores what it read.
@c @implementation public func cuThreadExchangeStreamCaptureMode(_ mode: UnsafeMutablePointer<CUstreamCaptureMode>?) -> CUresult {
    api { () throws(Failure) in
        try initializedRegistry()
        guard let mode, mode.pointee.rawValue <= CU_STREAM_CAPTURE_MODE_RELAXED.rawValue else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        mode.pointee = CUstreamCaptureMode(rawValue: xpu_capture_mode_exchange(mode.pointee.rawValue))
    }
}
