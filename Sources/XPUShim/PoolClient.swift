#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import XPUProtocol
import XPUTransport

/// Asks the pool directory (`XPU_POOL=host:port[,host:port]`, tried in order) where to run the
/// slice in `XPU_SLICE`. One server per process: the answer names the server and the slice to ask
/// it for (the request with the chosen `device=` and the directory's `grant=`). The server still
/// admits the slice itself; the directory only advises.
enum PoolClient {
    enum Outcome {
        case placed(ServerAddress, slice: String)
        case failed(CUresult)
    }

    static func place(slice: String, client: String) -> Outcome {
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
            let request = PoolPlaceRequest(slice: slice, client: client)
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
            guard let server = ServerAddress(parsing: reply.server) else {
                ShimLog.log(.error, "the pool at \(directory) answered an unusable server '\(reply.server)'")
                return .failed(CUDA_ERROR_NO_DEVICE)
            }
            ShimLog.log(.info, "pool placed XPU_SLICE='\(slice)' on \(reply.server) as '\(reply.slice)'")
            return .placed(server, slice: reply.slice)
        }
        ShimLog.log(.error, "no pool directory answered (XPU_POOL=\(raw)): \(lastError)")
        return .failed(CUDA_ERROR_NO_DEVICE)
    }
}
