import CXPUDriver
import Synchronization
import XPUPTX

/// One simulated GPU: fixed attributes, device-wide memory, and its primary context.
final class Device: Sendable {
    let ordinal: Int32
    let smCount: Int
    let memory: DeviceMemory
    /// UUID bytes 9-14 (XPU_SIM_NODE).
    let node: [UInt8]
    /// The primary context: the handle is stable for the life of the process; the context object
    /// exists while the reference count is above zero.
    let primary: Mutex<PrimaryContextState>

    struct PrimaryContextState {
        var handle: UInt
        var references = 0
        var flags: UInt32 = 0
        var context: Context?
    }

    init(ordinal: Int32, configuration: SimConfiguration, primaryHandle: UInt) {
        self.ordinal = ordinal
        self.smCount = configuration.smCount
        self.node = configuration.node
        self.memory = DeviceMemory(ordinal: ordinal, capacity: configuration.memoryBytes)
        self.primary = Mutex(PrimaryContextState(handle: primaryHandle))
    }

    var name: String { "xpu-remote Simulated GPU" }

    /// A stable UUID per node and device ordinal (version-4 layout): "xpu-sim", the node's six
    /// bytes, the ordinal last.
    var uuid: CUuuid {
        var u = CUuuid()
        let bytes: [UInt8] = [0x78, 0x70, 0x75, 0x2D, 0x73, 0x69, 0x6D, 0x00, 0x80] + node + [UInt8(truncatingIfNeeded: ordinal)]
        withUnsafeMutableBytes(of: &u.bytes) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[6] = 0x40 | (raw[6] & 0x0F)
        }
        return u
    }

    func attribute(_ attribute: CUdevice_attribute) -> Int32? {
        switch attribute {
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: 1024
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: 1024
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: 1024
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: 64
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: 2_147_483_647
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: 65535
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: 65535
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: 48 * 1024
        case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: 64 * 1024
        case CU_DEVICE_ATTRIBUTE_WARP_SIZE: 32
        case CU_DEVICE_ATTRIBUTE_MAX_PITCH: 2_147_483_647
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: 65536
        case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: 1_755_000
        case CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT: 512
        case CU_DEVICE_ATTRIBUTE_GPU_OVERLAP: 1
        case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: Int32(smCount)
        case CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT: 0
        case CU_DEVICE_ATTRIBUTE_INTEGRATED: 0
        case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: 1
        case CU_DEVICE_ATTRIBUTE_COMPUTE_MODE: 0
        case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: 1
        case CU_DEVICE_ATTRIBUTE_ECC_ENABLED: 0
        case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: 0x10 + ordinal
        case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: 0
        case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: 0
        case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: 2_619_000
        case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: 5120
        case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: 50 * 1024 * 1024
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: 2048
        case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: 2
        case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: 1
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: 9
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: 0
        case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED: 1
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: 228 * 1024
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: 65536
        case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: 0
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: 227 * 1024
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: 32
        default: nil
        }
    }
}

@c @implementation public func cuInit(_ Flags: UInt32) -> CUresult {
    guard Flags == 0 else { return CUDA_ERROR_INVALID_VALUE }
    driver.withLock { registry in
        guard !registry.initialized else { return }
        let configuration = SimConfiguration.fromEnvironment()
        registry.configuration = configuration
        registry.devices = (0..<configuration.deviceCount).map { i in
            Device(ordinal: Int32(i), configuration: configuration, primaryHandle: registry.mintHandle())
        }
        registry.initialized = true
    }
    log("initialized")
    return CUDA_SUCCESS
}

@c @implementation public func cuDriverGetVersion(_ driverVersion: UnsafeMutablePointer<Int32>?) -> CUresult {
    guard let driverVersion else { return CUDA_ERROR_INVALID_VALUE }
    driverVersion.pointee = 13000
    return CUDA_SUCCESS
}

@c @implementation public func cuDeviceGet(_ device: UnsafeMutablePointer<CUdevice>?, _ ordinal: Int32) -> CUresult {
    api { () throws(Failure) in
        guard let device else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let d = try lookupDevice(ordinal)
        device.pointee = d.ordinal
    }
}

@c @implementation public func cuDeviceGetCount(_ count: UnsafeMutablePointer<Int32>?) -> CUresult {
    api { () throws(Failure) in
        guard let count else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        try initializedRegistry()
        count.pointee = Int32(driver.withLock { $0.devices.count })
    }
}

@c @implementation public func cuDeviceGetName(_ name: UnsafeMutablePointer<CChar>?, _ len: Int32, _ dev: CUdevice) -> CUresult {
    api { () throws(Failure) in
        guard let name, len > 0 else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let d = try lookupDevice(dev)
        let bytes = Array(d.name.utf8.prefix(Int(len) - 1))
        for (i, b) in bytes.enumerated() { name[i] = CChar(bitPattern: b) }
        name[bytes.count] = 0
    }
}

@c @implementation public func cuDeviceGetUuid(_ uuid: UnsafeMutablePointer<CUuuid>?, _ dev: CUdevice) -> CUresult {
    api { () throws(Failure) in
        guard let uuid else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        uuid.pointee = try lookupDevice(dev).uuid
    }
}

@c @implementation public func cuDeviceGetUuid_v2(_ uuid: UnsafeMutablePointer<CUuuid>?, _ dev: CUdevice) -> CUresult {
    cuDeviceGetUuid(uuid, dev)
}

@c @implementation public func cuDeviceTotalMem_v2(_ bytes: UnsafeMutablePointer<Int>?, _ dev: CUdevice) -> CUresult {
    api { () throws(Failure) in
        guard let bytes else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        bytes.pointee = try lookupDevice(dev).memory.capacity
    }
}

@c @implementation public func cuDeviceGetAttribute(_ pi: UnsafeMutablePointer<Int32>?, _ attrib: CUdevice_attribute, _ dev: CUdevice) -> CUresult {
    api { () throws(Failure) in
        guard let pi else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let d = try lookupDevice(dev)
        guard let value = d.attribute(attrib) else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        pi.pointee = value
    }
}

@c @implementation public func cuDeviceComputeCapability(_ major: UnsafeMutablePointer<Int32>?, _ minor: UnsafeMutablePointer<Int32>?, _ dev: CUdevice) -> CUresult {
    api { () throws(Failure) in
        guard let major, let minor else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        _ = try lookupDevice(dev)
        major.pointee = 9
        minor.pointee = 0
    }
}
