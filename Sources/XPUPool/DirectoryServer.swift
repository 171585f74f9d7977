import CXPUDriver
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import XPUProtocol
import XPUTransport

/// Serves the directory on a TCP port: one thread per connection (servers keep theirs open for
/// heartbeats; clients ask one placement, `xpu-kube controller` one watch, and leave), and a
/// sweeper that drops silent servers (`Directory.sweepUntilStopped`).
public final class DirectoryServer: Service, @unchecked Sendable {
    public let directory: Directory
    let listener: Listener
    let logger: Logger
    private let state = Mutex(State())

    struct State {
        var next: UInt64 = 1
        var open: [UInt64: SocketTransport] = [:]
        var stopping = false
    }

    public init(listen: Endpoint, directory: Directory, logger: Logger) throws(TransportError) {
        self.directory = directory
        self.logger = logger
        self.listener = try Listener(binding: listen)
    }

    /// The address bound (the real port when 0 was asked for).
    public var endpoint: Endpoint { listener.endpoint }

    public func run() async throws {
        let acceptor = Thread { [self] in acceptLoop() }
        acceptor.name = "xpu-pool-accept"
        acceptor.start()
        let sweeper = Thread { [directory] in directory.sweepUntilStopped() }
        sweeper.name = "xpu-pool-sweep"
        sweeper.start()
        try? await gracefulShutdown()
        logger.info("shutting down")
        let open = state.withLock { state in
            state.stopping = true
            return Array(state.open.values)
        }
        directory.stopSweeping()
        listener.shutdown()
        for transport in open { transport.shutdown() }
        directory.wakeWatchers()
    }

    private func acceptLoop() {
        while true {
            let transport: SocketTransport
            do {
                transport = try listener.accept()
            } catch {
                if !state.withLock({ $0.stopping }) { logger.error("accept failed: \(error)") }
                return
            }
            let id: UInt64? = state.withLock { state in
                guard !state.stopping else { return nil }
                let id = state.next
                state.next += 1
                state.open[id] = transport
                return id
            }
            guard let id else {
                transport.shutdown()
                return
            }
            let thread = Thread { [self] in
                defer {
                    transport.shutdown()
                    state.withLock { _ = $0.open.removeValue(forKey: id) }
                }
                serve(FrameChannel(transport: transport))
            }
            thread.name = "xpu-pool-conn-\(id)"
            thread.start()
        }
    }

    /// Whether the peer closed its end (a client that gave up while its request waited): a look
    /// at the socket that neither blocks nor consumes anything.
    static func hungUp(_ transport: any Transport) -> Bool {
        guard let socket = transport as? SocketTransport else { return false }
        var byte: UInt8 = 0
        return recv(socket.descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) == 0
    }

    /// Answers requests until the peer leaves or breaks the protocol.
    private func serve(_ channel: FrameChannel) {
        while true {
            let header: FrameHeader
            let payload: [UInt8]
            do {
                (header, payload) = try channel.receive()
            } catch {
                return
            }
            var status = CUDA_SUCCESS
            var reply: [UInt8] = []
            do {
                switch PoolCall(rawValue: header.call) {
                case .heartbeat:
                    reply = directory.record(try PoolHeartbeat(decoding: payload)).encoded
                case .place:
                    let request = try PoolPlaceRequest(decoding: payload)
                    guard let api = APIFamily(requested: request.api) else {
                        let known = APIFamily.allCases.map(\.rawValue).joined(separator: ", ")
                        let (result, answer) = directory.refuse(
                            CUDA_ERROR_INVALID_VALUE, "unknown API family '\(request.api)' (the pool knows \(known))",
                            client: request.client, slice: request.slice)
                        status = result
                        reply = answer.encoded
                        break
                    }
                    // A client that hangs up while its request waits wakes the queue's waiters, and
                    // each looks whether its own client left: no waiter polls its socket.
                    let watch = (channel.transport as? SocketTransport).flatMap { socket in
                        HangupWatch.watch(socket.descriptor) { [directory = self.directory] in directory.notifyWaiters() }
                    }
                    defer { watch.map(HangupWatch.forget) }
                    let (result, answer) = directory.place(
                        slice: request.slice, count: request.count, client: request.client,
                        wait: .milliseconds(Int(request.waitMilliseconds)), zone: request.zone, api: api,
                        clientLeft: { Self.hungUp(channel.transport) }, clientWatched: watch != nil)
                    status = result
                    reply = answer.encoded
                case .list:
                    reply = directory.inventory.encoded
                case .watch:
                    let request = try PoolWatchRequest(decoding: payload)
                    let wait = min(.milliseconds(Int(request.waitMilliseconds)), PoolWatchRequest.maximumWait)
                    reply = directory.watchInventory(after: request.known, until: directory.clock.now + wait) {
                        state.withLock { $0.stopping } || Self.hungUp(channel.transport)
                    }.encoded
                case nil:
                    logger.warning("unknown pool call \(header.call), closing the connection")
                    return
                }
            } catch {
                logger.warning("malformed pool request, closing the connection", metadata: ["reason": "\(error)"])
                return
            }
            let answer = FrameHeader(
                length: 0, call: header.call, flags: .reply, sequence: header.sequence, status: status.rawValue)
            do {
                try channel.send(answer, payload: reply)
            } catch {
                return
            }
        }
    }
}
