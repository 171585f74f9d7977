#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPUShimSupport

// Peer access between devices. xpu-remote offers no peer mappings (a kernel on one device never
// reads another's memory: the devices may be on different servers), so cuDeviceCanAccessPeer
// answers 0 for every pair, as a driver does for devices without a peer link, and programs fall
// back to copies. cuMemcpyPeer copies between two contexts: within one context it is the
// server's device-to-device copy; between contexts (of one server or of two) the shim stages the
// bytes through its own memory (Exports+Copy.swift), which completes before the call returns,
// even the asynchronous form (stronger ordering than CUDA asks for, and always correct).

@c @implementation public func cuDeviceCanAccessPeer(_ canAccessPeer: UnsafeMutablePointer<Int32>?, _ dev: CUdevice, _ peerDev: CUdevice) -> CUresult {
    guard let canAccessPeer else { return CUDA_ERROR_INVALID_VALUE }
    for ordinal in [dev, peerDev] {
        let target = Target(device: ordinal)
        guard target.lane != nil else { return target.refusal }
    }
    canAccessPeer.pointee = 0
    return CUDA_SUCCESS
}

@c @implementation public func cuMemcpyPeer(
    _ dstDevice: CUdeviceptr, _ dstContext: CUcontext?, _ srcDevice: CUdeviceptr, _ srcContext: CUcontext?, _ ByteCount: Int
) -> CUresult {
    peerCopy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, stream: nil, asynchronous: false)
}

@c @implementation public func cuMemcpyPeer_ptds(
    _ dstDevice: CUdeviceptr, _ dstContext: CUcontext?, _ srcDevice: CUdeviceptr, _ srcContext: CUcontext?, _ ByteCount: Int
) -> CUresult {
    peerCopy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, stream: nil, asynchronous: false)
}

@c @implementation public func cuMemcpyPeerAsync(
    _ dstDevice: CUdeviceptr, _ dstContext: CUcontext?, _ srcDevice: CUdeviceptr, _ srcContext: CUcontext?, _ ByteCount: Int,
    _ hStream: CUstream?
) -> CUresult {
    peerCopy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, stream: hStream, asynchronous: true)
}

@c @implementation public func cuMemcpyPeerAsync_ptsz(
    _ dstDevice: CUdeviceptr, _ dstContext: CUcontext?, _ srcDevice: CUdeviceptr, _ srcContext: CUcontext?, _ ByteCount: Int,
    _ hStream: CUstream?
) -> CUresult {
    peerCopy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, stream: hStream, asynchronous: true)
}

/// A copy of `count` bytes from `source` in `sourceContext` to `destination` in
/// `destinationContext`: each pointer must lie in its own context's server's allocations.
private func peerCopy(
    _ destination: CUdeviceptr, _ destinationContext: CUcontext?, _ source: CUdeviceptr, _ sourceContext: CUcontext?,
    _ count: Int, stream: CUstream?, asynchronous: Bool
) -> CUresult {
    let (destinationID, sourceID) = (Shim.id(destinationContext), Shim.id(sourceContext))
    for id in [destinationID, sourceID] {
        if let refusal = Shim.checkHandle(.context, id) { return refusal }
    }
    let destinationEnd = Target(.context, destinationID)
    let sourceEnd = Target(.context, sourceID)
    for (end, pointer) in [(destinationEnd, destination), (sourceEnd, source)] {
        let refusal = end.locked { lane in lane.checkRange(pointer, count: UInt64(count), elementSize: 1) ?? CUDA_SUCCESS }
        guard refusal == CUDA_SUCCESS else { return refusal }
    }
    if asynchronous, !isStream(stream, ofEither: destinationEnd, sourceEnd) { return CUDA_ERROR_INVALID_HANDLE }
    // One context, and the calling thread's: the server copies, as for cuMemcpyDtoD.
    if destinationID == sourceID, destinationID == xpu_context_current() {
        return asynchronous
            ? cuMemcpyDtoDAsync_v2(destination, source, count, stream) : cuMemcpyDtoD_v2(destination, source, count)
    }
    return stagedCopy(to: destination, on: destinationEnd, from: source, on: sourceEnd, count: count)
}
