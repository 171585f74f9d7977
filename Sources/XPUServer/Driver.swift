#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver

/// What the server replays calls on: a CUDA driver library loaded with dlopen (the real
/// `libcuda.so.1` or the simulated `libxpusim.so`, which export the same C ABI, so the server
/// replays calls on either through one table), or an OpenCL platform (`--device opencl`).
public final class Driver: @unchecked Sendable {
    private let cudaTable: DriverTable?
    /// The OpenCL platform served; nil when the server serves CUDA.
    public let openCL: OpenCLPlatform?
    public let path: String
    /// `cuDriverGetVersion` of the loaded driver.
    public let version: Int32
    /// The simulated device's `xpu_sim_device_range` (XPUSim/HostView.swift): a host view of a
    /// device range once a copy on a stream would start. nil for real drivers, which lack it, and
    /// when `directCopies` is off: bulk data then goes through a staging buffer.
    let deviceRange: DeviceRangeFunction?

    typealias DeviceRangeFunction = @convention(c) (
        CUdeviceptr, Int, CUstream?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> CUresult
    /// `cuMemHostRegister_v2` and `cuMemHostUnregister`, where the driver has them: they page-lock
    /// the sessions' upload buffers (UploadStaging) on a real driver; the simulated device only
    /// records the ranges.
    /// Looked up here rather than in the generated table, which holds the calls clients make.
    let hostRegister: UploadStaging.HostRegister?
    let hostUnregister: UploadStaging.HostUnregister?

    /// `directCopies`: let sessions copy straight between the socket and device memory where the
    /// driver offers host views of it (the simulated device); off, every copy is staged.
    public init(path: String, directCopies: Bool = true) throws(DriverLoadError) {
        guard let library = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw DriverLoadError(message: "cannot load \(path): \(String(cString: dlerror()))")
        }
        let table = try DriverTable { name in dlsym(library, name) }
        cudaTable = table
        openCL = nil
        self.path = path
        deviceRange = directCopies ? dlsym(library, "xpu_sim_device_range").map { unsafeBitCast($0, to: DeviceRangeFunction.self) } : nil
        // The simulated device's printf output goes to the clients, not to this process's stdout.
        if let install = dlsym(library, "xpu_sim_set_device_output_sink") { DeviceOutputCollector.install(with: install) }
        let register = dlsym(library, "cuMemHostRegister_v2").map { unsafeBitCast($0, to: UploadStaging.HostRegister.self) }
        let unregister = dlsym(library, "cuMemHostUnregister").map { unsafeBitCast($0, to: UploadStaging.HostUnregister.self) }
        (hostRegister, hostUnregister) = register != nil && unregister != nil ? (register, unregister) : (nil, nil)
        let status = table.cuInit(0)
        guard status == CUDA_SUCCESS else {
            throw DriverLoadError(message: "cuInit on \(path) failed with \(resultName(status))")
        }
        var version: Int32 = 0
        guard dlsym(library, "cuDriverGetVersion") != nil else {
            throw DriverLoadError(missingSymbols: ["cuDriverGetVersion"])
        }
        let getVersion = unsafeBitCast(
            dlsym(library, "cuDriverGetVersion"), to: (@convention(c) (UnsafeMutablePointer<Int32>?) -> CUresult).self)
        _ = getVersion(&version)
        self.version = version
    }

    /// Serves `platform`: sessions speak OpenCL (proto/opencl.api). `version` is 3000 (OpenCL 3.0).
    public init(openCL platform: OpenCLPlatform, path: String) {
        cudaTable = nil
        openCL = platform
        self.path = path
        version = 3000
        deviceRange = nil
        (hostRegister, hostUnregister) = (nil, nil)
    }

    /// The CUDA driver's entry points. Only CUDA sessions use them, and they exist only on a
    /// server whose driver is CUDA's (`openCL` is nil).
    var table: DriverTable { cudaTable! }

    /// How many devices the server serves.
    func deviceCount() -> Int32 {
        if let openCL { return Int32(openCL.devices.count) }
        var count: Int32 = 0
        return table.cuDeviceGetCount(&count) == CUDA_SUCCESS ? count : 0
    }

    /// A device's memory in bytes (0 for a device that does not exist).
    func totalMemory(_ device: Int32) -> UInt64 {
        if let openCL { return openCL.deviceMemory.indices.contains(Int(device)) ? openCL.deviceMemory[Int(device)] : 0 }
        var bytes = 0
        return table.cuDeviceTotalMem_v2(&bytes, device) == CUDA_SUCCESS ? UInt64(bytes) : 0
    }
}

/// The driver library could not be used.
public struct DriverLoadError: Error, CustomStringConvertible, Sendable {
    public var message: String

    init(message: String) { self.message = message }

    init(missingSymbols: [String]) {
        message = "the driver lacks \(missingSymbols.count) entry points: \(missingSymbols.joined(separator: ", "))"
    }

    public var description: String { message }
}

/// "CUDA_ERROR_INVALID_VALUE", for logs.
func resultName(_ status: CUresult) -> String {
    xpu_result_name(status).map { String(cString: $0) } ?? "CUresult \(status.rawValue)"
}
