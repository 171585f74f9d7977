#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPUNVML
import CXPUShimSupport
import XPUProtocol
import XPUTransport

/// The management API (NVML) the shim serves as libnvidia-ml.so.1, over the same sessions and lanes
/// as the driver API. What it reports is each session's view of each device: its slice (the
/// server's `Session.sliceView`), consistent with what cuMemGetInfo and cuDeviceTotalMem say. The
/// devices are those of every lane, lane by lane, as the driver API's device list before
/// CUDA_VISIBLE_DEVICES (which NVML ignores).
///
/// nvmlInit opens the session as cuInit does (a monitoring tool never calls cuInit) and sends
/// `ManagementOpen`; the facts that never change (`DeviceFacts`) are kept for the session, and each
/// device's `DeviceView` (memory, utilization, processes, sensors) is kept for
/// `XPU_NVML_CACHE_MS` (default 100 ms): every query a poller makes within that time is answered
/// from one reply, so a 10 Hz poller costs the server at most 10 requests a second per device.
///
/// Not `Shim.perform`: that one requires cuInit, and NVML must work in processes that never call
/// it. Every field is guarded by the first lane's lock (queries of devices on other lanes take
/// their lane's lock inside it, in ascending order).
enum Management {
    struct State {
        /// nvmlInit calls not yet matched by nvmlShutdown.
        var references = 0
        /// The session the state belongs to: the first lane's channel, in this process (not a forked parent).
        var channel: ObjectIdentifier?
        var generation: UInt64 = 0
        var driverVersion = ""
        /// Every lane's devices, by NVML index.
        var devices: [DeviceList.Entry] = []

        var deviceCount: Int32 { Int32(devices.count) }
        var facts: [Int32: DeviceFactsReply] = [:]
        var views: [Int32: (time: UInt64, view: DeviceViewReply)] = [:]
    }

    nonisolated(unsafe) static var state = State()
    /// One handle per device index, allocated once and never freed (callers may keep them).
    nonisolated(unsafe) static var handles: [UnsafeMutableRawPointer] = []

    static let viewLifetimeNanoseconds: UInt64 = {
        guard let raw = getenv("XPU_NVML_CACHE_MS"), let milliseconds = UInt64(String(cString: raw)) else {
            return 100_000_000
        }
        return milliseconds * 1_000_000
    }()

    /// Runs `body` with the first lane's lock held when NVML is initialized in this session.
    static func initialized<T>(_ body: (Lane) throws(ManagementFailure) -> T) -> Result<T, ManagementFailure> {
        guard let first = Lanes.all.first else { return .failure(ManagementFailure(NVML_ERROR_UNINITIALIZED)) }
        return first.locked { lane in
            do throws(ManagementFailure) {
                guard state.references > 0, state.generation == xpu_fork_generation(),
                    case .open(let channel, _) = lane.connection, ObjectIdentifier(channel) == state.channel
                else {
                    if case .lost = lane.connection, state.references > 0 { throw ManagementFailure(NVML_ERROR_GPU_IS_LOST) }
                    throw ManagementFailure(NVML_ERROR_UNINITIALIZED)
                }
                return .success(try body(lane))
            } catch {
                return .failure(error)
            }
        }
    }

    /// One round trip on `lane` (taking its lock).
    static func exchange<R: CallRequest>(_ request: R, lane: Lane) throws(ManagementFailure) -> R.Reply {
        let outcome: (CUresult, [UInt8])
        do {
            outcome = try lane.locked { lane throws(ShimFailure) in try lane.exchange([(R.call, request.encoded, false)], context: 0)[0] }
        } catch {
            throw ManagementFailure(cuda: error.status)
        }
        guard outcome.0 == CUDA_SUCCESS else { throw ManagementFailure(cuda: outcome.0) }
        do {
            return try R.Reply(decoding: outcome.1)
        } catch {
            throw ManagementFailure(cuda: ShimFailure.lost(lane, "malformed reply to \(R.call)").status)
        }
    }

    /// nvmlInit: opens the sessions unless this process has them, then the management API on each.
    static func initialize(flags: UInt32) -> nvmlReturn_t {
        xpu_install_fork_handlers()
        guard let first = Lanes.all.first else {
            ShimLog.log(.warn, "nvmlInit: \(Lanes.configuration.problem ?? "no server"): NVML_ERROR_DRIVER_NOT_LOADED")
            return NVML_ERROR_DRIVER_NOT_LOADED
        }
        return first.locked { lane in
            if state.references > 0, state.generation == xpu_fork_generation(),
                case .open(let channel, _) = lane.connection, ObjectIdentifier(channel) == state.channel
            {
                state.references += 1
                return NVML_SUCCESS
            }
            let opened = Session.ensureOpen()
            guard opened == CUDA_SUCCESS, case .open(let channel, _) = lane.connection else {
                ShimLog.log(.warn, "nvmlInit: no session with xpu-remote-server (\(opened.rawValue)): NVML_ERROR_DRIVER_NOT_LOADED")
                return opened == CUDA_ERROR_DEVICE_UNAVAILABLE ? NVML_ERROR_GPU_IS_LOST : NVML_ERROR_DRIVER_NOT_LOADED
            }
            do throws(ManagementFailure) {
                var devices: [DeviceList.Entry] = []
                var driverVersion = ""
                for other in Lanes.all {
                    let reply = try exchange(ManagementOpenRequest(flags: flags), lane: other)
                    if other === lane { driverVersion = reply.driverVersion }
                    let placed = other.locked { $0.placedDevice }
                    let remotes = placed.map { [$0] } ?? Array(0..<max(reply.deviceCount, 0))
                    devices += remotes.map { DeviceList.Entry(lane: other.index, remote: $0) }
                }
                state = State(
                    references: 1, channel: ObjectIdentifier(channel), generation: xpu_fork_generation(),
                    driverVersion: driverVersion, devices: devices)
                while handles.count < devices.count {
                    handles.append(UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16))
                }
                return NVML_SUCCESS
            } catch {
                return error.status
            }
        }
    }

    static func shutdown() -> nvmlReturn_t {
        guard let first = Lanes.all.first else { return NVML_ERROR_UNINITIALIZED }
        return first.locked { lane in
            guard state.references > 0, state.generation == xpu_fork_generation() else { return NVML_ERROR_UNINITIALIZED }
            state.references -= 1
            if state.references == 0 { state = State() }
            return NVML_SUCCESS
        }
    }

    /// The device index behind a handle (lock held).
    static func index(of device: nvmlDevice_t?) throws(ManagementFailure) -> Int32 {
        guard let device, let index = handles.firstIndex(where: { OpaquePointer($0) == device }),
            index < Int(state.deviceCount)
        else { throw ManagementFailure(NVML_ERROR_INVALID_ARGUMENT) }
        return Int32(index)
    }

    static func handle(_ index: Int32) -> nvmlDevice_t { OpaquePointer(handles[Int(index)]) }

    /// The facts of a device, asked once per session (lock held).
    static func facts(_ index: Int32) throws(ManagementFailure) -> DeviceFactsReply {
        if let facts = state.facts[index] { return facts }
        let device = state.devices[Int(index)]
        let facts = try exchange(DeviceFactsRequest(device: device.remote), lane: Lanes.all[device.lane])
        state.facts[index] = facts
        return facts
    }

    /// The session's view of a device, at most `viewLifetimeNanoseconds` old (lock held).
    static func view(_ index: Int32) throws(ManagementFailure) -> DeviceViewReply {
        let now = monotonicNanoseconds()
        if let cached = state.views[index], now &- cached.time < viewLifetimeNanoseconds { return cached.view }
        let device = state.devices[Int(index)]
        let view = try exchange(DeviceViewRequest(device: device.remote), lane: Lanes.all[device.lane])
        state.views[index] = (now, view)
        return view
    }

    /// A device query: the handle resolved, NVML initialized, the lock held.
    static func query(_ device: nvmlDevice_t?, _ body: (Int32) throws(ManagementFailure) -> nvmlReturn_t) -> nvmlReturn_t {
        let result = initialized { _ throws(ManagementFailure) in try body(try index(of: device)) }
        switch result {
        case .success(let status): return status
        case .failure(let failure): return failure.status
        }
    }

    /// Copies a string into a caller's buffer of `length` bytes with its NUL, or answers
    /// NVML_ERROR_INSUFFICIENT_SIZE as NVML does when it does not fit.
    static func store(_ text: String, to buffer: UnsafeMutablePointer<CChar>?, length: UInt32) -> nvmlReturn_t {
        guard let buffer else { return NVML_ERROR_INVALID_ARGUMENT }
        let bytes = Array(text.utf8)
        guard bytes.count < Int(length) else { return NVML_ERROR_INSUFFICIENT_SIZE }
        for (offset, byte) in bytes.enumerated() { buffer[offset] = CChar(bitPattern: byte) }
        buffer[bytes.count] = 0
        return NVML_SUCCESS
    }

    /// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as nvidia-smi prints the driver's UUID.
    static func uuidString(_ bytes: [UInt8]) -> String {
        let hex = bytes.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }
        var text = "GPU-"
        for (offset, digits) in hex.enumerated() {
            if [4, 6, 8, 10].contains(offset) { text += "-" }
            text += digits
        }
        return text
    }

    /// "00000000:10:00.0" (or the legacy "0000:10:00.0").
    static func busID(_ facts: DeviceFactsReply, legacy: Bool) -> String {
        func hex(_ value: UInt32, _ width: Int) -> String {
            let digits = String(value, radix: 16, uppercase: true)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(hex(facts.pciDomain, legacy ? 4 : 8)):\(hex(facts.pciBus, 2)):\(hex(facts.pciDevice, 2)).0"
    }

    /// Domain, bus and device of a PCI bus id in any of NVML's spellings ("0000:10:00.0",
    /// "00000000:10:00.0", "10:00.0", any case).
    static func parseBusID(_ text: String) -> (domain: UInt32, bus: UInt32, device: UInt32)? {
        let fields = text.split(separator: ":").map(String.init)
        guard fields.count == 2 || fields.count == 3, let last = fields.last else { return nil }
        let deviceFunction = last.split(separator: ".")
        guard let device = deviceFunction.first.flatMap({ UInt32($0, radix: 16) }),
            let bus = UInt32(fields[fields.count - 2], radix: 16)
        else { return nil }
        let domain = fields.count == 3 ? UInt32(fields[0], radix: 16) : 0
        guard let domain else { return nil }
        return (domain, bus, device)
    }
}

/// A management call that ends with an NVML status.
struct ManagementFailure: Error {
    var status: nvmlReturn_t

    init(_ status: nvmlReturn_t) { self.status = status }

    /// The NVML status for a driver status from the lane or the server.
    init(cuda status: CUresult) {
        switch status {
        case CUDA_ERROR_DEVICE_UNAVAILABLE: self.status = NVML_ERROR_GPU_IS_LOST
        case CUDA_ERROR_NOT_INITIALIZED: self.status = NVML_ERROR_UNINITIALIZED
        case CUDA_ERROR_INVALID_DEVICE, CUDA_ERROR_INVALID_VALUE: self.status = NVML_ERROR_INVALID_ARGUMENT
        case CUDA_ERROR_NO_DEVICE: self.status = NVML_ERROR_DRIVER_NOT_LOADED
        case CUDA_ERROR_NOT_SUPPORTED: self.status = NVML_ERROR_NOT_SUPPORTED
        default: self.status = NVML_ERROR_UNKNOWN
        }
    }
}

/// Every NVML entry point the shim does not serve calls this (generated nvml_unsupported.c).
/// It answers NVML_ERROR_NOT_SUPPORTED and logs each name once.
@c(xpu_nvml_unsupported) public func xpuNVMLUnsupported(_ name: UnsafePointer<CChar>?) -> Int32 {
    let symbol = name.map { String(cString: $0) } ?? "?"
    xpu_registry_lock()
    let first = UnsupportedCalls.seen.insert(symbol).inserted
    xpu_registry_unlock()
    if first { ShimLog.log(.warn, "\(symbol) is not supported by xpu-remote yet: returning NVML_ERROR_NOT_SUPPORTED") }
    return Int32(NVML_ERROR_NOT_SUPPORTED.rawValue)
}
