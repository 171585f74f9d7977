#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPUShimSupport
import XPUProtocol
import XPUTransport

/// cuInit opens the session: the shim connects lazily here, never at load time, because
/// LD_PRELOAD puts it into every child process of the application.
@c @implementation public func cuInit(_ Flags: UInt32) -> CUresult {
    xpu_install_fork_handlers()
    let opened = Lane.shared.locked { lane in Session.ensureOpen(lane) }
    guard opened == CUDA_SUCCESS else { return opened }
    let outcome: (CUresult, [UInt8])
    do {
        outcome = try Lane.shared.locked { lane throws(ShimFailure) in
            try lane.exchange([(CallID.initialize, InitializeRequest(flags: Flags).encoded, false)])[0]
        }
    } catch {
        return error.status
    }
    if outcome.0 == CUDA_SUCCESS { Lane.shared.locked { lane in lane.initialized = true } }
    return outcome.0
}

/// Answered from the handshake, so it works before cuInit as on a real driver.
@c @implementation public func cuDriverGetVersion(_ driverVersion: UnsafeMutablePointer<Int32>?) -> CUresult {
    guard let driverVersion else { return CUDA_ERROR_INVALID_VALUE }
    xpu_install_fork_handlers()
    return Lane.shared.locked { lane in
        let opened = Session.ensureOpen(lane)
        if opened == CUDA_SUCCESS { driverVersion.pointee = lane.driverVersion }
        return opened
    }
}

enum Session {
    /// Opens the session unless this process (not a forked parent) already has one. Lock held.
    static func ensureOpen(_ lane: Lane) -> CUresult {
        if (try? lane.openChannel()) != nil { return CUDA_SUCCESS }
        if case .lost(let status) = lane.connection { return status }
        return open(lane)
    }

    /// The server named by XPU_SERVER (default 127.0.0.1:7070): `host:port`, `tcp://host:port`,
    /// `tls://host:port`, `unix:/path` or `rdma://host:port` (proto/SECURITY.md).
    static func serverEndpoint() -> ServerAddress? {
        guard let raw = getenv("XPU_SERVER") else { return .tcp(Endpoint(host: "127.0.0.1", port: 7070)) }
        return ServerAddress(parsing: String(cString: raw))
    }

    /// Connects and shakes hands (lock held). Failures are logged and leave the lane uninitialized,
    /// so the application sees a machine with no device (CUDA_ERROR_NO_DEVICE) and may retry.
    static func open(_ lane: Lane) -> CUresult {
        var slice = environment("XPU_SLICE")
        var placed: ServerAddress?
        if getenv("XPU_SERVER") == nil, getenv("XPU_POOL") != nil {
            switch PoolClient.place(slice: slice, client: "\(processName()) pid \(getpid())") {
            case .placed(let server, let granted):
                placed = server
                slice = granted
            case .failed(let status):
                return status
            }
        }
        guard let endpoint = placed ?? serverEndpoint() else {
            ShimLog.log(
                .error,
                "XPU_SERVER must be host:port, tls://host:port, unix:/path or rdma://host:port, got '\(String(cString: getenv("XPU_SERVER")))'")
            return CUDA_ERROR_INVALID_VALUE
        }
        let channel: FrameChannel
        do {
            let tls = ClientTLSSettings { name in getenv(name).map { String(cString: $0) } }
            channel = FrameChannel(transport: try endpoint.connect(tls: tls))
        } catch {
            ShimLog.log(.error, "cannot reach xpu-remote-server at \(endpoint): \(error)")
            return CUDA_ERROR_NO_DEVICE
        }
        var offered = Features.supported
        if LZ4Codec.shared == nil || environment("XPU_COMPRESSION") == "off" { offered.remove(.lz4) }
        let hello = Hello(
            features: offered.rawValue, clientCUDAVersion: 13000, slice: slice,
            client: "\(processName()) pid \(getpid())", token: environment("XPU_TOKEN"))
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
            // 32-62), as the server names contexts and modules: no two sessions share a handle.
            lane.nextClientHandle = 1 << 63 | (welcome.session & 0x7FFF_FFFF) << 32
            lane.negotiatedCompression = Features(rawValue: welcome.features).contains(.lz4)
            lane.compression = lane.negotiatedCompression
        } catch {
            ShimLog.log(.error, "handshake with \(endpoint) failed: \(error)")
            return CUDA_ERROR_NO_DEVICE
        }
        let (driverVersion, compression) = (lane.driverVersion, lane.negotiatedCompression)
        lane.forgetSession()
        (lane.driverVersion, lane.negotiatedCompression, lane.compression) = (driverVersion, compression, compression)
        lane.sequence = 0
        lane.connection = .open(channel, generation: xpu_fork_generation())
        return CUDA_SUCCESS
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

/// Turns LZ4 for bulk data on or off for the rest of the session (it stays off when the session did
/// not negotiate it); returns whether it is now on. For benchmarks that compare both in one run.
@c(xpu_shim_set_compression) public func xpuShimSetCompression(_ enabled: Int32) -> Int32 {
    Lane.shared.locked { lane in
        lane.compression = enabled != 0 && lane.negotiatedCompression
        return lane.compression ? 1 : 0
    }
}
