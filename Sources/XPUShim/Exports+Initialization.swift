#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPUShimSupport
import XPUProtocol
import XPUTransport

/// cuInit opens the sessions: the shim connects lazily here, never at load time, because
/// LD_PRELOAD puts it into every child process of the application. Each lane initializes its
/// server's driver and learns how many devices it has in one round trip; the device list follows.
@c @implementation public func cuInit(_ Flags: UInt32) -> CUresult {
    xpu_install_fork_handlers()
    let opened = Session.ensureOpen()
    guard opened == CUDA_SUCCESS else { return opened }
    for lane in Lanes.all {
        let status: CUresult
        do {
            status = try lane.locked { lane throws(ShimFailure) in
                let replies = try lane.exchange(
                    [
                        (CallID.initialize, InitializeRequest(flags: Flags).encoded, false),
                        (CallID.cuDeviceGetCount, CuDeviceGetCountRequest().encoded, false),
                    ], context: 0)
                guard replies[0].0 == CUDA_SUCCESS else { return replies[0].0 }
                guard replies[1].0 == CUDA_SUCCESS else { return replies[1].0 }
                guard let count = try? CuDeviceGetCountReply(decoding: replies[1].1) else {
                    throw ShimFailure.lost(lane, "malformed reply to cuDeviceGetCount")
                }
                lane.devices = lane.placedDevice.map { [$0] } ?? Array(0..<max(count.count, 0))
                lane.initialized = true
                return CUDA_SUCCESS
            }
        } catch {
            return error.status
        }
        guard status == CUDA_SUCCESS else { return status }
    }
    let visibility = getenv("CUDA_VISIBLE_DEVICES").map { String(cString: $0) }
    var uuids: [[UInt8]]?
    if DeviceList.namesUUIDs(visibility) {
        // Devices named by UUID: every device's, one round trip per server.
        var all: [[UInt8]] = []
        for lane in Lanes.all {
            do {
                let fetched: [[UInt8]]? = try lane.locked { lane throws(ShimFailure) in
                    let replies = try lane.exchange(
                        lane.devices.map { (CallID.cuDeviceGetUuid_v2, CuDeviceGetUuid_v2Request(dev: $0).encoded, false) },
                        context: 0)
                    return replies.allSatisfy({ $0.0 == CUDA_SUCCESS })
                        ? replies.compactMap { try? CuDeviceGetUuid_v2Reply(decoding: $0.1).uuid } : nil
                }
                guard let fetched, fetched.count == lane.devices.count else { return CUDA_ERROR_INVALID_DEVICE }
                all += fetched
            } catch {
                return error.status
            }
        }
        uuids = all
    }
    let list = DeviceList(lanes: Lanes.all, visibility: visibility, uuids: uuids)
    DeviceList.publish(list)
    if Lanes.all.count > 1 || visibility != nil {
        ShimLog.log(.info, "\(list.visible.count) of \(list.all.count) devices visible on \(Lanes.all.count) servers")
    }
    // As CUDA does when CUDA_VISIBLE_DEVICES hides every device.
    return list.visible.isEmpty ? CUDA_ERROR_NO_DEVICE : CUDA_SUCCESS
}

/// Answered from the first server's handshake, so it works before cuInit as on a real driver.
@c @implementation public func cuDriverGetVersion(_ driverVersion: UnsafeMutablePointer<Int32>?) -> CUresult {
    guard let driverVersion else { return CUDA_ERROR_INVALID_VALUE }
    xpu_install_fork_handlers()
    let opened = Session.ensureOpen()
    guard opened == CUDA_SUCCESS else { return opened }
    driverVersion.pointee = Lanes.all[0].locked { $0.driverVersion }
    return CUDA_SUCCESS
}

/// The application's device count and devices, from the device list (answered locally).
@c @implementation public func cuDeviceGetCount(_ count: UnsafeMutablePointer<Int32>?) -> CUresult {
    guard let count else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireInitialized() { return refusal }
    count.pointee = Int32(DeviceList.current.visible.count)
    return CUDA_SUCCESS
}

@c @implementation public func cuDeviceGet(_ device: UnsafeMutablePointer<CUdevice>?, _ ordinal: Int32) -> CUresult {
    guard let device else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireInitialized() { return refusal }
    guard DeviceList.current.entry(ordinal) != nil else { return CUDA_ERROR_INVALID_DEVICE }
    device.pointee = ordinal
    return CUDA_SUCCESS
}

enum Session {
    /// Opens every lane's session unless this process (not a forked parent) already has it. The
    /// pool places the lanes that need a server first, all in one request.
    static func ensureOpen() -> CUresult {
        guard !Lanes.all.isEmpty else {
            ShimLog.log(.error, Lanes.configuration.problem ?? "no server configured")
            return CUDA_ERROR_INVALID_VALUE
        }
        var closed: [Lane] = []
        for lane in Lanes.all {
            let state = lane.locked { lane -> CUresult? in
                if (try? lane.openChannel()) != nil { return CUDA_SUCCESS }
                if case .lost(let status) = lane.connection { return status }
                return nil
            }
            switch state {
            case CUDA_SUCCESS?: continue
            case let status?: return status
            case nil: closed.append(lane)
            }
        }
        guard !closed.isEmpty else { return CUDA_SUCCESS }
        if Lanes.pooled {
            let slice = environment("XPU_SLICE")
            switch PoolClient.place(slice: slice, count: closed.count, client: "\(processName()) pid \(getpid())", family: .cuda, log: ShimLog.output) {
            case .placed(let placements):
                for (lane, placement) in zip(closed, placements) {
                    lane.locked { lane in
                        lane.server = placement.server
                        lane.slice = placement.slice
                        lane.placedDevice = placement.device
                    }
                }
            case .failed(let status):
                return status
            }
        }
        for lane in closed {
            let status = lane.locked { lane in open(lane) }
            guard status == CUDA_SUCCESS else { return status }
        }
        return CUDA_SUCCESS
    }

    /// Connects to the lane's server and shakes hands (lock held). Failures are logged and leave
    /// the lane uninitialized, so the application sees a machine with no device
    /// (CUDA_ERROR_NO_DEVICE) and may retry.
    static func open(_ lane: Lane) -> CUresult {
        guard let endpoint = lane.server else { return CUDA_ERROR_NO_DEVICE }
        guard let token = tenantToken() else { return CUDA_ERROR_NOT_PERMITTED }
        let channel: FrameChannel
        do {
            let tls = ClientTLSSettings { name in getenv(name).map { String(cString: $0) } }
            // A server that vanishes fails the call waiting for it within the peer timeout
            // (CUDA_ERROR_DEVICE_UNAVAILABLE), instead of blocking it for ever.
            let peerTimeout = try ServerAddress.peerTimeout(environment: getenv("XPU_PEER_TIMEOUT").map { String(cString: $0) }).get()
            let transport = try endpoint.connect(tls: tls, peerTimeout: peerTimeout)
            transport.setBusyPoll(Lane.busyPoll)
            channel = FrameChannel(transport: transport)
        } catch {
            ShimLog.log(.error, "cannot reach xpu-remote-server at \(endpoint): \(error)")
            return CUDA_ERROR_NO_DEVICE
        }
        var offered = Features.supported
        if LZ4Codec.shared == nil || environment("XPU_COMPRESSION") == "off" { offered.remove(.lz4) }
        let hello = Hello(
            features: offered.rawValue, clientCUDAVersion: 13000, slice: lane.slice,
            client: "\(processName()) pid \(getpid())", token: token)
        do {
            try channel.send(FrameHeader(length: 0, call: CallID.handshake.rawValue, sequence: 0), payload: hello.encoded)
            let (header, payload) = try channel.receive()
            let welcome = try Welcome(decoding: payload)
            guard header.status == CUDA_SUCCESS.rawValue else {
                ShimLog.log(.error, "xpu-remote-server at \(endpoint) refused the session: \(welcome.reason)")
                return CUresult(rawValue: header.status)
            }
            ShimLog.log(.info, "session \(welcome.session) open on \(endpoint)")
            lane.driverVersion = welcome.driverVersion
            // Streams and events are named from this session's own range (its id in bits
            // 32-55), as the server names contexts and modules: no two sessions share a handle.
            lane.nextClientHandle = 1 << 63 | (welcome.session & 0xFF_FFFF) << 32
            lane.negotiatedCompression = Features(rawValue: welcome.features).contains(.lz4)
            lane.compression = lane.negotiatedCompression
            lane.moduleCache = Features(rawValue: welcome.features).contains(.moduleCache)
        } catch {
            ShimLog.log(.error, "handshake with \(endpoint) failed: \(error)")
            return CUDA_ERROR_NO_DEVICE
        }
        let (driverVersion, compression, moduleCache) = (lane.driverVersion, lane.negotiatedCompression, lane.moduleCache)
        lane.forgetSession()
        (lane.driverVersion, lane.negotiatedCompression, lane.compression) = (driverVersion, compression, compression)
        lane.moduleCache = moduleCache
        lane.sequence = 0
        lane.connection = .open(channel, generation: xpu_fork_generation())
        return CUDA_SUCCESS
    }

    /// The tenant's token: `XPU_TOKEN`, or else the first line of the file `XPU_TOKEN_FILE` names
    /// (a Secret mounted into a container: the token is then in no environment). Empty when
    /// neither is set; nil, logged, when the file cannot be read.
    static func tenantToken() -> String? {
        let direct = environment("XPU_TOKEN")
        let path = environment("XPU_TOKEN_FILE")
        guard direct.isEmpty, !path.isEmpty else { return direct }
        guard let file = fopen(path, "r") else {
            ShimLog.log(.error, "cannot read XPU_TOKEN_FILE \(path): \(String(cString: strerror(errno)))")
            return nil
        }
        defer { fclose(file) }
        var buffer = [UInt8](repeating: 0, count: 4097)
        let count = fread(&buffer, 1, buffer.count, file)
        guard count < buffer.count else {
            ShimLog.log(.error, "XPU_TOKEN_FILE \(path) is longer than 4096 bytes")
            return nil
        }
        let line = buffer[..<count].prefix { $0 != 10 && $0 != 13 }
        return String(decoding: line, as: UTF8.self)
    }

    static func environment(_ name: String) -> String {
        getenv(name).map { String(cString: $0) } ?? ""
    }

    static func processName() -> String {
        guard let file = fopen("/proc/self/comm", "r") else { return "?" }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return "?" }
        let bytes = buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Turns LZ4 for bulk data on or off for the rest of the sessions (it stays off where a session did
/// not negotiate it); returns whether it is now on everywhere. For benchmarks that compare both in
/// one run.
@c(xpu_shim_set_compression) public func xpuShimSetCompression(_ enabled: Int32) -> Int32 {
    var everywhere = !Lanes.all.isEmpty
    for lane in Lanes.all {
        let on = lane.locked { lane in
            lane.compression = enabled != 0 && lane.negotiatedCompression
            return lane.compression
        }
        everywhere = everywhere && on
    }
    return everywhere ? 1 : 0
}
