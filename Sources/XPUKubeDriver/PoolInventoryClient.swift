import CXPUDriver
import XPUKube
import XPUProtocol
import XPUTransport

/// Asks the pool directory for its servers and devices (call 302, `PoolListReply`).
public enum PoolInventoryClient {
    /// - Parameter address: the directory's `host:port`.
    public static func inventory(at address: String) throws(KubeError) -> PoolInventory {
        guard let endpoint = Endpoint(parsing: address) else { throw KubeError(.io, "pool address '\(address)' is not host:port") }
        let channel: FrameChannel
        do {
            channel = FrameChannel(transport: try SocketTransport.connect(to: endpoint))
        } catch {
            throw KubeError(.io, "cannot reach the pool directory at \(address): \(error)")
        }
        defer { channel.transport.shutdown() }
        let reply: PoolListReply
        do {
            try channel.send(FrameHeader(length: 0, call: PoolCall.list.rawValue, sequence: 1), payload: [])
            let (header, payload) = try channel.receive()
            guard header.status == CUDA_SUCCESS.rawValue else { throw KubeError(.badAnswer, "pool directory at \(address) refused the list: status \(header.status)") }
            reply = try PoolListReply(decoding: payload)
        } catch let error as KubeError {
            throw error
        } catch {
            throw KubeError(.badAnswer, "pool directory at \(address): \(error)")
        }
        return PoolInventory(
            servers: reply.servers.map { .init(address: $0.address, labels: $0.labels, deviceMemory: $0.devices.map(\.totalMemory)) })
    }
}
