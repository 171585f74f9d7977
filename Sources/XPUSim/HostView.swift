import CXPUDriver

// xpu-remote's own entry point, not CUDA's: the simulated device's memory is host memory, so a
// server can move bulk data straight between its socket and device memory instead of through a
// staging buffer and a copy. Real drivers do not have it; the server looks it up with dlsym.

/// Waits until a copy enqueued on `hStream` now would start, then stores in `host` the host
/// address of the device range `dptr ..< dptr + bytes`.
///
/// "Would start": everything earlier on the stream has finished, and so has the work the
/// legacy-stream rules order it after (`Context.enqueue`); nothing is enqueued. Reading or writing
/// the range in place right after this is then exactly the copy, provided the caller enqueues no
/// work in the context until it is done.
///
/// A copy on the legacy stream (`hStream` nil) is how a server serves a blocking copy, one of
/// the synchronizations at which device printf output is handed over (DevicePrintf.swift).
///
/// Returns what the copy would return instead: the context's sticky fault (also one an earlier
/// kernel raised during the wait: the copy would not have run), CUDA_ERROR_INVALID_HANDLE for an
/// unknown stream, CUDA_ERROR_INVALID_VALUE unless `bytes > 0` and the range lies inside one live
/// allocation of the current context's device. The address is valid while the allocation lives.
@c(xpu_sim_device_range) public func xpuSimDeviceRange(
    _ dptr: CUdeviceptr, _ bytes: Int, _ hStream: CUstream?, _ host: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> CUresult {
    api { () throws(Failure) in
        guard let host, bytes > 0 else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let (context, stream) = try resolveStream(hStream)
        let range = try deviceRange(dptr, bytes, in: context)
        context.waitForTurn(on: stream)
        if hStream == nil { DevicePrintfOutput.flush(context: context.handle) }
        try context.sticky.check()
        host.pointee = range.pointer
    }
}

extension Context {
    /// Waits until work enqueued on `stream` now would start (the dependencies `enqueue` gives it,
    /// and the stream's own earlier work), without enqueuing anything.
    func waitForTurn(on stream: Stream) {
        let pending: [Completion] = members.withLock { members in
            var waits = [stream.tail]
            if stream === legacy {
                for s in members.streams where s.blocking { waits.append(s.tail) }
            } else if stream.blocking {
                waits.append(legacy.tail)
            }
            return waits.filter { !$0.isDone }
        }
        for completion in pending { completion.wait() }
    }
}
