import CXPUDriver
import Dispatch
import Glibc
import Testing
@testable import XPUSim

/// cuInit once per process, with a small device so out-of-memory is quick to reach.
let simulator: Void = {
    setenv("XPU_SIM_MEMORY", "256MiB", 1)
    setenv("XPU_SIM_SMS", "4", 1)
    _ = cuInit(0)
}()

func check(_ result: CUresult, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result == CUDA_SUCCESS, "\(result)", sourceLocation: sourceLocation)
}

/// Creates a fresh context current on this thread for the duration of `body`.
func withContext(_ body: (CUcontext?) throws -> Void) rethrows {
    _ = simulator
    var ctx: CUcontext?
    check(cuCtxCreate_v2(&ctx, 0, 0))
    defer {
        check(cuCtxDestroy_v2(ctx))
    }
    try body(ctx)
}

let vectorAdd = """
    .version 8.5
    .target sm_80
    .address_size 64
    .visible .entry vecAdd(
    	.param .u64 vecAdd_param_0,
    	.param .u64 vecAdd_param_1,
    	.param .u64 vecAdd_param_2,
    	.param .u32 vecAdd_param_3
    )
    {
    	.reg .pred 	%p<2>;
    	.reg .f32 	%f<4>;
    	.reg .b32 	%r<6>;
    	.reg .b64 	%rd<11>;
    	ld.param.u64 	%rd1, [vecAdd_param_0];
    	ld.param.u64 	%rd2, [vecAdd_param_1];
    	ld.param.u64 	%rd3, [vecAdd_param_2];
    	ld.param.u32 	%r2, [vecAdd_param_3];
    	mov.u32 	%r3, %ctaid.x;
    	mov.u32 	%r4, %ntid.x;
    	mov.u32 	%r5, %tid.x;
    	mad.lo.s32 	%r1, %r3, %r4, %r5;
    	setp.ge.s32 	%p1, %r1, %r2;
    	@%p1 bra 	$L__BB0_2;
    	cvta.to.global.u64 	%rd4, %rd1;
    	mul.wide.s32 	%rd5, %r1, 4;
    	add.s64 	%rd6, %rd4, %rd5;
    	cvta.to.global.u64 	%rd7, %rd2;
    	add.s64 	%rd8, %rd7, %rd5;
    	ld.global.f32 	%f1, [%rd8];
    	ld.global.f32 	%f2, [%rd6];
    	add.f32 	%f3, %f2, %f1;
    	cvta.to.global.u64 	%rd9, %rd3;
    	add.s64 	%rd10, %rd9, %rd5;
    	st.global.f32 	[%rd10], %f3;
    $L__BB0_2:
    	ret;
    }
    .visible .entry spin(.param .u64 out, .param .u32 iterations)
    {
        .reg .pred %p<2>;
        .reg .b32 %r<4>;
        .reg .b64 %rd<2>;
        ld.param.u64 %rd1, [out];
        ld.param.u32 %r1, [iterations];
        mov.u32 %r2, 0;
    LOOP:
        add.s32 %r2, %r2, 1;
        setp.lt.u32 %p1, %r2, %r1;
        @%p1 bra LOOP;
        st.global.u32 [%rd1], %r2;
        ret;
    }
    .global .align 4 .u32 counter = 7;
    .const .align 4 .b8 table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    """

func loadVectorAdd() throws -> CUmodule? {
    var module: CUmodule?
    check(vectorAdd.withCString { cuModuleLoadData(&module, $0) })
    return module
}

/// The module of `vectorAdd` and its `spin` kernel (out pointer, iteration count).
func loadSpin() throws -> (CUmodule?, CUfunction?) {
    let module = try loadVectorAdd()
    var spin: CUfunction?
    check(cuModuleGetFunction(&spin, module, "spin"))
    return (module, spin)
}

/// `spin`'s arguments — the device word it writes its count to, and the count — in memory that
/// lives as long as this object, which launches use (so it outlives them). Frees the word when
/// released.
final class SpinArguments {
    let out: CUdeviceptr
    private let storage = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)

    init(iterations: UInt32) {
        var out: CUdeviceptr = 0
        check(cuMemAlloc_v2(&out, 4))
        self.out = out
        storage.storeBytes(of: out, as: CUdeviceptr.self)
        self.iterations = iterations
    }

    deinit {
        check(cuMemFree_v2(out))
        storage.deallocate()
    }

    var iterations: UInt32 {
        get { storage.load(fromByteOffset: 8, as: UInt32.self) }
        set { storage.storeBytes(of: newValue, toByteOffset: 8, as: UInt32.self) }
    }

    /// One launch of `spin` (one thread) on `stream` with these arguments.
    func launch(_ spin: CUfunction?, on stream: CUstream?) -> CUresult {
        var params: [UnsafeMutableRawPointer?] = [storage, storage + 8]
        return cuLaunchKernel(spin, 1, 1, 1, 1, 1, 1, 0, stream, &params, nil)
    }
}

@Suite(.serialized) struct SimulatedDeviceTests {
    @Test func deviceQuery() {
        _ = simulator
        var version: Int32 = 0
        check(cuDriverGetVersion(&version))
        #expect(version == 13050)
        var count: Int32 = 0
        check(cuDeviceGetCount(&count))
        #expect(count == 1)
        var dev: CUdevice = -1
        check(cuDeviceGet(&dev, 0))
        #expect(dev == 0)
        #expect(cuDeviceGet(&dev, 1) == CUDA_ERROR_INVALID_DEVICE)
        var name = [CChar](repeating: 0, count: 64)
        check(cuDeviceGetName(&name, 64, 0))
        #expect(String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).contains("Simulated"))
        var total = 0
        check(cuDeviceTotalMem_v2(&total, 0))
        #expect(total == 256 << 20)
        var major: Int32 = 0, minor: Int32 = 0
        check(cuDeviceComputeCapability(&major, &minor, 0))
        #expect(major == 9 && minor == 0)
        var value: Int32 = 0
        check(cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0))
        #expect(value == 32)
        check(cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0))
        #expect(value == 4)
        check(cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 0))
        #expect(value == 2_147_483_647)
        // Every attribute of CUDA 13's cuda.h (1 to 161) answers; beyond them, none does.
        let unanswered = (1...161).filter { cuDeviceGetAttribute(&value, CUdevice_attribute(rawValue: UInt32($0)), 0) != CUDA_SUCCESS }
        #expect(unanswered.isEmpty, "\(unanswered)")
        #expect(cuDeviceGetAttribute(&value, CUdevice_attribute(rawValue: 162), 0) == CUDA_ERROR_INVALID_VALUE)
        // Features the simulated device does not implement are reported absent.
        check(cuDeviceGetAttribute(&value, CUdevice_attribute(rawValue: 102), 0))  // virtual memory management
        #expect(value == 0)
        #expect(cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 3) == CUDA_ERROR_INVALID_DEVICE)
        var u1 = CUuuid(), u2 = CUuuid()
        check(cuDeviceGetUuid(&u1, 0))
        check(cuDeviceGetUuid_v2(&u2, 0))
        #expect(withUnsafeBytes(of: u1) { Array($0) } == withUnsafeBytes(of: u2) { Array($0) })
        #expect(cuInit(1) == CUDA_ERROR_INVALID_VALUE)
    }

    @Test func contextsAndPrimaryContext() {
        _ = simulator
        var none: CUcontext?
        check(cuCtxGetCurrent(&none))
        #expect(none == nil)
        var dptr: CUdeviceptr = 0
        #expect(cuMemAlloc_v2(&dptr, 16) == CUDA_ERROR_INVALID_CONTEXT)
        var primary: CUcontext?
        check(cuDevicePrimaryCtxRetain(&primary, 0))
        var flags: UInt32 = 9
        var active: Int32 = 0
        check(cuDevicePrimaryCtxGetState(0, &flags, &active))
        #expect(active == 1 && flags == 0)
        check(cuCtxPushCurrent_v2(primary))
        var device: CUdevice = -1
        check(cuCtxGetDevice(&device))
        #expect(device == 0)
        var popped: CUcontext?
        check(cuCtxPopCurrent_v2(&popped))
        #expect(popped == primary)
        check(cuDevicePrimaryCtxRelease_v2(0))
        check(cuDevicePrimaryCtxGetState(0, &flags, &active))
        #expect(active == 0)
        #expect(cuDevicePrimaryCtxRelease_v2(0) == CUDA_ERROR_INVALID_CONTEXT)
        // Destroyed and bogus handles are rejected, never dereferenced.
        var ctx: CUcontext?
        check(cuCtxCreate_v2(&ctx, 0, 0))
        check(cuCtxDestroy_v2(ctx))
        #expect(cuCtxDestroy_v2(ctx) == CUDA_ERROR_INVALID_CONTEXT)
        #expect(cuCtxPushCurrent_v2(OpaquePointer(bitPattern: 0xDEAD_BEE0)) == CUDA_ERROR_INVALID_CONTEXT)
        #expect(cuCtxSynchronize() == CUDA_ERROR_INVALID_CONTEXT)
        var params = CUctxCreateParams()
        check(cuCtxCreate_v4(&ctx, &params, 0, 0))
        check(cuCtxDestroy_v2(ctx))
        params.numExecAffinityParams = 1
        #expect(cuCtxCreate_v4(&ctx, &params, 0, 0) == CUDA_ERROR_NOT_SUPPORTED)
    }

    @Test func allocationAccounting() {
        withContext { _ in
            var free0 = 0, total = 0
            check(cuMemGetInfo_v2(&free0, &total))
            #expect(total == 256 << 20)
            var a: CUdeviceptr = 0
            check(cuMemAlloc_v2(&a, 1000))
            #expect(a % 256 == 0 && a >= 0x1_0000_0000)
            var free1 = 0
            check(cuMemGetInfo_v2(&free1, &total))
            #expect(free0 - free1 == 1024)
            var big: CUdeviceptr = 0
            #expect(cuMemAlloc_v2(&big, 300 << 20) == CUDA_ERROR_OUT_OF_MEMORY)
            #expect(cuMemAlloc_v2(&big, 0) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuMemFree_v2(a + 4) == CUDA_ERROR_INVALID_VALUE)
            check(cuMemFree_v2(a))
            #expect(cuMemFree_v2(a) == CUDA_ERROR_INVALID_VALUE)
            var free2 = 0
            check(cuMemGetInfo_v2(&free2, &total))
            #expect(free2 == free0)
        }
    }

    @Test func peerCopiesBetweenContexts() {
        withContext { first in
            let n = 4096
            var a: CUdeviceptr = 0
            check(cuMemAlloc_v2(&a, n))
            let source = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 13) }
            check(cuMemcpyHtoD_v2(a, source, n))
            var second: CUcontext?
            check(cuCtxCreate_v2(&second, 0, 0))  // current now
            var b: CUdeviceptr = 0
            check(cuMemAlloc_v2(&b, n))
            var can: Int32 = -1
            check(cuDeviceCanAccessPeer(&can, 0, 0))
            #expect(can == 0)
            #expect(cuDeviceCanAccessPeer(&can, 0, 9) == CUDA_ERROR_INVALID_DEVICE)
            check(cuMemcpyPeer(b, second, a, first, n))
            var back = [UInt8](repeating: 0, count: n)
            check(cuMemcpyDtoH_v2(&back, b, n))
            #expect(back == source)
            check(cuMemsetD8_v2(b, 0x77, n))
            check(cuMemcpyPeerAsync(a, first, b, second, n, nil))
            check(cuCtxSetCurrent(first))
            check(cuMemcpyDtoH_v2(&back, a, n))
            #expect(back.allSatisfy { $0 == 0x77 })
            // Each pointer must lie in an allocation its context reaches; each context must be live.
            #expect(cuMemcpyPeer(0x1234, second, b, second, n) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuMemcpyPeer(a, first, b, second, n + 1) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuMemcpyPeer(a, nil, b, second, n) == CUDA_ERROR_INVALID_CONTEXT)
            check(cuMemFree_v2(a))
            check(cuCtxDestroy_v2(second))
        }
    }

    @Test func copiesAndPointerAttributes() {
        withContext { ctx in
            let n = 4096
            var a: CUdeviceptr = 0, b: CUdeviceptr = 0
            check(cuMemAlloc_v2(&a, n))
            check(cuMemAlloc_v2(&b, n))
            let source = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 7) }
            check(cuMemcpyHtoD_v2(a, source, n))
            check(cuMemcpyDtoD_v2(b, a, n))
            var back = [UInt8](repeating: 0, count: n)
            check(cuMemcpyDtoH_v2(&back, b, n))
            #expect(back == source)
            check(cuMemsetD8_v2(b, 0xAB, 16))
            check(cuMemsetD32_v2(b + 16, 0x0102_0304, 4))
            check(cuMemcpyDtoH_v2_ptds(&back, b, 32))
            #expect(back[0..<16].allSatisfy { $0 == 0xAB })
            #expect(Array(back[16..<20]) == [4, 3, 2, 1])
            #expect(cuMemcpyHtoD_v2(a + CUdeviceptr(n - 8), source, 16) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuMemcpyDtoH_v2(&back, 0x1234, 4) == CUDA_ERROR_INVALID_VALUE)
            check(cuMemcpyHtoD_v2(0x1234, source, 0))

            var memoryType: UInt32 = 0
            check(cuPointerGetAttribute(&memoryType, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a + 100))
            #expect(memoryType == CU_MEMORYTYPE_DEVICE.rawValue)
            var start: CUdeviceptr = 0
            check(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, a + 100))
            #expect(start == a)
            var size = 0
            check(cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, a + 100))
            #expect(size == n)
            var owner: CUcontext?
            check(cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, a))
            #expect(owner == ctx)
            #expect(cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, 0x42) == CUDA_ERROR_INVALID_VALUE)

            var host: UnsafeMutableRawPointer?
            check(cuMemAllocHost_v2(&host, 8192))
            #expect(UInt(bitPattern: host) % 4096 == 0)
            check(cuPointerGetAttribute(&memoryType, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CUdeviceptr(UInt(bitPattern: host) + 10)))
            #expect(memoryType == CU_MEMORYTYPE_HOST.rawValue)
            check(cuMemFreeHost(host))
            #expect(cuMemFreeHost(host) == CUDA_ERROR_INVALID_VALUE)
            check(cuMemFree_v2(a))
            check(cuMemFree_v2(b))
        }
    }

    @Test func streamOrderingAndEvents() throws {
        try withContext { _ in
            let (module, spin) = try loadSpin()
            var stream: CUstream?
            check(cuStreamCreate(&stream, 0))
            var out: CUdeviceptr = 0
            check(cuMemAlloc_v2(&out, 4))
            var start: CUevent?, end: CUevent?, untimed: CUevent?
            check(cuEventCreate(&start, 0))
            check(cuEventCreate(&end, 0))
            check(cuEventCreate(&untimed, UInt32(CU_EVENT_DISABLE_TIMING.rawValue)))
            var ms: Float = 0
            #expect(cuEventElapsedTime(&ms, start, end) == CUDA_ERROR_INVALID_HANDLE)
            check(cuEventQuery(start))

            check(cuMemsetD32Async(out, 0, 1, stream))
            check(cuEventRecord(start, stream))
            var iterations: UInt32 = 200_000
            var params: [UnsafeMutableRawPointer?] = [withUnsafeMutablePointer(to: &out) { UnsafeMutableRawPointer($0) }, withUnsafeMutablePointer(to: &iterations) { UnsafeMutableRawPointer($0) }]
            check(cuLaunchKernel(spin, 1, 1, 1, 1, 1, 1, 0, stream, &params, nil))
            check(cuEventRecord(end, stream))
            check(cuEventRecord(untimed, stream))
            // The copy runs after the kernel on the same stream.
            var result: UInt32 = 0
            check(cuMemcpyDtoHAsync_v2(&result, out, 4, stream))
            let busy = cuStreamQuery(stream)
            #expect(busy == CUDA_ERROR_NOT_READY || busy == CUDA_SUCCESS)
            check(cuStreamSynchronize(stream))
            #expect(result == iterations)
            check(cuStreamQuery(stream))
            check(cuEventSynchronize(end))
            check(cuEventElapsedTime(&ms, start, end))
            #expect(ms > 0)
            var ms2: Float = 0
            check(cuEventElapsedTime_v2(&ms2, start, end))
            #expect(ms2 == ms)
            #expect(cuEventElapsedTime(&ms, start, untimed) == CUDA_ERROR_INVALID_HANDLE)

            // The legacy stream waits for blocking streams: a synchronous copy sees the kernel's result.
            iterations = 50_000
            check(cuMemsetD32_v2(out, 0, 1))
            check(cuLaunchKernel(spin, 1, 1, 1, 1, 1, 1, 0, stream, &params, nil))
            check(cuMemcpyDtoH_v2(&result, out, 4))
            #expect(result == iterations)

            check(cuEventDestroy_v2(start))
            check(cuEventDestroy_v2(end))
            check(cuEventDestroy_v2(untimed))
            #expect(cuEventDestroy_v2(start) == CUDA_ERROR_INVALID_HANDLE)
            check(cuStreamDestroy_v2(stream))
            #expect(cuStreamSynchronize(stream) == CUDA_ERROR_INVALID_HANDLE)
            check(cuMemFree_v2(out))
            check(cuModuleUnload(module))
        }
    }

    /// A stream is done only when the work its worker took has finished too: waiting for a
    /// stream whose queue is empty but whose last kernel the worker holds must wait for it. The
    /// test holds the worker's batch before it runs (`onBatchTaken`), so the kernel cannot have
    /// run when the stream is asked: a synchronize or a copy that did not wait would read 0.
    @Test func synchronizeWaitsForTheRunningKernel() throws {
        try withContext { _ in
            let (module, spin) = try loadSpin()
            var stream: CUstream?
            check(cuStreamCreate(&stream, 0))
            let (_, simulated) = try resolveStream(stream)
            let taken = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            simulated.onBatchTaken {
                taken.signal()
                release.wait()
            }
            defer { simulated.onBatchTaken(nil) }
            let arguments = SpinArguments(iterations: 60_000)
            let out = arguments.out
            check(cuMemsetD32_v2(out, 0, 1))

            // A synchronize on another thread, the kernel held until after it was asked for.
            check(arguments.launch(spin, on: stream))
            taken.wait()
            #expect(cuStreamQuery(stream) == CUDA_ERROR_NOT_READY, "the queue is empty, but the worker's batch has not run")
            let streamAddress = UInt(bitPattern: stream)
            let afterSynchronize = Self.onThread { () -> UInt32 in
                let stream = CUstream(bitPattern: streamAddress)
                check(cuStreamSynchronize(stream))
                check(cuStreamQuery(stream))
                return Self.read(out)
            }
            release.signal()
            #expect(afterSynchronize() == arguments.iterations)

            // The same through the legacy stream's ordering: a synchronous copy waits for it.
            check(cuMemsetD32_v2(out, 0, 1))
            check(arguments.launch(spin, on: stream))
            taken.wait()
            let copied = Self.onThread { () -> UInt32 in
                var result: UInt32 = 0
                check(cuMemcpyDtoH_v2(&result, out, 4))
                return result
            }
            release.signal()
            #expect(copied() == arguments.iterations)
            check(cuStreamDestroy_v2(stream))
            check(cuModuleUnload(module))
        }
    }

    /// Runs `body` on a thread of its own (in the current context); the returned function joins
    /// it and returns its result.
    private static func onThread(_ body: @escaping @Sendable () -> UInt32) -> () -> UInt32 {
        var context: CUcontext?
        check(cuCtxGetCurrent(&context))
        let contextAddress = UInt(bitPattern: context)
        let result = ThreadResult()
        let thread = startThread(named: "test-waiter") {
            check(cuCtxSetCurrent(CUcontext(bitPattern: contextAddress)))
            result.value = body()
        }
        return {
            pthread_join(thread, nil)
            return result.value
        }
    }

    /// A device word read on a non-blocking stream of its own, which waits for no other stream:
    /// what the device holds now.
    private static func read(_ pointer: CUdeviceptr) -> UInt32 {
        var reader: CUstream?
        check(cuStreamCreate(&reader, UInt32(CU_STREAM_NON_BLOCKING.rawValue)))
        var value: UInt32 = 0
        check(cuMemcpyDtoHAsync_v2(&value, pointer, 4, reader))
        check(cuStreamSynchronize(reader))
        check(cuStreamDestroy_v2(reader))
        return value
    }

    /// After a stream is synchronized, the stream and every event recorded on it say done at
    /// once (the worker may still be finishing its batch when the synchronize returns).
    @Test func queriesAfterSynchronizeSayDone() throws {
        try withContext { _ in
            let (module, spin) = try loadSpin()
            var stream: CUstream?
            check(cuStreamCreate(&stream, UInt32(CU_STREAM_NON_BLOCKING.rawValue)))
            var event: CUevent?
            check(cuEventCreate(&event, 0))
            let arguments = SpinArguments(iterations: 1)
            var notReady = (stream: 0, event: 0)
            for round in 0..<3000 {
                check(arguments.launch(spin, on: stream))
                // Half the rounds end with the event, half with a launch after it.
                check(cuEventRecord(event, stream))
                if round % 2 == 1 { check(arguments.launch(spin, on: stream)) }
                check(cuStreamSynchronize(stream))
                if cuStreamQuery(stream) != CUDA_SUCCESS { notReady.stream += 1 }
                if cuEventQuery(event) != CUDA_SUCCESS { notReady.event += 1 }
            }
            #expect(notReady.stream == 0 && notReady.event == 0, "not ready after a synchronize: \(notReady)")
            check(cuEventDestroy_v2(event))
            check(cuStreamDestroy_v2(stream))
            check(cuModuleUnload(module))
        }
    }

    /// A thread's launches reuse their last lookup; it must not outlive the stream, the current
    /// context or the module it was made with.
    @Test func launchesSeeHandleChanges() throws {
        try withContext { _ in
            let (module, spin) = try loadSpin()
            let arguments = SpinArguments(iterations: 1)
            var stream: CUstream?
            check(cuStreamCreate(&stream, UInt32(CU_STREAM_NON_BLOCKING.rawValue)))
            check(arguments.launch(spin, on: stream))
            check(cuStreamDestroy_v2(stream))
            #expect(arguments.launch(spin, on: stream) == CUDA_ERROR_INVALID_HANDLE)

            // The default stream is the current context's: another context current refuses the
            // function, and the first one current again takes it.
            check(arguments.launch(spin, on: nil))
            var other: CUcontext?
            check(cuCtxCreate_v2(&other, 0, 0))
            #expect(arguments.launch(spin, on: nil) == CUDA_ERROR_INVALID_HANDLE)
            check(cuCtxDestroy_v2(other))
            check(arguments.launch(spin, on: nil))

            check(cuCtxSynchronize())
            check(cuModuleUnload(module))
            #expect(arguments.launch(spin, on: nil) == CUDA_ERROR_INVALID_HANDLE)
        }
    }

    @Test func moduleLoadAndVectorAdd() throws {
        try withContext { _ in
            let module = try loadVectorAdd()
            var count: UInt32 = 0
            check(cuModuleGetFunctionCount(&count, module))
            #expect(count == 2)
            var functions = [CUfunction?](repeating: nil, count: 2)
            check(cuModuleEnumerateFunctions(&functions, 2, module))
            var name: UnsafePointer<CChar>?
            check(cuFuncGetName(&name, functions[0]))
            #expect(String(cString: name!) == "vecAdd")
            var offsets: [Int] = [], sizes: [Int] = []
            for i in 0..<4 {
                var offset = 0, size = 0
                check(cuFuncGetParamInfo(functions[0], i, &offset, &size))
                offsets.append(offset)
                sizes.append(size)
            }
            #expect(offsets == [0, 8, 16, 24] && sizes == [8, 8, 8, 4])
            var offset = 0, size = 0
            #expect(cuFuncGetParamInfo(functions[0], 4, &offset, &size) == CUDA_ERROR_INVALID_VALUE)
            var attribute: Int32 = 0
            check(cuFuncGetAttribute(&attribute, CU_FUNC_ATTRIBUTE_PTX_VERSION, functions[0]))
            #expect(attribute == 85)
            check(cuFuncGetAttribute(&attribute, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, functions[0]))
            #expect(attribute == 1024)
            var missing: CUfunction?
            #expect(cuModuleGetFunction(&missing, module, "nope") == CUDA_ERROR_NOT_FOUND)

            // Module variables live in device memory with their initializers.
            var counter: CUdeviceptr = 0
            var counterSize = 0
            check(cuModuleGetGlobal_v2(&counter, &counterSize, module, "counter"))
            #expect(counterSize == 4)
            var initial: UInt32 = 0
            check(cuMemcpyDtoH_v2(&initial, counter, 4))
            #expect(initial == 7)
            var table = [UInt8](repeating: 0, count: 8)
            var tablePtr: CUdeviceptr = 0
            check(cuModuleGetGlobal_v2(&tablePtr, nil, module, "table"))
            check(cuMemcpyDtoH_v2(&table, tablePtr, 8))
            #expect(table == [1, 2, 3, 4, 5, 6, 7, 8])

            var vecAdd: CUfunction?
            check(cuModuleGetFunction(&vecAdd, module, "vecAdd"))
            var n: Int32 = 10_000
            let bytes = Int(n) * 4
            var a: CUdeviceptr = 0, b: CUdeviceptr = 0, c: CUdeviceptr = 0
            check(cuMemAlloc_v2(&a, bytes))
            check(cuMemAlloc_v2(&b, bytes))
            check(cuMemAlloc_v2(&c, bytes))
            let x = (0..<Int(n)).map { Float($0) }
            let y = (0..<Int(n)).map { Float($0) * 0.5 }
            check(cuMemcpyHtoD_v2(a, x, bytes))
            check(cuMemcpyHtoD_v2(b, y, bytes))
            var params: [UnsafeMutableRawPointer?] = [
                withUnsafeMutablePointer(to: &a) { UnsafeMutableRawPointer($0) },
                withUnsafeMutablePointer(to: &b) { UnsafeMutableRawPointer($0) },
                withUnsafeMutablePointer(to: &c) { UnsafeMutableRawPointer($0) },
                withUnsafeMutablePointer(to: &n) { UnsafeMutableRawPointer($0) },
            ]
            let blocks = (UInt32(n) + 255) / 256
            #expect(cuLaunchKernel(vecAdd, blocks, 1, 1, 2048, 1, 1, 0, nil, &params, nil) == CUDA_ERROR_INVALID_VALUE)
            #expect(cuLaunchKernel(vecAdd, 0, 1, 1, 256, 1, 1, 0, nil, &params, nil) == CUDA_ERROR_INVALID_VALUE)
            check(cuLaunchKernel(vecAdd, blocks, 1, 1, 256, 1, 1, 0, nil, &params, nil))
            var z = [Float](repeating: 0, count: Int(n))
            check(cuMemcpyDtoH_v2(&z, c, bytes))
            #expect(z == (0..<Int(n)).map { Float($0) * 1.5 })

            // The same launch with the parameter buffer passed through `extra`.
            check(cuMemsetD8_v2(c, 0, bytes))
            var buffer = [UInt8](repeating: 0, count: 28)
            buffer.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: a, toByteOffset: 0, as: CUdeviceptr.self)
                raw.storeBytes(of: b, toByteOffset: 8, as: CUdeviceptr.self)
                raw.storeBytes(of: c, toByteOffset: 16, as: CUdeviceptr.self)
                raw.storeBytes(of: n, toByteOffset: 24, as: Int32.self)
            }
            var bufferSize = 28
            buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &bufferSize) { sizePointer in
                    var extra: [UnsafeMutableRawPointer?] = [
                        UnsafeMutableRawPointer(bitPattern: 1), raw.baseAddress,
                        UnsafeMutableRawPointer(bitPattern: 2), UnsafeMutableRawPointer(sizePointer), nil,
                    ]
                    check(cuLaunchKernel_ptsz(vecAdd, blocks, 1, 1, 256, 1, 1, 0, nil, nil, &extra))
                }
            }
            check(cuMemcpyDtoH_v2(&z, c, bytes))
            #expect(z == (0..<Int(n)).map { Float($0) * 1.5 })
            check(cuModuleUnload(module))
            #expect(cuModuleUnload(module) == CUDA_ERROR_INVALID_HANDLE)
            #expect(cuLaunchKernel(vecAdd, 1, 1, 1, 1, 1, 1, 0, nil, &params, nil) == CUDA_ERROR_INVALID_HANDLE)
        }
    }

    @Test func badImages() {
        withContext { _ in
            var module: CUmodule?
            let bad = ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k()\n{\n  bogus.op;\n}\n"
            #expect(bad.withCString { cuModuleLoadData(&module, $0) } == CUDA_ERROR_INVALID_PTX)
            var fatbin: [UInt32] = [0xBA55_ED50, 0x0010_0001, 0, 0]
            #expect(cuModuleLoadDataEx(&module, &fatbin, 0, nil, nil) == CUDA_ERROR_NO_BINARY_FOR_GPU)
            // 64 bytes of entry that are all zero: an entry header cannot be 0 bytes long.
            fatbin = [0xBA55_ED50, 0x0010_0001, 64, 0] + Array(repeating: 0, count: 16)
            #expect(cuModuleLoadDataEx(&module, &fatbin, 0, nil, nil) == CUDA_ERROR_INVALID_IMAGE)
        }
    }

    @Test func illegalAddressIsStickyForItsContextOnly() throws {
        _ = simulator
        var healthy: CUcontext?
        check(cuCtxCreate_v2(&healthy, 0, 0))
        var broken: CUcontext?
        check(cuCtxCreate_v2(&broken, 0, 0))  // now current
        let module = try loadVectorAdd()
        var vecAdd: CUfunction?
        check(cuModuleGetFunction(&vecAdd, module, "vecAdd"))
        var a: CUdeviceptr = 0
        check(cuMemAlloc_v2(&a, 64))
        var n: Int32 = 1000  // far past the 64-byte allocation
        var params: [UnsafeMutableRawPointer?] = [
            withUnsafeMutablePointer(to: &a) { UnsafeMutableRawPointer($0) },
            withUnsafeMutablePointer(to: &a) { UnsafeMutableRawPointer($0) },
            withUnsafeMutablePointer(to: &a) { UnsafeMutableRawPointer($0) },
            withUnsafeMutablePointer(to: &n) { UnsafeMutableRawPointer($0) },
        ]
        check(cuLaunchKernel(vecAdd, 4, 1, 1, 256, 1, 1, 0, nil, &params, nil))
        #expect(cuCtxSynchronize() == CUDA_ERROR_ILLEGAL_ADDRESS)
        var other: CUdeviceptr = 0
        #expect(cuMemAlloc_v2(&other, 16) == CUDA_ERROR_ILLEGAL_ADDRESS)
        #expect(cuCtxSynchronize() == CUDA_ERROR_ILLEGAL_ADDRESS)

        check(cuCtxSetCurrent(healthy))
        check(cuMemAlloc_v2(&other, 16))
        check(cuMemFree_v2(other))
        check(cuCtxSynchronize())
        check(cuCtxDestroy_v2(broken))
        check(cuCtxDestroy_v2(healthy))
    }

    @Test func procAddressAndErrorNames() {
        _ = simulator
        var pfn: UnsafeMutableRawPointer?
        var status = CU_GET_PROC_ADDRESS_SUCCESS
        check(cuGetProcAddress_v2("cuMemAlloc", &pfn, 13000, 0, &status))
        #expect(status == CU_GET_PROC_ADDRESS_SUCCESS)
        let alloc: @convention(c) (UnsafeMutablePointer<CUdeviceptr>?, Int) -> CUresult = cuMemAlloc_v2
        #expect(pfn == unsafeBitCast(alloc, to: UnsafeMutableRawPointer.self))
        check(cuGetProcAddress("cuMemcpyHtoD", &pfn, 13000, cuuint64_t(CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM.rawValue)))
        let ptds: @convention(c) (CUdeviceptr, UnsafeRawPointer?, Int) -> CUresult = cuMemcpyHtoD_v2_ptds
        #expect(pfn == unsafeBitCast(ptds, to: UnsafeMutableRawPointer.self))
        // Not found is no error (cuda.h): a NULL pointer and the reason in the status.
        #expect(cuGetProcAddress_v2("cuNoSuchThing", &pfn, 13000, 0, &status) == CUDA_SUCCESS)
        #expect(status == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND)
        #expect(pfn == nil)
        var text: UnsafePointer<CChar>?
        check(cuGetErrorName(CUDA_ERROR_ILLEGAL_ADDRESS, &text))
        #expect(String(cString: text!) == "CUDA_ERROR_ILLEGAL_ADDRESS")
        check(cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &text))
        #expect(text != nil)
        #expect(cuGetErrorName(CUresult(rawValue: 12345), &text) == CUDA_ERROR_INVALID_VALUE)
        #expect(text == nil)
    }
}

/// What a thread of a test computed, read after joining it.
final class ThreadResult: @unchecked Sendable {
    var value: UInt32 = 0
}
