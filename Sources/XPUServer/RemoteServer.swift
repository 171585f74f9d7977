import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import XPUTransport

/// Accepts sessions and serves each on its own thread until graceful shutdown, which stops
/// accepting, ends every session (freeing what it held) and returns.
public final class RemoteServer: Service, @unchecked Sendable {
    public let configuration: ServerConfiguration
    let driver: Driver
    let listener: any ConnectionListener
    let security: ServerSecurity
    let logger: Logger
    private let state = Mutex(State())

    struct State {
        var nextSession: UInt64 = 1
        var open: [UInt64: any Transport] = [:]
        var stopping = false
    }

    /// Binds the listening socket (so a bad address fails before anything starts): TCP on
    /// `configuration.listen`, or the Unix socket of `security.unixSocketPath`.
    public init(configuration: ServerConfiguration, driver: Driver, logger: Logger, security: ServerSecurity = ServerSecurity())
        throws(TransportError)
    {
        self.configuration = configuration
        self.driver = driver
        self.logger = logger
        self.security = security
        if let path = security.unixSocketPath {
            self.listener = try UnixListener(path: path)
        } else {
            self.listener = try Listener(binding: configuration.listen)
        }
    }

    /// The address actually bound (the real port when 0 was asked for).
    public var endpoint: Endpoint { (listener as? Listener)?.endpoint ?? configuration.listen }

    /// The bound address as clients write it in `XPU_SERVER` (`tls://` when TLS is on).
    public var address: String { security.tls != nil ? "tls://\(listener.address)" : listener.address }

    /// Sessions open now (for pool heartbeats).
    public var sessionCount: Int { state.withLock { $0.open.count } }

    public func run() async throws {
        let acceptor = Thread { [self] in acceptLoop() }
        acceptor.name = "xpu-accept"
        acceptor.start()
        try? await gracefulShutdown()
        logger.info("shutting down")
        let open = state.withLock { state in
            state.stopping = true
            return Array(state.open.values)
        }
        listener.shutdown()
        for transport in open { transport.shutdown() }
        // Sessions free what they hold as their threads see the connection close.
        for _ in 0..<100 where state.withLock({ !$0.open.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(50))
        }
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
                let id = state.nextSession
                state.nextSession += 1
                state.open[id] = transport
                return id
            }
            guard let id else {
                transport.shutdown()
                return
            }
            let thread = Thread { [self] in
                defer { state.withLock { _ = $0.open.removeValue(forKey: id) } }
                // TLS and authentication (Authentication.swift) run on the session's own thread.
                guard let (secured, connectionSecurity) = secure(transport, session: id) else { return }
                let connection = Connection(
                    transport: secured, driver: driver, sessionID: id, logger: logger,
                    compressionAllowed: configuration.compression)
                connection.security = connectionSecurity
                connection.run()
            }
            thread.name = "xpu-session-\(id)"
            thread.start()
        }
    }
}
