import CXPUDriver
import Testing

/// Managed memory on the simulated device (emulated above it, as through a server): one address
/// for host and kernels, host writes seen by the next launch, kernel writes seen by the host after
/// a synchronization, the device memory charged and given back.
@Suite(.serialized) struct ManagedMemoryTests {
    @Test func hostAndKernelShareOneAddress() throws {
        try withContext { _ in
            let module = try loadVectorAdd()
            var vecAdd: CUfunction?
            check(cuModuleGetFunction(&vecAdd, module, "vecAdd"))
            var n: UInt32 = 1000
            let bytes = Int(n) * 4
            var free0 = 0, free1 = 0, free2 = 0, total = 0
            check(cuMemGetInfo_v2(&free0, &total))
            var a: CUdeviceptr = 0, b: CUdeviceptr = 0, c: CUdeviceptr = 0
            check(cuMemAllocManaged(&a, bytes, 1))
            check(cuMemAllocManaged(&b, bytes, 1))
            check(cuMemAllocManaged(&c, bytes, 2))
            check(cuMemGetInfo_v2(&free1, &total))
            #expect(free0 - free1 >= 3 * bytes)
            let x = UnsafeMutablePointer<Float>(bitPattern: UInt(a))!
            let y = UnsafeMutablePointer<Float>(bitPattern: UInt(b))!
            let z = UnsafeMutablePointer<Float>(bitPattern: UInt(c))!
            for i in 0..<Int(n) {
                x[i] = Float(i)
                y[i] = Float(i) * 0.5
            }
            var params: [UnsafeMutableRawPointer?] = [
                withUnsafeMutablePointer(to: &a) { UnsafeMutableRawPointer($0) },
                withUnsafeMutablePointer(to: &b) { UnsafeMutableRawPointer($0) },
                withUnsafeMutablePointer(to: &c) { UnsafeMutableRawPointer($0) },
                withUnsafeMutablePointer(to: &n) { UnsafeMutableRawPointer($0) },
            ]
            check(cuLaunchKernel(vecAdd, (n + 255) / 256, 1, 1, 256, 1, 1, 0, nil, &params, nil))
            check(cuCtxSynchronize())
            #expect((0..<Int(n)).allSatisfy { z[$0] == Float($0) * 1.5 })
            // The host changes an input: the next launch reads it.
            x[3] = 100
            check(cuLaunchKernel(vecAdd, (n + 255) / 256, 1, 1, 256, 1, 1, 0, nil, &params, nil))
            check(cuCtxSynchronize())
            #expect(z[3] == 101.5)
            var managed: UInt32 = 0
            check(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, c + 8))
            #expect(managed == 1)
            check(cuMemFree_v2(a))
            check(cuMemFree_v2(b))
            check(cuMemFree_v2(c))
            #expect(cuMemFree_v2(c) == CUDA_ERROR_INVALID_VALUE)
            check(cuMemGetInfo_v2(&free2, &total))
            #expect(free2 == free0)
            check(cuModuleUnload(module))
        }
    }

    @Test func badArgumentsAreRefused() {
        withContext { _ in
            var a: CUdeviceptr = 0
            #expect(cuMemAllocManaged(&a, 0, 1) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuMemAllocManaged(&a, 64, 3) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuMemAllocManaged(nil, 64, 1) == CUDA_ERROR_INVALID_VALUE)
        }
    }
}
