import CXPUOpenCL
import XPUProtocol

/// The OpenCL platform a server serves (`--device opencl[:PLATFORM]`): the system's OpenCL loaded
/// with dlopen, one of its platforms, and that platform's devices with every info answer a
/// client may ask of them, gathered once at start.
public final class OpenCLPlatform: @unchecked Sendable {
    /// Immutable after `init`; the OpenCL calls themselves are thread-safe.
    let library: xpu_opencl_library
    let platform: cl_platform_id
    let devices: [cl_device_id]
    public let name: String
    /// clGetPlatformInfo answers (CLGetPlatform).
    let platformInfo: [CLInfoValue]
    /// Every clGetDeviceInfo answer of each device that the platform gives (as bytes), except the
    /// handle-valued ones, which the client answers.
    let deviceInfo: [[cl_uint: [UInt8]]]
    /// CL_DEVICE_GLOBAL_MEM_SIZE of each device.
    public let deviceMemory: [UInt64]

    /// `selector`: a platform index, or a case-insensitive part of its name or vendor; empty for
    /// the first platform.
    public init(path: String, selector: String) throws(DriverLoadError) {
        var library = xpu_opencl_library()
        var error = [CChar](repeating: 0, count: 512)
        guard xpu_opencl_library_open(path, &library, &error, error.count) == 0 else {
            throw DriverLoadError(message: "cannot load \(path): \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        self.library = library
        var count: cl_uint = 0
        guard library.clGetPlatformIDs!(0, nil, &count) == CL_SUCCESS, count > 0 else {
            throw DriverLoadError(message: "\(path) reports no OpenCL platform")
        }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(count))
        _ = library.clGetPlatformIDs!(count, &platforms, nil)
        func text(_ platform: cl_platform_id?, _ parameter: Int32) -> String {
            let bytes = Self.query { size, value, returned in library.clGetPlatformInfo!(platform, cl_uint(parameter), size, value, returned) }
            return String(decoding: (bytes ?? []).prefix { $0 != 0 }, as: UTF8.self)
        }
        let names = platforms.map { "\(text($0, CL_PLATFORM_NAME)) (\(text($0, CL_PLATFORM_VENDOR)))" }
        let chosen: Int
        if selector.isEmpty {
            chosen = 0
        } else if let index = Int(selector) {
            guard platforms.indices.contains(index) else {
                throw DriverLoadError(message: "no OpenCL platform \(index): there are \(names.count) (\(names.joined(separator: ", ")))")
            }
            chosen = index
        } else if let index = names.firstIndex(where: { $0.lowercased().contains(selector.lowercased()) }) {
            chosen = index
        } else {
            throw DriverLoadError(message: "no OpenCL platform matches '\(selector)': \(names.joined(separator: ", "))")
        }
        guard let platform = platforms[chosen] else { throw DriverLoadError(message: "OpenCL platform \(chosen) is NULL") }
        self.platform = platform
        name = names[chosen]

        var platformInfo: [CLInfoValue] = []
        for parameter in 0x0900...0x0909 {
            let answer = Self.query { size, value, returned in library.clGetPlatformInfo!(platform, cl_uint(parameter), size, value, returned) }
            if let answer { platformInfo.append(CLInfoValue(param: cl_uint(parameter), value: answer)) }
        }
        self.platformInfo = platformInfo

        var deviceCount: cl_uint = 0
        guard library.clGetDeviceIDs!(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &deviceCount) == CL_SUCCESS, deviceCount > 0
        else { throw DriverLoadError(message: "OpenCL platform \(name) has no device") }
        var found = [cl_device_id?](repeating: nil, count: Int(deviceCount))
        _ = library.clGetDeviceIDs!(platform, cl_device_type(CL_DEVICE_TYPE_ALL), deviceCount, &found, nil)
        devices = found.compactMap { $0 }
        // Device queries are numbered from 0x1000 (core; 0x1200-0x12FF and 0x4000-0x41FF hold
        // most extensions'); whatever the platform answers is kept.
        let handleValued: Set<cl_uint> = [cl_uint(CL_DEVICE_PLATFORM), cl_uint(CL_DEVICE_PARENT_DEVICE)]
        deviceInfo = devices.map { device in
            var info: [cl_uint: [UInt8]] = [:]
            for parameter in Array(0x1000...0x10FF) + Array(0x1200...0x12FF) + Array(0x4000...0x41FF) where !handleValued.contains(cl_uint(parameter)) {
                let answer = Self.query { size, value, returned in library.clGetDeviceInfo!(device, cl_uint(parameter), size, value, returned) }
                if let answer { info[cl_uint(parameter)] = answer }
            }
            return info
        }
        deviceMemory = deviceInfo.map { info in
            guard let bytes = info[cl_uint(CL_DEVICE_GLOBAL_MEM_SIZE)], bytes.count == 8 else { return 0 }
            return bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        }
    }

    /// Asks a clGet*Info-shaped call for the size of its answer, then the answer; nil when it fails.
    static func query(_ call: (Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> cl_int) -> [UInt8]? {
        let (status, bytes) = answer(call)
        return status == CL_SUCCESS ? bytes : nil
    }

    /// The same, with the call's status when it fails.
    static func answer(_ call: (Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> cl_int) -> (cl_int, [UInt8]) {
        var size = 0
        let sized = call(0, nil, &size)
        guard sized == CL_SUCCESS else { return (sized, []) }
        var bytes = [UInt8](repeating: 0, count: size)
        let status = size == 0 ? CL_SUCCESS : bytes.withUnsafeMutableBytes { call(size, $0.baseAddress, nil) }
        return (status, bytes)
    }

    /// The devices as a session sees them: memory sizes capped by its memory quota.
    func deviceFacts(quota: UInt64?) -> [CLDeviceFacts] {
        deviceInfo.enumerated().map { index, info in
            var info = info
            if let quota {
                info[cl_uint(CL_DEVICE_GLOBAL_MEM_SIZE)] = withUnsafeBytes(of: quota) { Array($0) }
                if let bytes = info[cl_uint(CL_DEVICE_MAX_MEM_ALLOC_SIZE)], bytes.count == 8 {
                    let largest = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                    info[cl_uint(CL_DEVICE_MAX_MEM_ALLOC_SIZE)] = withUnsafeBytes(of: min(largest, quota)) { Array($0) }
                }
            }
            let values = info.keys.sorted().map { CLInfoValue(param: $0, value: info[$0]!) }
            return CLDeviceFacts(device: UInt64(index + 1), info: values)
        }
    }
}
