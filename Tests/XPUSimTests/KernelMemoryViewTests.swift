import CXPUDriver
import Testing

/// The memory a kernel reaches. Memory freed while a kernel that uses it is still queued stays
/// alive for that kernel, as CUDA's cuMemFree waits for the work that uses it: the kernel runs,
/// and no sticky CUDA_ERROR_ILLEGAL_ADDRESS follows. A kernel reaches the whole 512-byte granule
/// of a small allocation, as on a GPU.
@Suite(.serialized) struct KernelMemoryViewTests {
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

    @Test func aKernelReadingPastASmallArrayInsideItsGranuleDoesNotFault() throws {
        try withContext { _ in
            let module = try loadVectorAdd()
            var vecAdd: CUfunction?
            check(cuModuleGetFunction(&vecAdd, module, "vecAdd"))
            // Arrays of 10 floats, a kernel over 16 (numba's test_dispatcher_cpointer_arguments).
            var a: CUdeviceptr = 0, b: CUdeviceptr = 0, c: CUdeviceptr = 0
            check(cuMemAlloc_v2(&a, 40))
            check(cuMemAlloc_v2(&b, 40))
            check(cuMemAlloc_v2(&c, 40))
            let x = (0..<10).map { Float($0) }
            check(cuMemcpyHtoD_v2(a, x, 40))
            check(cuMemcpyHtoD_v2(b, x, 40))
            var n: UInt32 = 16
            var params: [UnsafeMutableRawPointer?] = [
                withUnsafeMutablePointer(to: &a) { UnsafeMutableRawPointer($0) },
                withUnsafeMutablePointer(to: &b) { UnsafeMutableRawPointer($0) },
                withUnsafeMutablePointer(to: &c) { UnsafeMutableRawPointer($0) },
                withUnsafeMutablePointer(to: &n) { UnsafeMutableRawPointer($0) },
            ]
            check(cuLaunchKernel(vecAdd, 1, 1, 1, 32, 1, 1, 0, nil, &params, nil))
            check(cuCtxSynchronize())
            var z = [Float](repeating: 0, count: 10)
            check(cuMemcpyDtoH_v2(&z, c, 40))
            #expect(z == x.map { $0 * 2 })
            // Copies still end at the allocation's size.
            #expect(cuMemcpyDtoH_v2(&z, c + 4, 40) == CUDA_ERROR_INVALID_VALUE)
            for p in [a, b, c] { check(cuMemFree_v2(p)) }
            check(cuModuleUnload(module))
        }
    }
}
