import XPUTransport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The OpenCL entry points `xpu-bench opencl` calls, resolved with `dlsym` from one library: the
/// system's ICD loader (`libOpenCL.so.1`, which xpu-bench points at PoCL alone) or our ICD
/// (`libxpu-opencl.so`, loaded directly as a program would load it as `libOpenCL.so.1`: every
/// call goes to the server).
///
/// Both are loaded `RTLD_LOCAL`, so they live side by side in one process. OpenCL's object types
/// are opaque pointers; the scalar types follow the OpenCL 3.0 C API (`cl_int` 32 bits, `cl_uint`
/// 32, `cl_bool` 32, bitfields and properties 64, sizes `size_t`).
final class BenchOpenCL: @unchecked Sendable {
    typealias Handle = OpaquePointer
    typealias GetPlatformIDs = @convention(c) (UInt32, UnsafeMutablePointer<Handle?>?, UnsafeMutablePointer<UInt32>?) -> Int32
    typealias GetPlatformInfo = @convention(c) (Handle?, UInt32, Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> Int32
    typealias GetDeviceIDs = @convention(c) (Handle?, UInt64, UInt32, UnsafeMutablePointer<Handle?>?, UnsafeMutablePointer<UInt32>?) -> Int32
    typealias CreateContext = @convention(c) (
        UnsafePointer<Int>?, UInt32, UnsafePointer<Handle?>?, UnsafeRawPointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?
    ) -> Handle?
    typealias CreateQueue = @convention(c) (Handle?, Handle?, UnsafePointer<UInt64>?, UnsafeMutablePointer<Int32>?) -> Handle?
    typealias CreateProgramWithSource = @convention(c) (
        Handle?, UInt32, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int>?, UnsafeMutablePointer<Int32>?
    ) -> Handle?
    typealias BuildProgram = @convention(c) (
        Handle?, UInt32, UnsafePointer<Handle?>?, UnsafePointer<CChar>?, UnsafeRawPointer?, UnsafeMutableRawPointer?
    ) -> Int32
    typealias CreateKernel = @convention(c) (Handle?, UnsafePointer<CChar>?, UnsafeMutablePointer<Int32>?) -> Handle?
    typealias SetKernelArg = @convention(c) (Handle?, UInt32, Int, UnsafeRawPointer?) -> Int32
    typealias EnqueueNDRangeKernel = @convention(c) (
        Handle?, Handle?, UInt32, UnsafePointer<Int>?, UnsafePointer<Int>?, UnsafePointer<Int>?, UInt32,
        UnsafePointer<Handle?>?, UnsafeMutablePointer<Handle?>?
    ) -> Int32
    typealias Finish = @convention(c) (Handle?) -> Int32
    typealias CreateBuffer = @convention(c) (Handle?, UInt64, Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?) -> Handle?
    typealias EnqueueWriteBuffer = @convention(c) (
        Handle?, Handle?, UInt32, Int, Int, UnsafeRawPointer?, UInt32, UnsafePointer<Handle?>?, UnsafeMutablePointer<Handle?>?
    ) -> Int32
    typealias EnqueueReadBuffer = @convention(c) (
        Handle?, Handle?, UInt32, Int, Int, UnsafeMutableRawPointer?, UInt32, UnsafePointer<Handle?>?, UnsafeMutablePointer<Handle?>?
    ) -> Int32
    typealias Release = @convention(c) (Handle?) -> Int32

    static let success: Int32 = 0
    static let platformName: UInt32 = 0x0902
    static let deviceTypeAll: UInt64 = 0xFFFF_FFFF
    static let memReadWrite: UInt64 = 1 << 0
    static let blocking: UInt32 = 1

    /// What the library is, for messages ("PoCL", "ICD").
    let label: String
    let path: String
    let clGetPlatformIDs: GetPlatformIDs
    let clGetPlatformInfo: GetPlatformInfo
    let clGetDeviceIDs: GetDeviceIDs
    let clCreateContext: CreateContext
    let clCreateCommandQueueWithProperties: CreateQueue
    let clCreateProgramWithSource: CreateProgramWithSource
    let clBuildProgram: BuildProgram
    let clCreateKernel: CreateKernel
    let clSetKernelArg: SetKernelArg
    let clEnqueueNDRangeKernel: EnqueueNDRangeKernel
    let clFinish: Finish
    let clCreateBuffer: CreateBuffer
    let clEnqueueWriteBuffer: EnqueueWriteBuffer
    let clEnqueueReadBuffer: EnqueueReadBuffer
    let clReleaseMemObject: Release
    let clReleaseKernel: Release
    let clReleaseProgram: Release
    let clReleaseCommandQueue: Release
    let clReleaseContext: Release

    init(label: String, path: String) throws(BenchError) {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            throw BenchError("cannot load the \(label) library \(path): \(reason)")
        }
        self.label = label
        self.path = path
        func symbol<F>(_ name: String, as _: F.Type) throws(BenchError) -> F {
            guard let address = dlsym(handle, name) else { throw BenchError("\(path) does not export \(name)") }
            return unsafeBitCast(address, to: F.self)
        }
        clGetPlatformIDs = try symbol("clGetPlatformIDs", as: GetPlatformIDs.self)
        clGetPlatformInfo = try symbol("clGetPlatformInfo", as: GetPlatformInfo.self)
        clGetDeviceIDs = try symbol("clGetDeviceIDs", as: GetDeviceIDs.self)
        clCreateContext = try symbol("clCreateContext", as: CreateContext.self)
        clCreateCommandQueueWithProperties = try symbol("clCreateCommandQueueWithProperties", as: CreateQueue.self)
        clCreateProgramWithSource = try symbol("clCreateProgramWithSource", as: CreateProgramWithSource.self)
        clBuildProgram = try symbol("clBuildProgram", as: BuildProgram.self)
        clCreateKernel = try symbol("clCreateKernel", as: CreateKernel.self)
        clSetKernelArg = try symbol("clSetKernelArg", as: SetKernelArg.self)
        clEnqueueNDRangeKernel = try symbol("clEnqueueNDRangeKernel", as: EnqueueNDRangeKernel.self)
        clFinish = try symbol("clFinish", as: Finish.self)
        clCreateBuffer = try symbol("clCreateBuffer", as: CreateBuffer.self)
        clEnqueueWriteBuffer = try symbol("clEnqueueWriteBuffer", as: EnqueueWriteBuffer.self)
        clEnqueueReadBuffer = try symbol("clEnqueueReadBuffer", as: EnqueueReadBuffer.self)
        clReleaseMemObject = try symbol("clReleaseMemObject", as: Release.self)
        clReleaseKernel = try symbol("clReleaseKernel", as: Release.self)
        clReleaseProgram = try symbol("clReleaseProgram", as: Release.self)
        clReleaseCommandQueue = try symbol("clReleaseCommandQueue", as: Release.self)
        clReleaseContext = try symbol("clReleaseContext", as: Release.self)
    }

    /// Fails with the call and its `cl_int` unless `status` is `CL_SUCCESS`.
    func check(_ status: Int32, _ what: @autoclosure () -> String) throws(BenchError) {
        guard status != Self.success else { return }
        throw BenchError("\(what()) on the \(label) (\(path)) failed: cl_int \(status)")
    }
}

/// The first device of the first platform of one library, with a context, an in-order queue, an
/// empty kernel and its one buffer argument.
final class BenchOpenCLSession: @unchecked Sendable {
    let api: BenchOpenCL
    let platformName: String
    let context: BenchOpenCL.Handle?
    let queue: BenchOpenCL.Handle?
    let program: BenchOpenCL.Handle?
    let kernel: BenchOpenCL.Handle?
    let argument: BenchOpenCL.Handle?

    static let source = "__kernel void xpu_bench_empty(__global int *unused) { }\n"

    init(api: BenchOpenCL) throws(BenchError) {
        self.api = api
        var platform: BenchOpenCL.Handle?
        var count: UInt32 = 0
        try api.check(api.clGetPlatformIDs(1, &platform, &count), "clGetPlatformIDs")
        guard count > 0 else { throw BenchError("the \(api.label) (\(api.path)) has no OpenCL platform") }
        var name = [CChar](repeating: 0, count: 256)
        try api.check(api.clGetPlatformInfo(platform, BenchOpenCL.platformName, name.count, &name, nil), "clGetPlatformInfo(NAME)")
        platformName = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var device: BenchOpenCL.Handle?
        try api.check(api.clGetDeviceIDs(platform, BenchOpenCL.deviceTypeAll, 1, &device, nil), "clGetDeviceIDs")
        var status: Int32 = 0
        context = api.clCreateContext(nil, 1, &device, nil, nil, &status)
        try api.check(status, "clCreateContext")
        queue = api.clCreateCommandQueueWithProperties(context, device, nil, &status)
        try api.check(status, "clCreateCommandQueueWithProperties")
        let context = context
        program = Self.source.withCString { text in
            var strings: UnsafePointer<CChar>? = text
            return api.clCreateProgramWithSource(context, 1, &strings, nil, &status)
        }
        try api.check(status, "clCreateProgramWithSource")
        try api.check(api.clBuildProgram(program, 1, &device, "", nil, nil), "clBuildProgram")
        kernel = api.clCreateKernel(program, "xpu_bench_empty", &status)
        try api.check(status, "clCreateKernel")
        argument = api.clCreateBuffer(context, BenchOpenCL.memReadWrite, 256, nil, &status)
        try api.check(status, "clCreateBuffer(256)")
        var value = argument
        try api.check(api.clSetKernelArg(kernel, 0, MemoryLayout<BenchOpenCL.Handle?>.size, &value), "clSetKernelArg")
    }

    /// `count` enqueues of the empty kernel (one work-item) then one `clFinish`; enqueues per second.
    func enqueueRound(count: Int) throws(BenchError) -> Double {
        var global = 1
        let start = monotonicNanoseconds()
        for _ in 0..<count {
            try api.check(api.clEnqueueNDRangeKernel(queue, kernel, 1, nil, &global, nil, 0, nil, nil), "clEnqueueNDRangeKernel")
        }
        try api.check(api.clFinish(queue), "clFinish")
        return Double(count) / (Double(monotonicNanoseconds() - start) / 1e9)
    }

    /// A buffer of `bytes` on this session's context.
    func buffer(_ bytes: Int) throws(BenchError) -> BenchOpenCL.Handle? {
        var status: Int32 = 0
        let buffer = api.clCreateBuffer(context, BenchOpenCL.memReadWrite, bytes, nil, &status)
        try api.check(status, "clCreateBuffer(\(bytes))")
        return buffer
    }

    /// A blocking write of `bytes` from `source` into `buffer`.
    func write(_ buffer: BenchOpenCL.Handle?, _ source: UnsafeRawPointer, _ bytes: Int) throws(BenchError) {
        try api.check(
            api.clEnqueueWriteBuffer(queue, buffer, BenchOpenCL.blocking, 0, bytes, source, 0, nil, nil),
            "clEnqueueWriteBuffer(\(bytes))")
    }

    /// A blocking read of `bytes` from `buffer` into `destination`.
    func read(_ buffer: BenchOpenCL.Handle?, _ destination: UnsafeMutableRawPointer, _ bytes: Int) throws(BenchError) {
        try api.check(
            api.clEnqueueReadBuffer(queue, buffer, BenchOpenCL.blocking, 0, bytes, destination, 0, nil, nil),
            "clEnqueueReadBuffer(\(bytes))")
    }

    func release() {
        _ = api.clReleaseMemObject(argument)
        _ = api.clReleaseKernel(kernel)
        _ = api.clReleaseProgram(program)
        _ = api.clReleaseCommandQueue(queue)
        _ = api.clReleaseContext(context)
    }
}
