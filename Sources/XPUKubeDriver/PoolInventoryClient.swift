import CXPUDriver
import Foundation
import Synchronization
import XPUKube
import XPUProtocol
import XPUTransport

/// Asks the pool directory for its servers and devices: once (call 302, `PoolListReply`), or as
/// a long poll that returns when the inventory changes (call 303, `PoolWatchReply`).
public enum PoolInventoryClient {
    /// - Parameter address: the directory's `host:port`.
    public static func inventory(at address: String) throws(KubeError) -> PoolInventory {
        let payload = try exchange(address, call: .list, request: [], connected: { _ in })
        do {
            return PoolInventory(try PoolListReply(decoding: payload))
        } catch {
            throw KubeError(.badAnswer, "pool directory at \(address): \(error)")
        }
    }

    /// The directory's inventory once its generation differs from `known` (0: at once), or as it
    /// is when `wait` ends. Blocks a thread of its own, not the caller's; cancelling the task
    /// closes the connection.
    public static func watch(at address: String, known: UInt64, wait: Duration) async throws(KubeError) -> (generation: UInt64, inventory: PoolInventory) {
        let milliseconds = UInt32(clamping: wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)
        let request = PoolWatchRequest(known: known, waitMilliseconds: milliseconds).encoded
        let connection = Connection()
        let result: Result<[UInt8], KubeError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let thread = Thread {
                    continuation.resume(returning: Result { () throws(KubeError) in
                        try exchange(address, call: .watch, request: request, connected: connection.opened)
                    })
                }
                thread.name = "xpu-kube-pool-watch"
                thread.start()
            }
        } onCancel: {
            connection.cancel()
        }
        let payload = try result.get()
        do {
            let reply = try PoolWatchReply(decoding: payload)
            return (reply.generation, PoolInventory(reply.inventory))
        } catch {
            throw KubeError(.badAnswer, "pool directory at \(address): \(error)")
        }
    }

    /// The transport of a watch in flight, so that a cancelled task can close it; a watch
    /// cancelled before it connected closes its transport as soon as it has one.
    final class Connection: Sendable {
        let state = Mutex<(transport: SocketTransport?, cancelled: Bool)>((nil, false))

        func opened(_ transport: SocketTransport) {
            let cancelled = state.withLock { state in
                state.transport = transport
                return state.cancelled
            }
            if cancelled { transport.shutdown() }
        }

        func cancel() {
            state.withLock { state in
                state.cancelled = true
                return state.transport
            }?.shutdown()
        }
    }

    /// One request and its reply's payload, on a connection of its own.
    static func exchange(
        _ address: String, call: PoolCall, request: [UInt8], connected: (SocketTransport) -> Void
    ) throws(KubeError) -> [UInt8] {
        guard let endpoint = Endpoint(parsing: address) else { throw KubeError(.io, "pool address '\(address)' is not host:port") }
        let transport: SocketTransport
        do {
            transport = try SocketTransport.connect(to: endpoint)
        } catch {
            throw KubeError(.io, "cannot reach the pool directory at \(address): \(error)")
        }
        connected(transport)
        let channel = FrameChannel(transport: transport)
        defer { transport.shutdown() }
        do {
            try channel.send(FrameHeader(length: 0, call: call.rawValue, sequence: 1), payload: request)
            let (header, payload) = try channel.receive()
            guard header.status == CUDA_SUCCESS.rawValue else {
                throw KubeError(.badAnswer, "pool directory at \(address) refused call \(call.rawValue): status \(header.status)")
            }
            return payload
        } catch let error as KubeError {
            throw error
        } catch {
            throw KubeError(.io, "pool directory at \(address): \(error)")
        }
    }
}

extension PoolInventory {
    /// What the controller publishes of a list reply: each server's address, labels and devices'
    /// memory.
    init(_ reply: PoolListReply) {
        self.init(servers: reply.servers.map { .init(address: $0.address, labels: $0.labels, deviceMemory: $0.devices.map(\.totalMemory)) })
    }
}
