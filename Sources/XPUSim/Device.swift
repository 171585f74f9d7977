import CXPUDriver
import Synchronization
import XPUPTX

/// One simulated GPU: fixed attributes, device-wide memory, and its primary context.
final class Device: Sendable {
    /// The compute capability every simulated device reports, as fatbinaries number it (90 for
    /// 9.0): a fatbinary's PTX for an architecture above it is not run.
    static let computeCapability = 90

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
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: Int32(Device.computeCapability / 10)
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: Int32(Device.computeCapability % 10)
        case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED: 1
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: 228 * 1024
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: 65536
        case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: 0
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: 227 * 1024
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: 32
        case CUdevice_attribute(rawValue: 157): Int32(smCount)  // multiprocessors of its one locality domain
        default: Device.fixedAttributes[attribute.rawValue]
        }
    }

    /// The rest of CUDA 13's device attributes, by value: one coherent profile of a compute
    /// capability 9.0 device (the texture and surface limits of that generation), with every
    /// feature the simulated device does not implement reported absent (managed and pageable
    /// memory, host registration, virtual memory management, memory pools, cooperative and
    /// cluster launches, stream memory operations, IPC, interop), so that a program asks for
    /// none of them. 139 is not named in cuda.h, but the runtime asks for it at start-up.
    static let fixedAttributes: [UInt32: Int32] = [
        21: 131_072, 22: 131_072, 23: 65_536, 24: 16_384, 25: 16_384, 26: 16_384,  // textures 1D, 2D, 3D
        27: 32_768, 28: 32_768, 29: 2_048, 30: 512,  // 2D layered textures, surface alignment
        35: 0,  // TCC driver
        42: 32_768, 43: 2_048, 44: 1, 45: 32_768, 46: 32_768,  // 1D layered, 2D gather
        47: 8_192, 48: 8_192, 49: 32_768, 51: 32,  // 3D alternate, texture pitch alignment
        52: 32_768, 53: 32_768, 54: 2_046,  // cubemaps
        55: 32_768, 56: 131_072, 57: 65_536, 58: 16_384, 59: 16_384, 60: 16_384,  // surfaces
        61: 32_768, 62: 2_048, 63: 32_768, 64: 32_768, 65: 2_048, 66: 32_768, 67: 32_768, 68: 2_046,
        69: 268_435_456, 70: 131_072, 71: 65_000, 72: 2_097_120, 73: 32_768, 74: 32_768, 77: 32_768,
        79: 1, 80: 1,  // global and local L1 caches
        84: 0, 85: 0, 86: 0, 87: 2,  // one board; no host-native atomics; single:double = 2
        88: 0, 89: 0, 90: 1, 91: 0,  // pageable and concurrent managed access; preemption
        92: 0, 93: 0, 94: 0, 95: 0, 96: 0,  // stream memory operations; cooperative launches
        98: 0, 99: 0, 100: 0, 101: 0, 102: 0, 103: 0, 104: 0, 105: 0,  // host registration, VMM, handles
        107: 0, 108: 0, 109: 0, 110: 0, 111: 1_024,  // compression, persisting L2, reserved shared memory
        112: 0, 113: 0, 114: 0, 115: 0, 116: 0, 117: 0, 118: 0, 119: 0,  // sparse arrays, pools, RDMA
        120: 0, 121: 0, 122: 0, 123: 0, 124: 0, 125: 0, 126: 1, 127: 0, 128: 0, 129: 0,
        130: 0, 131: -1, 132: 0, 133: 0, 134: -1, 135: 0, 136: 0, 137: 0, 138: 0, 139: 0, 140: 0,
        141: 0, 142: 0, 143: 0, 144: 0, 145: 0, 146: 0, 147: 0, 148: 0, 149: 1, 150: 0,
        151: 0, 152: 0, 153: 0, 154: 0, 155: 0, 156: 0, 158: 0, 159: 0, 160: 0, 161: 0,
    ]
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

/// CUDA 13.5: the toolkit of the wheels this project builds and tests with (nvidia-cuda-nvcc,
/// nvidia-nvvm), so PTX their compilers emit is PTX this driver claims to load; a driver older than
/// the toolkit makes numba-cuda warn that its PTX may not load.
@c @implementation public func cuDriverGetVersion(_ driverVersion: UnsafeMutablePointer<Int32>?) -> CUresult {
    guard let driverVersion else { return CUDA_ERROR_INVALID_VALUE }
    driverVersion.pointee = 13050
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
