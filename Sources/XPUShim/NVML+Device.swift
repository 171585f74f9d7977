import CXPUNVML
import XPUProtocol

// NVML: what a device is (DeviceFacts, asked once per session) and what the session's slice of it
// is doing (DeviceView, kept for XPU_NVML_CACHE_MS).

@c @implementation public func nvmlDeviceGetName(_ device: nvmlDevice_t?, _ name: UnsafeMutablePointer<CChar>?, _ length: UInt32) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        Management.store(try Management.facts(index).name, to: name, length: length)
    }
}

@c @implementation public func nvmlDeviceGetUUID(_ device: nvmlDevice_t?, _ uuid: UnsafeMutablePointer<CChar>?, _ length: UInt32) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        Management.store(Management.uuidString(try Management.facts(index).uuid), to: uuid, length: length)
    }
}

/// The board serial: the simulated device has one; a real GPU's is not visible through the driver.
@c @implementation public func nvmlDeviceGetSerial(_ device: nvmlDevice_t?, _ serial: UnsafeMutablePointer<CChar>?, _ length: UInt32) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        let text = try Management.facts(index).serial
        guard !text.isEmpty else { throw ManagementFailure(NVML_ERROR_NOT_SUPPORTED) }
        return Management.store(text, to: serial, length: length)
    }
}

/// The v1 and v2 entry points were written for shorter structs: v1 ends after pciDeviceId (32
/// bytes), v2 after pciSubSystemId (36 bytes). Only v3 fills `busId`.
@c @implementation public func nvmlDeviceGetPciInfo(_ device: nvmlDevice_t?, _ pci: UnsafeMutablePointer<nvmlPciInfo_t>?) -> nvmlReturn_t {
    Management.pciInfo(device, pci, bytes: 32)
}

@c @implementation public func nvmlDeviceGetPciInfo_v2(_ device: nvmlDevice_t?, _ pci: UnsafeMutablePointer<nvmlPciInfo_t>?) -> nvmlReturn_t {
    Management.pciInfo(device, pci, bytes: 36)
}

@c @implementation public func nvmlDeviceGetPciInfo_v3(_ device: nvmlDevice_t?, _ pci: UnsafeMutablePointer<nvmlPciInfo_t>?) -> nvmlReturn_t {
    Management.pciInfo(device, pci, bytes: MemoryLayout<nvmlPciInfo_t>.size)
}

@c @implementation public func nvmlDeviceGetCudaComputeCapability(_ device: nvmlDevice_t?, _ major: UnsafeMutablePointer<Int32>?, _ minor: UnsafeMutablePointer<Int32>?) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        guard let major, let minor else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        let facts = try Management.facts(index)
        major.pointee = facts.computeCapabilityMajor
        minor.pointee = facts.computeCapabilityMinor
        return NVML_SUCCESS
    }
}

@c @implementation public func nvmlDeviceGetComputeMode(_ device: nvmlDevice_t?, _ mode: UnsafeMutablePointer<nvmlComputeMode_t>?) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        guard let mode else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        mode.pointee = nvmlComputeMode_t(rawValue: try Management.facts(index).computeMode)
        return NVML_SUCCESS
    }
}

/// MIG is never enabled on a remote slice (slices are the server's business).
@c @implementation public func nvmlDeviceGetMigMode(_ device: nvmlDevice_t?, _ currentMode: UnsafeMutablePointer<UInt32>?, _ pendingMode: UnsafeMutablePointer<UInt32>?) -> nvmlReturn_t {
    Management.query(device) { _ throws(ManagementFailure) in
        guard let currentMode, let pendingMode else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        currentMode.pointee = UInt32(NVML_DEVICE_MIG_DISABLE)
        pendingMode.pointee = UInt32(NVML_DEVICE_MIG_DISABLE)
        return NVML_SUCCESS
    }
}

@c @implementation public func nvmlDeviceGetClockInfo(_ device: nvmlDevice_t?, _ type: nvmlClockType_t, _ clock: UnsafeMutablePointer<UInt32>?) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        let view = try Management.view(index)
        return try Management.clock(type, graphics: view.graphicsClockMHz, memory: view.memoryClockMHz, to: clock)
    }
}

@c @implementation public func nvmlDeviceGetMaxClockInfo(_ device: nvmlDevice_t?, _ type: nvmlClockType_t, _ clock: UnsafeMutablePointer<UInt32>?) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        let facts = try Management.facts(index)
        return try Management.clock(type, graphics: facts.maxGraphicsClockMHz, memory: facts.maxMemoryClockMHz, to: clock)
    }
}

@c @implementation public func nvmlDeviceGetPowerManagementLimit(_ device: nvmlDevice_t?, _ limit: UnsafeMutablePointer<UInt32>?) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        try Management.measured(try Management.facts(index).powerLimitMilliwatts, to: limit)
    }
}

@c @implementation public func nvmlDeviceGetEnforcedPowerLimit(_ device: nvmlDevice_t?, _ limit: UnsafeMutablePointer<UInt32>?) -> nvmlReturn_t {
    nvmlDeviceGetPowerManagementLimit(device, limit)
}

// What the slice is doing.

/// Total is the slice's memory, used what the session's allocations hold, free the rest.
@c @implementation public func nvmlDeviceGetMemoryInfo(_ device: nvmlDevice_t?, _ memory: UnsafeMutablePointer<nvmlMemory_t>?) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        guard let memory else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        let view = try Management.view(index)
        memory.pointee = nvmlMemory_t(
            total: view.memoryTotal, free: view.memoryTotal - min(view.memoryUsed, view.memoryTotal), used: view.memoryUsed)
        return NVML_SUCCESS
    }
}

@c @implementation public func nvmlDeviceGetMemoryInfo_v2(_ device: nvmlDevice_t?, _ memory: UnsafeMutablePointer<nvmlMemory_v2_t>?) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        guard let memory else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        guard memory.pointee.version == Management.memoryV2Version else {
            throw ManagementFailure(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        }
        let view = try Management.view(index)
        memory.pointee = nvmlMemory_v2_t(
            version: Management.memoryV2Version, total: view.memoryTotal, reserved: 0,
            free: view.memoryTotal - min(view.memoryUsed, view.memoryTotal), used: view.memoryUsed)
        return NVML_SUCCESS
    }
}

/// gpu: the share of the last second the session's kernels ran; memory: not measured (0).
@c @implementation public func nvmlDeviceGetUtilizationRates(_ device: nvmlDevice_t?, _ utilization: UnsafeMutablePointer<nvmlUtilization_t>?) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        guard let utilization else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        let view = try Management.view(index)
        utilization.pointee = nvmlUtilization_t(gpu: view.utilizationGPU, memory: view.utilizationMemory)
        return NVML_SUCCESS
    }
}

@c @implementation public func nvmlDeviceGetTemperature(_ device: nvmlDevice_t?, _ sensorType: nvmlTemperatureSensors_t, _ temp: UnsafeMutablePointer<UInt32>?) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        guard sensorType == NVML_TEMPERATURE_GPU else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        return try Management.measured(try Management.view(index).temperatureCelsius, to: temp)
    }
}

@c @implementation public func nvmlDeviceGetPowerUsage(_ device: nvmlDevice_t?, _ power: UnsafeMutablePointer<UInt32>?) -> nvmlReturn_t {
    Management.query(device) { index throws(ManagementFailure) in
        try Management.measured(try Management.view(index).powerUsageMilliwatts, to: power)
    }
}

// Running processes: the session's own client process while it holds a context. Graphics
// processes: none (a remote slice runs no display work).

@c @implementation public func nvmlDeviceGetComputeRunningProcesses(_ device: nvmlDevice_t?, _ infoCount: UnsafeMutablePointer<UInt32>?, _ infos: UnsafeMutablePointer<nvmlProcessInfo_v1_t>?) -> nvmlReturn_t {
    Management.processes(device, compute: true, infoCount) { index, process in
        infos?[index] = nvmlProcessInfo_v1_t(pid: process.pid, usedGpuMemory: process.usedMemory)
    }
}

@c @implementation public func nvmlDeviceGetComputeRunningProcesses_v2(_ device: nvmlDevice_t?, _ infoCount: UnsafeMutablePointer<UInt32>?, _ infos: UnsafeMutablePointer<nvmlProcessInfo_v2_t>?) -> nvmlReturn_t {
    Management.processes(device, compute: true, infoCount) { index, process in infos?[index] = Management.info(process) }
}

@c @implementation public func nvmlDeviceGetComputeRunningProcesses_v3(_ device: nvmlDevice_t?, _ infoCount: UnsafeMutablePointer<UInt32>?, _ infos: UnsafeMutablePointer<nvmlProcessInfo_t>?) -> nvmlReturn_t {
    Management.processes(device, compute: true, infoCount) { index, process in infos?[index] = Management.info(process) }
}

@c @implementation public func nvmlDeviceGetGraphicsRunningProcesses(_ device: nvmlDevice_t?, _ infoCount: UnsafeMutablePointer<UInt32>?, _ infos: UnsafeMutablePointer<nvmlProcessInfo_v1_t>?) -> nvmlReturn_t {
    Management.processes(device, compute: false, infoCount) { _, _ in }
}

@c @implementation public func nvmlDeviceGetGraphicsRunningProcesses_v2(_ device: nvmlDevice_t?, _ infoCount: UnsafeMutablePointer<UInt32>?, _ infos: UnsafeMutablePointer<nvmlProcessInfo_v2_t>?) -> nvmlReturn_t {
    Management.processes(device, compute: false, infoCount) { _, _ in }
}

@c @implementation public func nvmlDeviceGetGraphicsRunningProcesses_v3(_ device: nvmlDevice_t?, _ infoCount: UnsafeMutablePointer<UInt32>?, _ infos: UnsafeMutablePointer<nvmlProcessInfo_t>?) -> nvmlReturn_t {
    Management.processes(device, compute: false, infoCount) { _, _ in }
}

extension Management {
    /// nvmlMemory_v2: the struct's size with the version (2) in the top byte.
    static let memoryV2Version = UInt32(MemoryLayout<nvmlMemory_v2_t>.size) | (2 << 24)

    static func pciInfo(_ device: nvmlDevice_t?, _ pci: UnsafeMutablePointer<nvmlPciInfo_t>?, bytes: Int) -> nvmlReturn_t {
        query(device) { index throws(ManagementFailure) in
            guard let pci else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
            let facts = try facts(index)
            var info = nvmlPciInfo_t()
            info.domain = facts.pciDomain
            info.bus = facts.pciBus
            info.device = facts.pciDevice
            info.pciDeviceId = facts.pciDeviceId
            info.pciSubSystemId = facts.pciSubSystemId
            withUnsafeMutableBytes(of: &info.busIdLegacy) { raw in
                for (offset, byte) in busID(facts, legacy: true).utf8.prefix(raw.count - 1).enumerated() { raw[offset] = byte }
            }
            withUnsafeMutableBytes(of: &info.busId) { raw in
                for (offset, byte) in busID(facts, legacy: false).utf8.prefix(raw.count - 1).enumerated() { raw[offset] = byte }
            }
            withUnsafeBytes(of: &info) { source in
                UnsafeMutableRawPointer(pci).copyMemory(from: source.baseAddress!, byteCount: min(bytes, source.count))
            }
            return NVML_SUCCESS
        }
    }

    static func clock(_ type: nvmlClockType_t, graphics: UInt32, memory: UInt32, to clock: UnsafeMutablePointer<UInt32>?) throws(ManagementFailure) -> nvmlReturn_t {
        guard let clock else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        switch type {
        case NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM: return try measured(graphics, to: clock)
        case NVML_CLOCK_MEM: return try measured(memory, to: clock)
        case NVML_CLOCK_VIDEO: throw ManagementFailure(NVML_ERROR_NOT_SUPPORTED)
        default: throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT)
        }
    }

    /// A value the server may not be able to measure (0): NVML_ERROR_NOT_SUPPORTED then.
    static func measured(_ value: UInt32, to destination: UnsafeMutablePointer<UInt32>?) throws(ManagementFailure) -> nvmlReturn_t {
        guard let destination else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        guard value != 0 else { throw ManagementFailure(NVML_ERROR_NOT_SUPPORTED) }
        destination.pointee = value
        return NVML_SUCCESS
    }

    static func info(_ process: DeviceProcess) -> nvmlProcessInfo_t {
        // No MIG: the instance ids are 0xFFFFFFFF, as NVML reports them on a GPU without MIG.
        nvmlProcessInfo_t(pid: process.pid, usedGpuMemory: process.usedMemory, gpuInstanceId: .max, computeInstanceId: .max)
    }

    /// NVML's array protocol: with room for fewer entries than there are, answers
    /// NVML_ERROR_INSUFFICIENT_SIZE and the count needed; otherwise fills the array.
    static func processes(
        _ device: nvmlDevice_t?, compute: Bool, _ infoCount: UnsafeMutablePointer<UInt32>?,
        _ write: (Int, DeviceProcess) -> Void
    ) -> nvmlReturn_t {
        query(device) { index throws(ManagementFailure) in
            guard let infoCount else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
            let processes = compute ? try view(index).processes : []
            guard Int(infoCount.pointee) >= processes.count else {
                infoCount.pointee = UInt32(processes.count)
                return NVML_ERROR_INSUFFICIENT_SIZE
            }
            for (offset, process) in processes.enumerated() { write(offset, process) }
            infoCount.pointee = UInt32(processes.count)
            return NVML_SUCCESS
        }
    }
}
