import CXPUOpenCL
import CXPUOpenCLICD
import XPUProtocol

// The platform and its devices are asked of the server once per session (CLGetPlatform); every
// platform and device query is then answered here. The server reports each device's memory as the
// session's slice.

extension ICDState {
    /// The platform, asking the server on first use.
    mutating func loadedPlatform() throws(ICDError) -> CLObject {
        if let platform { return platform }
        let reply = try exchange(CLGetPlatformRequest())
        guard let platform = adopt(.platform, remote: 0) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        for value in reply.info { platform.facts[value.param] = value.value }
        // This library is the ICD: it names the extensions it serves itself.
        platform.facts[cl_uint(CL_PLATFORM_EXTENSIONS)] = Info.string("cl_khr_icd")
        // CL_PLATFORM_EXTENSIONS_WITH_VERSION: one cl_name_version (a version, a 64-byte name).
        var named = Info.bytes(of: cl_uint(1 << 22)) + Array("cl_khr_icd".utf8)
        named += [UInt8](repeating: 0, count: 4 + 64 - named.count)
        platform.facts[cl_uint(CL_PLATFORM_EXTENSIONS_WITH_VERSION)] = named
        platform.facts[cl_uint(CL_PLATFORM_ICD_SUFFIX_KHR)] = Info.string("XPU")
        for facts in reply.devices {
            guard let device = adopt(.device, remote: facts.device) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
            for value in facts.info { device.facts[value.param] = value.value }
            DeviceFacts.serve(&device.facts)
            platform.devices.append(device)
        }
        self.platform = platform
        return platform
    }

    /// `platform` when it is this library's (NULL means it too, as OpenCL lets an implementation choose).
    mutating func requirePlatform(_ handle: OpaquePointer?) throws(ICDError) -> CLObject {
        let platform = try loadedPlatform()
        guard handle == nil || handle == platform.opaque else { throw ICDError(CL_INVALID_PLATFORM) }
        return platform
    }

    func deviceType(_ device: CLObject) -> UInt64 {
        guard let bytes = device.facts[cl_uint(CL_DEVICE_TYPE)], bytes.count == 8 else { return 0 }
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    /// The platform's devices of `type` (CL_DEVICE_TYPE_DEFAULT: the first).
    func devices(of platform: CLObject, type: UInt64) throws(ICDError) -> [CLObject] {
        let all = UInt64(CL_DEVICE_TYPE_ALL)
        let known = UInt64(CL_DEVICE_TYPE_DEFAULT | CL_DEVICE_TYPE_CPU | CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR | CL_DEVICE_TYPE_CUSTOM)
        guard type == all || type & ~known == 0, type != 0 else { throw ICDError(CL_INVALID_DEVICE_TYPE) }
        if type == UInt64(CL_DEVICE_TYPE_DEFAULT) { return Array(platform.devices.prefix(1)) }
        return platform.devices.filter { type == all || deviceType($0) & type != 0 }
    }
}

func platformIDs(_ count: cl_uint, _ platforms: UnsafeMutablePointer<cl_platform_id?>?, _ found: UnsafeMutablePointer<cl_uint>?) -> cl_int {
    guard (count == 0) == (platforms == nil), platforms != nil || found != nil else { return CL_INVALID_VALUE }
    let platform = ICD.state.withLock { state in try? state.loadedPlatform() }
    guard let platform else {
        found?.pointee = 0
        return CL_PLATFORM_NOT_FOUND_KHR
    }
    found?.pointee = 1
    if count > 0 { platforms?[0] = platform.opaque }
    return CL_SUCCESS
}

@c @implementation public func clIcdGetPlatformIDsKHR(
    _ num_entries: cl_uint, _ platforms: UnsafeMutablePointer<cl_platform_id?>?, _ num_platforms: UnsafeMutablePointer<cl_uint>?
) -> cl_int {
    platformIDs(num_entries, platforms, num_platforms)
}

@c @implementation public func clGetPlatformIDs(
    _ num_entries: cl_uint, _ platforms: UnsafeMutablePointer<cl_platform_id?>?, _ num_platforms: UnsafeMutablePointer<cl_uint>?
) -> cl_int {
    platformIDs(num_entries, platforms, num_platforms)
}

@c @implementation public func clGetPlatformInfo(
    _ platform: cl_platform_id?, _ param_name: cl_platform_info, _ param_value_size: Int,
    _ param_value: UnsafeMutableRawPointer?, _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let platform = try state.requirePlatform(platform)
        guard let bytes = platform.facts[param_name] else { throw ICDError(CL_INVALID_VALUE) }
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

@c @implementation public func clGetDeviceIDs(
    _ platform: cl_platform_id?, _ device_type: cl_device_type, _ num_entries: cl_uint,
    _ devices: UnsafeMutablePointer<cl_device_id?>?, _ num_devices: UnsafeMutablePointer<cl_uint>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        guard (num_entries == 0) == (devices == nil), devices != nil || num_devices != nil else { throw ICDError(CL_INVALID_VALUE) }
        let platform = try state.requirePlatform(platform)
        let matching = try state.devices(of: platform, type: device_type)
        guard !matching.isEmpty else { throw ICDError(CL_DEVICE_NOT_FOUND) }
        num_devices?.pointee = cl_uint(matching.count)
        for (index, device) in matching.prefix(Int(num_entries)).enumerated() { devices?[index] = device.opaque }
    }
}

@c @implementation public func clGetDeviceInfo(
    _ device: cl_device_id?, _ param_name: cl_device_info, _ param_value_size: Int,
    _ param_value: UnsafeMutableRawPointer?, _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let device = try state.require(device, .device)
        let bytes: [UInt8]
        switch Int32(param_name) {
        case CL_DEVICE_PLATFORM: bytes = Info.bytes(of: UInt(bitPattern: state.platform?.handle))
        case CL_DEVICE_PARENT_DEVICE: bytes = Info.bytes(of: UInt(0))
        case CL_DEVICE_REFERENCE_COUNT: bytes = Info.bytes(of: cl_uint(1))
        default:
            guard let known = device.facts[param_name] else { throw ICDError(CL_INVALID_VALUE) }
            bytes = known
        }
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

// Root devices: retaining and releasing them does nothing (OpenCL 1.2).
@c @implementation public func clRetainDevice(_ device: cl_device_id?) -> cl_int {
    ICD.call { state throws(ICDError) in _ = try state.require(device, .device) }
}

@c @implementation public func clReleaseDevice(_ device: cl_device_id?) -> cl_int {
    ICD.call { state throws(ICDError) in _ = try state.require(device, .device) }
}

@c @implementation public func clGetExtensionFunctionAddress(_ func_name: UnsafePointer<CChar>?) -> UnsafeMutableRawPointer? {
    xpu_cl_function(func_name)
}

@c @implementation public func clGetExtensionFunctionAddressForPlatform(
    _ platform: cl_platform_id?, _ func_name: UnsafePointer<CChar>?
) -> UnsafeMutableRawPointer? {
    xpu_cl_function(func_name)
}

/// The compiler is the server's platform's: nothing to unload here.
@c @implementation public func clUnloadPlatformCompiler(_ platform: cl_platform_id?) -> cl_int {
    ICD.call { state throws(ICDError) in
        guard platform != nil else { throw ICDError(CL_INVALID_PLATFORM) }
        _ = try state.requirePlatform(platform)
    }
}
