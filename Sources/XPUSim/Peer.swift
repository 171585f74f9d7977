import CXPUDriver
import Glibc

// Peer access on the simulated device: no device maps another's memory, so every pair answers 0
// (as devices without a peer link do); cuMemcpyPeer copies between two contexts' allocations
// once all their work, and the calling thread's context's, has finished. Even the asynchronous
// form completes before it returns: stronger ordering than CUDA asks for, and always correct.

@c @implementation public func cuDeviceCanAccessPeer(_ canAccessPeer: UnsafeMutablePointer<Int32>?, _ dev: CUdevice, _ peerDev: CUdevice) -> CUresult {
    api { () throws(Failure) in
        guard let canAccessPeer else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        _ = try lookupDevice(dev)
        _ = try lookupDevice(peerDev)
        canAccessPeer.pointee = 0
    }
}

@c @implementation public func cuMemcpyPeer(
    _ dstDevice: CUdeviceptr, _ dstContext: CUcontext?, _ srcDevice: CUdeviceptr, _ srcContext: CUcontext?, _ ByteCount: Int
) -> CUresult {
    peerCopy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, stream: nil)
}

@c @implementation public func cuMemcpyPeer_ptds(
    _ dstDevice: CUdeviceptr, _ dstContext: CUcontext?, _ srcDevice: CUdeviceptr, _ srcContext: CUcontext?, _ ByteCount: Int
) -> CUresult {
    peerCopy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, stream: nil)
}

@c @implementation public func cuMemcpyPeerAsync(
    _ dstDevice: CUdeviceptr, _ dstContext: CUcontext?, _ srcDevice: CUdeviceptr, _ srcContext: CUcontext?, _ ByteCount: Int,
    _ hStream: CUstream?
) -> CUresult {
    peerCopy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, stream: hStream)
}

@c @implementation public func cuMemcpyPeerAsync_ptsz(
    _ dstDevice: CUdeviceptr, _ dstContext: CUcontext?, _ srcDevice: CUdeviceptr, _ srcContext: CUcontext?, _ ByteCount: Int,
    _ hStream: CUstream?
) -> CUresult {
    peerCopy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, stream: hStream)
}

private func peerCopy(
    _ dst: CUdeviceptr, _ dstCtx: CUcontext?, _ src: CUdeviceptr, _ srcCtx: CUcontext?, _ count: Int, stream hStream: CUstream?
) -> CUresult {
    api { () throws(Failure) in
        let destination = try lookupContext(dstCtx)
        let source = try lookupContext(srcCtx)
        let (current, _) = try resolveStream(hStream)
        guard count > 0 else { return }
        let target = try deviceRange(dst, count, in: destination)
        let origin = try deviceRange(src, count, in: source)
        for context in [current, source, destination] {
            context.synchronize()
            try context.sticky.check()
        }
        withExtendedLifetime((target, origin)) { _ = memmove(target.pointer, origin.pointer, count) }
    }
}
