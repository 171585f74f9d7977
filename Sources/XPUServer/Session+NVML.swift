#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import XPUProtocol

/// What the management API (NVML in the shim) needs the server to remember for a session.
struct ManagementState {
    var meter = DeviceTimeMeter()
    /// The device of each of the session's contexts, asked of the driver once.
    var contextDevices: [UInt64: Int32] = [:]
}

extension Session {
    /// Replays the NVML calls (`# NVML` in proto/cuda-driver.api).
    func dispatchManagement(_ call: CallID, _ reader: inout WireReader) throws(ProtocolError) -> CallOutcome {
        switch call {
        case .managementOpen:
            _ = try decodeManagement(ManagementOpenRequest.self, &reader)
            return perform { () throws(CallFailure) in
                management.meter.enable(now: DeviceTimeMeter.now())
                var count: Int32 = 0
                try check(table.cuDeviceGetCount(&count))
                return ManagementOpenReply(driverVersion: systemDriverVersion(), deviceCount: count)
            }
        case .deviceFacts:
            let request = try decodeManagement(DeviceFactsRequest.self, &reader)
            return perform { () throws(CallFailure) in try deviceFacts(request.device) }
        case .deviceView:
            let request = try decodeManagement(DeviceViewRequest.self, &reader)
            return perform { () throws(CallFailure) in try sliceView(of: request.device) }
        default:
            throw ProtocolError(.unknownCall, "call \(call) is not a management call")
        }
    }

    /// The session's view of a device: what its slice holds and does. Every NVML number about
    /// usage comes from here, so NVML and the driver API agree.
    ///
    /// Total is the slice's memory quota on its device, else the device's memory; used is what
    /// the session's allocations hold on it (module variables and the driver's own overhead not
    /// counted); utilization is the share of the last second the session's kernels ran
    /// (`DeviceTimeMeter`); the processes are the session's own client process.
    func sliceView(of device: Int32) throws(CallFailure) -> DeviceViewReply {
        try checkManagedDevice(device)
        var total = 0
        try check(table.cuDeviceTotalMem_v2(&total, device))
        if let slice, slice.device == device, let quota = slice.memoryQuota { total = Int(quota) }
        let used = memoryHeld(on: device)
        management.meter.harvest(table: table) { handles.lookup(.context, $0) != nil }
        let utilization = management.meter.utilization(now: DeviceTimeMeter.now())
        let sensors = SimulatedSensors(deviceName: try deviceName(device), utilization: utilization)
        let clocks = try maximumClocks(device)
        var processes: [DeviceProcess] = []
        if let pid = clientProcessID, !handles.all(.context).isEmpty {
            processes.append(DeviceProcess(pid: pid, usedMemory: used))
        }
        return DeviceViewReply(
            memoryTotal: UInt64(total), memoryUsed: used, utilizationGPU: utilization, utilizationMemory: 0,
            temperatureCelsius: sensors?.temperatureCelsius ?? 0, powerUsageMilliwatts: sensors?.powerMilliwatts ?? 0,
            graphicsClockMHz: clocks.graphics, memoryClockMHz: clocks.memory, processes: processes)
    }

    /// What does not change while the session lives: identity, PCI location, limits.
    func deviceFacts(_ device: Int32) throws(CallFailure) -> DeviceFactsReply {
        try checkManagedDevice(device)
        let name = try deviceName(device)
        var uuid = CUuuid()
        try check(table.cuDeviceGetUuid_v2(&uuid, device))
        let uuidBytes = withUnsafeBytes(of: uuid) { Array($0.prefix(16)) }
        var major: Int32 = 0
        var minor: Int32 = 0
        try check(table.cuDeviceComputeCapability(&major, &minor, device))
        let clocks = try maximumClocks(device)
        let simulated = SimulatedSensors(deviceName: name, utilization: 0)
        return DeviceFactsReply(
            name: name, uuid: uuidBytes,
            // A real GPU's board serial is not visible through the driver API (NOT_SUPPORTED).
            serial: simulated == nil ? "" : "XPUSIM" + String(repeating: "0", count: 6 - min(6, String(device).count)) + String(device),
            pciDomain: UInt32(bitPattern: try attribute(CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, device)),
            pciBus: UInt32(bitPattern: try attribute(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, device)),
            pciDevice: UInt32(bitPattern: try attribute(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, device)),
            // The PCI device and subsystem ids are not visible through the driver API either.
            pciDeviceId: 0, pciSubSystemId: 0,
            computeCapabilityMajor: major, computeCapabilityMinor: minor,
            computeMode: UInt32(bitPattern: try attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_MODE, device)),
            maxGraphicsClockMHz: clocks.graphics, maxMemoryClockMHz: clocks.memory,
            powerLimitMilliwatts: simulated == nil ? 0 : SimulatedSensors.powerLimitMilliwatts)
    }

    /// Records a start event before a kernel launch on stream `id` when the session is metered.
    func launchWillReplay(stream id: UInt64) -> DeviceTimeMeter.Probe? {
        guard management.meter.enabled else { return nil }
        let stream: CUstream?
        do {
            stream = try handle(.stream, id)
        } catch {
            return nil
        }
        let device = contextDevice(currentContext) ?? 0
        return management.meter.start(context: currentContext, device: device, stream: stream, table: table) {
            handles.lookup(.context, $0) != nil
        }
    }

    /// Adds the device time of the session's finished kernels to its usage (/metrics). Called by
    /// the connection after calls that answer, where the kernels a client waits for have ended.
    func harvestDeviceTime() {
        guard management.meter.hasPending else { return }
        management.meter.harvest(table: table) { handles.lookup(.context, $0) != nil }
        let busy = management.meter.busyByDevice
        usage.meteredDeviceTime.withLock { $0 = busy }
    }

    /// Records the end event after the launch (or recycles the start event if it failed).
    func launchDidReplay(_ probe: DeviceTimeMeter.Probe, status: CUresult) {
        management.meter.finish(probe, launched: status == CUDA_SUCCESS, table: table)
    }

    // MARK: - Helpers

    private func decodeManagement<Request: WireMessage>(_: Request.Type, _ reader: inout WireReader) throws(ProtocolError) -> Request {
        let request = try Request(from: &reader)
        try reader.expectEnd()
        return request
    }

    private func checkManagedDevice(_ device: Int32) throws(CallFailure) {
        var count: Int32 = 0
        try check(table.cuDeviceGetCount(&count))
        guard device >= 0, device < count else { throw CallFailure(CUDA_ERROR_INVALID_DEVICE) }
    }

    private func deviceName(_ device: Int32) throws(CallFailure) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        try check(table.cuDeviceGetName(&buffer, Int32(buffer.count), device))
        return string(fromCBuffer: buffer)
    }

    private func attribute(_ attribute: CUdevice_attribute, _ device: Int32) throws(CallFailure) -> Int32 {
        var value: Int32 = 0
        try check(table.cuDeviceGetAttribute(&value, attribute, device))
        return value
    }

    /// The device's clocks in MHz (the driver reports kHz). The driver API has no current clock,
    /// so the view reports the maximum.
    private func maximumClocks(_ device: Int32) throws(CallFailure) -> (graphics: UInt32, memory: UInt32) {
        let graphics = try attribute(CU_DEVICE_ATTRIBUTE_CLOCK_RATE, device)
        let memory = try attribute(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, device)
        return (UInt32(clamping: graphics / 1000), UInt32(clamping: memory / 1000))
    }

    /// Bytes the session's allocations hold on `device`.
    private func memoryHeld(on device: Int32) -> UInt64 {
        var held: UInt64 = 0
        for allocation in memory.allocations where !allocation.isGlobal {
            if contextDevice(allocation.context) == device { held += allocation.bytes }
        }
        return held
    }

    private func contextDevice(_ context: UInt64) -> Int32? {
        if let device = management.contextDevices[context] { return device }
        guard handles.lookup(.context, context) != nil else { return nil }
        selectContext(context)
        var device: CUdevice = 0
        guard table.cuCtxGetDevice(&device) == CUDA_SUCCESS else { return nil }
        management.contextDevices[context] = device
        return device
    }

    /// The client's process id, from the handshake's `client` ("name pid N").
    var clientProcessID: UInt32? {
        guard let range = client.range(of: " pid ", options: .backwards) else { return nil }
        return UInt32(client[range.upperBound...])
    }

    /// The driver version string NVML reports: the kernel module's version on an NVIDIA node,
    /// the CUDA version the simulated device implements otherwise.
    private func systemDriverVersion() -> String {
        if let version = Self.kernelModuleVersion() { return version }
        var count: Int32 = 0
        if table.cuDeviceGetCount(&count) == CUDA_SUCCESS, count > 0, let name = try? deviceName(0),
            SimulatedSensors(deviceName: name, utilization: 0) != nil
        {
            return "xpu-sim 13.5"
        }
        return ""
    }

    /// "580.65.06" from /proc/driver/nvidia/version, where the NVIDIA kernel module is loaded.
    private static func kernelModuleVersion() -> String? {
        guard let file = fopen("/proc/driver/nvidia/version", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let words = string(fromCBuffer: line).split(separator: " ")
        guard let index = words.firstIndex(of: "Module") ?? words.firstIndex(of: "Kernel"), index + 1 < words.count
        else { return nil }
        let version = words[(index + 1)...].first { $0.first?.isNumber == true }
        return version.map(String.init)
    }
}

/// Sensors of the simulated device: it has no thermals or power rail, so NVML gets a simple
/// model of an H100-class board driven by the session's measured utilization (idle 30 °C and
/// 70 W, +0.5 °C and +6.3 W per percent, limit 700 W). A real GPU's sensors are not visible
/// through the driver API: the view carries 0 and the shim answers NVML_ERROR_NOT_SUPPORTED.
struct SimulatedSensors {
    static let powerLimitMilliwatts: UInt32 = 700_000
    var temperatureCelsius: UInt32
    var powerMilliwatts: UInt32

    init?(deviceName: String, utilization: UInt32) {
        guard deviceName.hasPrefix("xpu-remote Simulated") else { return nil }
        temperatureCelsius = 30 + utilization / 2
        powerMilliwatts = 70_000 + utilization * 6_300
    }
}
