#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import XPUProtocol

/// Asks the pool directory (`XPU_POOL=host:port[,host:port]`, tried in order) where to run
/// `count` slices of `XPU_SLICE` (one per lane, `XPU_DEVICES`). The answer names, for each, the
/// server, its device, and the slice to ask it for (the request with the chosen `device=` and the
/// directory's `grant=`). The server still admits each slice itself; the directory only advises.
///
/// `XPU_POOL_WAIT` (default 0: fail at once) lets the request wait in the directory's queue for
/// capacity to free; `XPU_ZONE` says where the client runs, so that servers labelled with the
/// same `zone=` win between otherwise equal placements. The connection has the same peer
/// timeout as a server session's (`XPU_PEER_TIMEOUT`, TCP keepalive): a directory that vanishes
/// while the request waits fails it within that time (the next directory is tried), instead of
/// blocking `cuInit` (or the OpenCL client's first call) for ever.
///
/// Each client library asks for its own API family (`APIFamily`: the CUDA shim for `cuda`, the
/// OpenCL client for `opencl`), and the pool places it only on servers of that family. `XPU_API`,
/// when set, must name that family: a CUDA program cannot be given an OpenCL server, nor the
/// other way round, so a contradicting value is a configuration error, said at once.
public enum PoolClient {
    public struct Placement: Sendable {
        public var server: ServerAddress
        public var device: Int32
        public var slice: String
    }

    public enum Outcome: Sendable {
        case placed([Placement])
        case failed(CUresult)
    }

    /// Places `count` slices of `slice` for a client of `family`; what goes wrong is written to
    /// `log` (the library's own) and answered as the CUresult the client's first call returns.
    public static func place(slice: String, count: Int, client: String, family: APIFamily, log: ClientLog) -> Outcome {
        let requested = environment("XPU_API")
        if !requested.isEmpty && APIFamily(requested: requested) != family {
            log.log(.error, "XPU_API=\(requested) asks the pool for another API than this library's (\(family.rawValue)); unset it or set XPU_API=\(family.rawValue)")
            return .failed(CUDA_ERROR_INVALID_VALUE)
        }
        let raw = environment("XPU_POOL")
        let entries = raw.split(separator: ",").map { String($0).filter { $0 != " " } }.filter { !$0.isEmpty }
        guard !entries.isEmpty else {
            log.log(.error, "XPU_POOL is empty")
            return .failed(CUDA_ERROR_INVALID_VALUE)
        }
        let waitText = environment("XPU_POOL_WAIT")
        guard let wait = waitMilliseconds(waitText) else {
            log.log(.error, "XPU_POOL_WAIT must be a duration such as 30s, 500ms, 2m or 0, got '\(waitText)'")
            return .failed(CUDA_ERROR_INVALID_VALUE)
        }
        let peerTimeout: Duration?
        switch ServerAddress.peerTimeout(environment: getenv("XPU_PEER_TIMEOUT").map { String(cString: $0) }) {
        case .success(let timeout): peerTimeout = timeout
        case .failure(let error):
            log.log(.error, error.message)
            return .failed(CUDA_ERROR_INVALID_VALUE)
        }
        if wait > 0 { log.log(.info, "asking the pool to place XPU_SLICE='\(slice)', waiting up to \(waitText) for capacity") }
        var lastError = ""
        for entry in entries {
            guard let directory = Endpoint(parsing: entry) else {
                log.log(.error, "XPU_POOL entries must be host:port, got '\(entry)'")
                return .failed(CUDA_ERROR_INVALID_VALUE)
            }
            let channel: FrameChannel
            do {
                let socket = try SocketTransport.connect(to: directory)
                if let peerTimeout { socket.enableKeepalive(peerTimeout: peerTimeout) }
                channel = FrameChannel(transport: socket)
            } catch {
                lastError = "cannot reach the pool directory at \(directory): \(error)"
                log.log(.warn, lastError)
                continue
            }
            defer { channel.transport.shutdown() }
            let request = PoolPlaceRequest(
                slice: slice, client: client, count: UInt32(count), waitMilliseconds: wait, zone: environment("XPU_ZONE"),
                api: family.rawValue)
            let header: FrameHeader
            let reply: PoolPlaceReply
            do {
                try channel.send(FrameHeader(length: 0, call: PoolCall.place.rawValue, sequence: 1), payload: request.encoded)
                let (received, payload) = try channel.receive()
                header = received
                reply = try PoolPlaceReply(decoding: payload)
            } catch {
                lastError = "pool directory at \(directory) failed: \(error)"
                log.log(.warn, lastError)
                continue
            }
            guard header.status == CUDA_SUCCESS.rawValue else {
                log.log(.error, "the pool at \(directory) could not place XPU_SLICE='\(slice)': \(reply.reason)")
                return .failed(CUresult(rawValue: header.status))
            }
            guard reply.placements.count == count else {
                log.log(.error, "the pool at \(directory) placed \(reply.placements.count) slices of the \(count) asked for")
                return .failed(CUDA_ERROR_NO_DEVICE)
            }
            var placements: [Placement] = []
            for placement in reply.placements {
                guard let server = ServerAddress(parsing: placement.server) else {
                    log.log(.error, "the pool at \(directory) answered an unusable server '\(placement.server)'")
                    return .failed(CUDA_ERROR_NO_DEVICE)
                }
                log.log(.info, "pool placed XPU_SLICE='\(slice)' on \(placement.server) as '\(placement.slice)'")
                placements.append(Placement(server: server, device: placement.device, slice: placement.slice))
            }
            return .placed(placements)
        }
        log.log(.error, "no pool directory answered (XPU_POOL=\(raw)): \(lastError)")
        return .failed(CUDA_ERROR_NO_DEVICE)
    }

    /// `XPU_POOL_WAIT` in milliseconds: a number with the unit `ms`, `s` (the default), `m` or
    /// `h`; empty is 0. nil when malformed or beyond what the protocol carries (about 49 days).
    public static func waitMilliseconds(_ text: String) -> UInt32? {
        let trimmed = text.filter { $0 != " " }
        guard !trimmed.isEmpty else { return 0 }
        let units: [(suffix: String, milliseconds: Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        var number = Substring(trimmed)
        var scale = 1000.0
        if let unit = units.first(where: { trimmed.hasSuffix($0.suffix) }) {
            number = number.dropLast(unit.suffix.count)
            scale = unit.milliseconds
        }
        guard let value = Double(number), value >= 0, value * scale <= Double(UInt32.max) else { return nil }
        return UInt32((value * scale).rounded(.up))
    }

    static func environment(_ name: String) -> String {
        getenv(name).map { String(cString: $0) } ?? ""
    }
}
