import CXPUDriver

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a measurement could not run: a library that does not load, a driver call that fails, a
/// server that does not start. The message names what was attempted.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The driver entry points xpu-bench calls, resolved with `dlsym` from one library: the shim
/// (`libxpushim.so`, every call goes to the server) or the simulated device (`libxpusim.so`, the
/// same API in this process, the no-network baseline).
///
/// The library is loaded `RTLD_LOCAL`, so both can live in one process: each `dlsym` names the
/// library's own export. Signatures follow `CXPUDriver.h` (the ABI of the CUDA driver API).
final class BenchDriver: @unchecked Sendable {
    typealias Init = @convention(c) (UInt32) -> CUresult
    typealias DeviceGet = @convention(c) (UnsafeMutablePointer<CUdevice>?, Int32) -> CUresult
    typealias PrimaryCtxRetain = @convention(c) (UnsafeMutablePointer<CUcontext?>?, CUdevice) -> CUresult
    typealias CtxSetCurrent = @convention(c) (CUcontext?) -> CUresult
    typealias CtxSynchronize = @convention(c) () -> CUresult
    typealias MemGetInfo = @convention(c) (UnsafeMutablePointer<Int>?, UnsafeMutablePointer<Int>?) -> CUresult
    typealias MemAlloc = @convention(c) (UnsafeMutablePointer<CUdeviceptr>?, Int) -> CUresult
    typealias MemFree = @convention(c) (CUdeviceptr) -> CUresult
    typealias MemcpyHtoD = @convention(c) (CUdeviceptr, UnsafeRawPointer?, Int) -> CUresult
    typealias MemcpyDtoH = @convention(c) (UnsafeMutableRawPointer?, CUdeviceptr, Int) -> CUresult
    typealias ModuleLoadData = @convention(c) (UnsafeMutablePointer<CUmodule?>?, UnsafeRawPointer?) -> CUresult
    typealias ModuleGetFunction = @convention(c) (UnsafeMutablePointer<CUfunction?>?, CUmodule?, UnsafePointer<CChar>?) -> CUresult
    typealias ModuleUnload = @convention(c) (CUmodule?) -> CUresult
    typealias LaunchKernel = @convention(c) (
        CUfunction?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, CUstream?,
        UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> CUresult
    typealias StreamCreate = @convention(c) (UnsafeMutablePointer<CUstream?>?, UInt32) -> CUresult
    typealias StreamQuery = @convention(c) (CUstream?) -> CUresult
    typealias StreamDestroy = @convention(c) (CUstream?) -> CUresult
    typealias GetErrorName = @convention(c) (CUresult, UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> CUresult

    /// What the library is, for messages ("shim", "sim").
    let label: String
    let path: String
    private let handle: UnsafeMutableRawPointer

    let cuInit: Init
    let cuDeviceGet: DeviceGet
    let cuDevicePrimaryCtxRetain: PrimaryCtxRetain
    let cuCtxSetCurrent: CtxSetCurrent
    let cuCtxSynchronize: CtxSynchronize
    let cuMemGetInfo: MemGetInfo
    let cuMemAlloc: MemAlloc
    let cuMemFree: MemFree
    let cuMemcpyHtoD: MemcpyHtoD
    let cuMemcpyDtoH: MemcpyDtoH
    let cuModuleLoadData: ModuleLoadData
    let cuModuleGetFunction: ModuleGetFunction
    let cuModuleUnload: ModuleUnload
    let cuLaunchKernel: LaunchKernel
    let cuStreamCreate: StreamCreate
    let cuStreamQuery: StreamQuery
    let cuStreamDestroy: StreamDestroy
    let cuGetErrorName: GetErrorName
    /// The shim's `xpu_shim_set_compression` (absent from libxpusim.so).
    let setCompression: (@convention(c) (Int32) -> Int32)?

    init(label: String, path: String) throws(BenchError) {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            throw BenchError("cannot load the \(label) library \(path): \(reason)")
        }
        self.label = label
        self.path = path
        self.handle = handle
        func symbol<F>(_ name: String, as _: F.Type) throws(BenchError) -> F {
            guard let address = dlsym(handle, name) else {
                throw BenchError("\(path) does not export \(name)")
            }
            return unsafeBitCast(address, to: F.self)
        }
        cuInit = try symbol("cuInit", as: Init.self)
        cuDeviceGet = try symbol("cuDeviceGet", as: DeviceGet.self)
        cuDevicePrimaryCtxRetain = try symbol("cuDevicePrimaryCtxRetain", as: PrimaryCtxRetain.self)
        cuCtxSetCurrent = try symbol("cuCtxSetCurrent", as: CtxSetCurrent.self)
        cuCtxSynchronize = try symbol("cuCtxSynchronize", as: CtxSynchronize.self)
        cuMemGetInfo = try symbol("cuMemGetInfo_v2", as: MemGetInfo.self)
        cuMemAlloc = try symbol("cuMemAlloc_v2", as: MemAlloc.self)
        cuMemFree = try symbol("cuMemFree_v2", as: MemFree.self)
        cuMemcpyHtoD = try symbol("cuMemcpyHtoD_v2", as: MemcpyHtoD.self)
        cuMemcpyDtoH = try symbol("cuMemcpyDtoH_v2", as: MemcpyDtoH.self)
        cuModuleLoadData = try symbol("cuModuleLoadData", as: ModuleLoadData.self)
        cuModuleGetFunction = try symbol("cuModuleGetFunction", as: ModuleGetFunction.self)
        cuModuleUnload = try symbol("cuModuleUnload", as: ModuleUnload.self)
        cuLaunchKernel = try symbol("cuLaunchKernel", as: LaunchKernel.self)
        cuStreamCreate = try symbol("cuStreamCreate", as: StreamCreate.self)
        cuStreamQuery = try symbol("cuStreamQuery", as: StreamQuery.self)
        cuStreamDestroy = try symbol("cuStreamDestroy_v2", as: StreamDestroy.self)
        cuGetErrorName = try symbol("cuGetErrorName", as: GetErrorName.self)
        setCompression = dlsym(handle, "xpu_shim_set_compression").map {
            unsafeBitCast($0, to: (@convention(c) (Int32) -> Int32).self)
        }
    }

    /// Fails with the result's name unless `result` is `CUDA_SUCCESS`.
    func check(_ result: CUresult, _ what: @autoclosure () -> String) throws(BenchError) {
        guard result != CUDA_SUCCESS else { return }
        var name: UnsafePointer<CChar>?
        let text = cuGetErrorName(result, &name) == CUDA_SUCCESS && name != nil
            ? String(cString: name!) : "CUresult \(result.rawValue)"
        throw BenchError("\(what()) on the \(label) (\(path)) failed: \(text)")
    }
}

/// A driver after `cuInit`, with device 0's primary context current on the calling thread.
///
/// The current context is per thread: every measurement runs on the thread that opened the session
/// (the subcommands are synchronous for that reason).
final class BenchSession: @unchecked Sendable {
    let driver: BenchDriver
    let context: CUcontext?

    init(driver: BenchDriver) throws(BenchError) {
        self.driver = driver
        try driver.check(driver.cuInit(0), "cuInit")
        var device: CUdevice = 0
        try driver.check(driver.cuDeviceGet(&device, 0), "cuDeviceGet(0)")
        var context: CUcontext?
        try driver.check(driver.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain")
        try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        self.context = context
    }

    /// Makes the session's context current on this thread (after a thread change).
    func makeCurrent() throws(BenchError) {
        try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
    }
}

/// Progress for long runs, on stderr so that stdout stays the table or the JSON.
func progress(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}
