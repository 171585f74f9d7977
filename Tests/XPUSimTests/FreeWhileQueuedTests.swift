import CXPUDriver
import Testing

/// Memory freed while a kernel that uses it is still queued stays alive for that kernel, as
/// CUDA's cuMemFree waits for the work that uses it: the kernel runs, and no sticky
/// CUDA_ERROR_ILLEGAL_ADDRESS follows.
@Suite(.serialized) struct FreeWhileQueuedTests {
    @Test func aKernelQueuedBeforeAFreeStillReachesTheMemory() throws {
        try withContext { _ in
            let (module, spin) = try loadSpin()
            var stream: CUstream?
            check(cuStreamCreate(&stream, 1))
            // A long kernel (200,000 iterations in the interpreter) holds the stream, so the
            // second launch is still queued when its memory is freed.
            let first = SpinArguments(iterations: 200_000)
            check(first.launch(spin, on: stream))
            var out: CUdeviceptr = 0
            check(cuMemAlloc_v2(&out, 4))
            var iterations: UInt32 = 10
            var params: [UnsafeMutableRawPointer?] = [
                withUnsafeMutablePointer(to: &out) { UnsafeMutableRawPointer($0) },
                withUnsafeMutablePointer(to: &iterations) { UnsafeMutableRawPointer($0) },
            ]
            check(cuLaunchKernel(spin, 1, 1, 1, 1, 1, 1, 0, stream, &params, nil))
            check(cuMemFree_v2(out))
            check(cuStreamSynchronize(stream))
            check(cuCtxSynchronize())
            check(cuStreamDestroy_v2(stream))
            check(cuModuleUnload(module))
        }
    }
}
