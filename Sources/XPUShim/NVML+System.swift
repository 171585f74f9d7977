#if canImport(Glibc)
import Glibc
#endif
import CXPUNVML
import XPUProtocol

// NVML: initialization, errors, the system, and device handles (Sources/CXPUNVML/include/CXPUNVML.h).

@c @implementation public func nvmlInit() -> nvmlReturn_t { Management.initialize(flags: 0) }
@c @implementation public func nvmlInit_v2() -> nvmlReturn_t { Management.initialize(flags: 0) }
@c @implementation public func nvmlInitWithFlags(_ flags: UInt32) -> nvmlReturn_t { Management.initialize(flags: flags) }
@c @implementation public func nvmlShutdown() -> nvmlReturn_t { Management.shutdown() }

@c @implementation public func nvmlErrorString(_ result: nvmlReturn_t) -> UnsafePointer<CChar>? {
    let text: StaticString =
        switch result {
        case NVML_SUCCESS: "Success"
        case NVML_ERROR_UNINITIALIZED: "Uninitialized"
        case NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument"
        case NVML_ERROR_NOT_SUPPORTED: "Not Supported"
        case NVML_ERROR_NO_PERMISSION: "Insufficient Permissions"
        case NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized"
        case NVML_ERROR_NOT_FOUND: "Not Found"
        case NVML_ERROR_INSUFFICIENT_SIZE: "Insufficient Size"
        case NVML_ERROR_INSUFFICIENT_POWER: "Insufficient External Power"
        case NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded"
        case NVML_ERROR_TIMEOUT: "Timeout"
        case NVML_ERROR_IRQ_ISSUE: "Interrupt Request Issue"
        case NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found"
        case NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found"
        case NVML_ERROR_CORRUPTED_INFOROM: "Corrupted infoROM"
        case NVML_ERROR_GPU_IS_LOST: "GPU is lost"
        case NVML_ERROR_RESET_REQUIRED: "GPU requires restart"
        case NVML_ERROR_OPERATING_SYSTEM: "The operating system has blocked the request."
        case NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch."
        case NVML_ERROR_IN_USE: "In use by another client"
        case NVML_ERROR_MEMORY: "Insufficient Memory"
        case NVML_ERROR_NO_DATA: "No data"
        case NVML_ERROR_VGPU_ECC_NOT_SUPPORTED: "Not supported for vGPU with ECC enabled"
        case NVML_ERROR_INSUFFICIENT_RESOURCES: "Insufficient resources"
        case NVML_ERROR_FREQ_NOT_SUPPORTED: "Frequency not supported"
        case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: "Argument version mismatch"
        case NVML_ERROR_DEPRECATED: "Deprecated"
        case NVML_ERROR_NOT_READY: "Not ready"
        case NVML_ERROR_GPU_NOT_FOUND: "GPU not found"
        case NVML_ERROR_INVALID_STATE: "Invalid state"
        case NVML_ERROR_RESET_TYPE_NOT_SUPPORTED: "Reset type not supported"
        default: "Unknown Error"
        }
    return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

@c @implementation public func nvmlSystemGetDriverVersion(_ version: UnsafeMutablePointer<CChar>?, _ length: UInt32) -> nvmlReturn_t {
    Management.system { _ throws(ManagementFailure) in
        let text = Management.state.driverVersion
        guard !text.isEmpty else { throw ManagementFailure(NVML_ERROR_NOT_SUPPORTED) }
        return Management.store(text, to: version, length: length)
    }
}

/// The NVML API version of our header (13), as the real library's "13.<driver>" begins.
@c @implementation public func nvmlSystemGetNVMLVersion(_ version: UnsafeMutablePointer<CChar>?, _ length: UInt32) -> nvmlReturn_t {
    Management.system { _ throws(ManagementFailure) in Management.store("13.0", to: version, length: length) }
}

/// The CUDA version of the server's driver (from the handshake), as cuDriverGetVersion reports it.
@c @implementation public func nvmlSystemGetCudaDriverVersion(_ cudaDriverVersion: UnsafeMutablePointer<Int32>?) -> nvmlReturn_t {
    Management.system { lane throws(ManagementFailure) in
        guard let cudaDriverVersion else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        cudaDriverVersion.pointee = lane.driverVersion
        return NVML_SUCCESS
    }
}

@c @implementation public func nvmlSystemGetCudaDriverVersion_v2(_ cudaDriverVersion: UnsafeMutablePointer<Int32>?) -> nvmlReturn_t {
    nvmlSystemGetCudaDriverVersion(cudaDriverVersion)
}

/// The devices of every session, server by server (all of them: NVML ignores CUDA_VISIBLE_DEVICES).
@c @implementation public func nvmlDeviceGetCount(_ deviceCount: UnsafeMutablePointer<UInt32>?) -> nvmlReturn_t {
    Management.system { _ throws(ManagementFailure) in
        guard let deviceCount else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        deviceCount.pointee = UInt32(Management.state.deviceCount)
        return NVML_SUCCESS
    }
}

@c @implementation public func nvmlDeviceGetCount_v2(_ deviceCount: UnsafeMutablePointer<UInt32>?) -> nvmlReturn_t {
    nvmlDeviceGetCount(deviceCount)
}

@c @implementation public func nvmlDeviceGetHandleByIndex(_ index: UInt32, _ device: UnsafeMutablePointer<nvmlDevice_t?>?) -> nvmlReturn_t {
    Management.system { _ throws(ManagementFailure) in
        guard let device, index < UInt32(Management.state.deviceCount) else {
            throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT)
        }
        device.pointee = Management.handle(Int32(index))
        return NVML_SUCCESS
    }
}

@c @implementation public func nvmlDeviceGetHandleByIndex_v2(_ index: UInt32, _ device: UnsafeMutablePointer<nvmlDevice_t?>?) -> nvmlReturn_t {
    nvmlDeviceGetHandleByIndex(index, device)
}

@c @implementation public func nvmlDeviceGetHandleByUUID(_ uuid: UnsafePointer<CChar>?, _ device: UnsafeMutablePointer<nvmlDevice_t?>?) -> nvmlReturn_t {
    guard let uuid else { return NVML_ERROR_INVALID_ARGUMENT }
    let wanted = String(cString: uuid).lowercased()
    return Management.find(device) { facts in Management.uuidString(facts.uuid).lowercased() == wanted }
}

@c @implementation public func nvmlDeviceGetHandleByPciBusId(_ pciBusId: UnsafePointer<CChar>?, _ device: UnsafeMutablePointer<nvmlDevice_t?>?) -> nvmlReturn_t {
    guard let pciBusId, let wanted = Management.parseBusID(String(cString: pciBusId)) else {
        return NVML_ERROR_INVALID_ARGUMENT
    }
    return Management.find(device) { facts in
        facts.pciDomain == wanted.domain && facts.pciBus == wanted.bus && facts.pciDevice == wanted.device
    }
}

@c @implementation public func nvmlDeviceGetHandleByPciBusId_v2(_ pciBusId: UnsafePointer<CChar>?, _ device: UnsafeMutablePointer<nvmlDevice_t?>?) -> nvmlReturn_t {
    nvmlDeviceGetHandleByPciBusId(pciBusId, device)
}

@c @implementation public func nvmlDeviceGetIndex(_ device: nvmlDevice_t?, _ index: UnsafeMutablePointer<UInt32>?) -> nvmlReturn_t {
    Management.query(device) { deviceIndex throws(ManagementFailure) in
        guard let index else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        index.pointee = UInt32(deviceIndex)
        return NVML_SUCCESS
    }
}

extension Management {
    /// A query about the system: NVML initialized, the lock held.
    static func system(_ body: (Lane) throws(ManagementFailure) -> nvmlReturn_t) -> nvmlReturn_t {
        switch initialized(body) {
        case .success(let status): return status
        case .failure(let failure): return failure.status
        }
    }

    /// The handle of the first device whose facts match, or NVML_ERROR_NOT_FOUND.
    static func find(_ device: UnsafeMutablePointer<nvmlDevice_t?>?, _ matches: (DeviceFactsReply) -> Bool) -> nvmlReturn_t {
        system { _ throws(ManagementFailure) in
            guard let device else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
            for index in 0..<state.deviceCount where matches(try facts(index)) {
                device.pointee = handle(index)
                return NVML_SUCCESS
            }
            return NVML_ERROR_NOT_FOUND
        }
    }
}
