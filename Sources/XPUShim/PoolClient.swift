#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import XPUProtocol
import XPUTransport

/// Asks the pool directory (`XPU_POOL=host:port[,host:port]`, tried in order) where to run
/// `count` slices of `XPU_SLICE` (one per lane, `XPU_DEVICES`). The answer names, for each, the
/// server, its device, and the slice to ask it for (the request with the chosen `device=` and the
/// directory's `grant=`). The server still admits each slice itself; the directory only advises.
enum PoolClient {
    struct Placement {
        var server: ServerAddress
        var device: Int32
        var slice: String
    }

    enum Outcome {
        case placed([Placement])
        case failed(CUresult)
    }

    static func place(slice: String, count: Int, client: String) -> Outcome {
        let raw = getenv("XPU_POOL").map { String(cString: $0) } ?? ""
        let entries = raw.split(separator: ",").map { String($0).filter { $0 != " " } }.filter { !$0.isEmpty }
        guard !entries.isEmpty else {
            ShimLog.log(.error, "XPU_POOL is empty")
            return .failed(CUDA_ERROR_INVALID_VALUE)
        }
        var lastError = ""
        for entry in entries {
            guard let directory = Endpoint(parsing: entry) else {
                ShimLog.log(.error, "XPU_POOL entries must be host:port, got '\(entry)'")
                return .failed(CUDA_ERROR_INVALID_VALUE)
            }
            let channel: FrameChannel
            do {
                channel = FrameChannel(transport: try SocketTransport.connect(to: directory))
            } catch {
                lastError = "cannot reach the pool directory at \(directory): \(error)"
                ShimLog.log(.warn, lastError)
                continue
            }
            defer { channel.transport.shutdown() }
            let request = PoolPlaceRequest(slice: slice, client: client, count: UInt32(count))
            let header: FrameHeader
            let reply: PoolPlaceReply
            do {
                try channel.send(FrameHeader(length: 0, call: PoolCall.place.rawValue, sequence: 1), payload: request.encoded)
                let (received, payload) = try channel.receive()
                header = received
                reply = try PoolPlaceReply(decoding: payload)
            } catch {
                lastError = "pool directory at \(directory) failed: \(error)"
                ShimLog.log(.warn, lastError)
                continue
            }
            guard header.status == CUDA_SUCCESS.rawValue else {
                ShimLog.log(.error, "the pool at \(directory) could not place XPU_SLICE='\(slice)': \(reply.reason)")
                return .failed(CUresult(rawValue: header.status))
            }
            guard reply.placements.count == count else {
                ShimLog.log(.error, "the pool at \(directory) placed \(reply.placements.count) slices of the \(count) asked for")
                return .failed(CUDA_ERROR_NO_DEVICE)
            }
            var placements: [Placement] = []
            for placement in reply.placements {
                guard let server = ServerAddress(parsing: placement.server) else {
                    ShimLog.log(.error, "the pool at \(directory) answered an unusable server '\(placement.server)'")
                    return .failed(CUDA_ERROR_NO_DEVICE)
                }
                ShimLog.log(.info, "pool placed XPU_SLICE='\(slice)' on \(placement.server) as '\(placement.slice)'")
                placements.append(Placement(server: server, device: placement.device, slice: placement.slice))
            }
            return .placed(placements)
        }
        ShimLog.log(.error, "no pool directory answered (XPU_POOL=\(raw)): \(lastError)")
        return .failed(CUDA_ERROR_NO_DEVICE)
    }
}
