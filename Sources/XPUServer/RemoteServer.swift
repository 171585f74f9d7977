import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import XPUAdmission
import XPUTransport

/// Accepts sessions and serves each on its own thread (or, with `--tenant-processes`, in a process
/// of its own that the thread supervises) until graceful shutdown, which stops accepting, ends
/// every session (freeing what it held) and returns.
public final class RemoteServer: Service, @unchecked Sendable {
    public let configuration: ServerConfiguration
    let driver: Driver
    let listener: Accepting
    let security: ServerSecurity
    let logger: Logger
    /// The devices' ledger and compute scheduler, shared by this server's sessions.
    public let devices: ServerDevices
    /// Set when the server reports /metrics (`--metrics`).
    let metrics: ServerMetrics?
    /// Set with `--tenant-processes`: sessions are served in processes of their own.
    let tenantProcesses: TenantProcesses?
    /// Holds accepted connections until their Hello (deadline, caps, no thread while silent).
    let lobby: ConnectionLobby
    private let state = Mutex(State())

    struct State {
        var nextSession: UInt64 = 1
        var open: [UInt64: any Transport] = [:]
        /// The preemption order of each open session (the pool may end any of them).
        var preemptions: [UInt64: PreemptionOrder] = [:]
        var stopping = false
    }

    /// Where sessions come from: a stream socket (TCP, or Unix for shared memory) or RDMA.
    enum Accepting {
        case socket(any ConnectionListener)
        case rdma(RDMAListener)

        var address: String {
            switch self {
            case .socket(let listener): listener.address
            case .rdma(let listener): listener.address
            }
        }

        func shutdown() {
            switch self {
            case .socket(let listener): listener.shutdown()
            case .rdma(let listener): listener.shutdown()
            }
        }
    }

    /// Binds the listener (so a bad address fails before anything starts): TCP on
    /// `configuration.listen`, the Unix socket of `security.unixSocketPath`, or RDMA on
    /// `security.rdmaEndpoint` (through `rdmaAcceptor` when given: tests pass an in-memory fake).
    /// Sessions report their usage to `metrics` when given, which reads the same `devices`.
    public init(
        configuration: ServerConfiguration, driver: Driver, logger: Logger, security: ServerSecurity = ServerSecurity(),
        rdmaAcceptor: (any VerbsAcceptor)? = nil, devices: ServerDevices = ServerDevices(), metrics: ServerMetrics? = nil
    ) throws(TransportError) {
        precondition(metrics.map { $0.serverDevices === devices } ?? true, "the metrics must report this server's devices")
        self.configuration = configuration
        self.devices = devices
        self.metrics = metrics
        self.driver = driver
        self.logger = logger
        self.security = security
        self.tenantProcesses = configuration.tenantProcesses ? TenantProcesses(driverPath: driver.path, logLevel: logger.logLevel, scheduler: devices.scheduler) : nil
        self.lobby = try ConnectionLobby(
            limits: configuration.admission, statistics: metrics?.admission ?? AdmissionStatistics(), logger: logger)
        if let rdmaAcceptor {
            self.listener = .rdma(RDMAListener(acceptor: rdmaAcceptor))
        } else if let endpoint = security.rdmaEndpoint {
            self.listener = .rdma(RDMAListener(acceptor: try VerbsListener(binding: endpoint)))
        } else if let path = security.unixSocketPath {
            self.listener = .socket(try UnixListener(path: path))
        } else {
            // A deep accept queue (the kernel caps it at net.core.somaxconn): a burst of connects
            // waits there for the accept thread, which only hands each to the lobby; with a full
            // queue the kernel drops the handshake's last ACK and the client, connected on its
            // side, is accepted only after SYN-ACK retransmissions, seconds later.
            self.listener = .socket(try Listener(binding: configuration.listen, backlog: 4096))
        }
    }

    /// The address actually bound (the real port when 0 was asked for).
    public var endpoint: Endpoint {
        switch listener {
        case .socket(let socket): (socket as? Listener)?.endpoint ?? configuration.listen
        case .rdma(let rdma):
            (rdma.acceptor as? VerbsListener).map { Endpoint(host: $0.host, port: $0.port) } ?? security.rdmaEndpoint ?? configuration.listen
        }
    }

    /// The bound address as clients write it in `XPU_SERVER` (`tls://` when TLS is on, which it
    /// never is for RDMA).
    public var address: String {
        if case .socket = listener, security.tls != nil { return "tls://\(listener.address)" }
        return listener.address
    }

    /// Sessions open now (for pool heartbeats).
    public var sessionCount: Int { state.withLock { $0.open.count } }

    /// Ends `session` because the pool preempts it: its thread tells the client why
    /// (`SessionEnd`), frees everything and counts it. False when no such session is open.
    @discardableResult
    public func preempt(session: UInt64, reason: String) -> Bool {
        guard let (transport, order) = state.withLock({ state in state.open[session].map { ($0, state.preemptions[session]!) } })
        else { return false }
        guard order.give(reason: reason) else { return true }
        // Wakes the session's thread if it waits for the client; one busy on a call sees the
        // order before its next frame.
        transport.interruptReceiving()
        return true
    }

    public func run() async throws {
        Thread.start(named: "xpu-accept") { [self] in acceptLoop() }
        try? await gracefulShutdown()
        logger.info("shutting down")
        let open = state.withLock { state in
            state.stopping = true
            return Array(state.open.values)
        }
        listener.shutdown()
        lobby.shutdown()
        for transport in open { transport.shutdown() }
        // Sessions free what they hold as their threads see the connection close.
        for _ in 0..<100 where state.withLock({ !$0.open.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// One accepted client, before TLS and authentication.
    private enum Accepted {
        case socket(SocketTransport)
        case rdma(RDMATransport, peerHost: String)

        var transport: any Transport {
            switch self {
            case .socket(let socket): socket
            case .rdma(let rdma, _): rdma
            }
        }
    }

    /// The next client; nil when one RDMA client failed to connect (accepting goes on). Throws
    /// when accepting is over.
    private func acceptNext() throws(TransportError) -> Accepted? {
        switch listener {
        case .socket(let socket):
            return .socket(try socket.accept())
        case .rdma(let rdma):
            do {
                let (transport, peerHost) = try rdma.accept()
                return .rdma(transport, peerHost: peerHost)
            } catch {
                guard error.code != .closed else { throw error }
                logger.warning("RDMA connection failed", metadata: ["reason": "\(error.message)"])
                return nil
            }
        }
    }

    private func acceptLoop() {
        lobby.start { [self] socket, ticket in startSession(.socket(socket), handshake: ticket) }
        let keepalive = security.unixSocketPath == nil ? configuration.admission.peerTimeout : nil
        while true {
            let accepted: Accepted
            do {
                guard let next = try acceptNext() else { continue }
                accepted = next
            } catch {
                if !state.withLock({ $0.stopping }) { logger.error("accept failed: \(error)") }
                return
            }
            switch accepted {
            case .socket(let socket):
                if let keepalive { socket.enableKeepalive(peerTimeout: keepalive) }
                // Waits without a thread until its first bytes arrive (ConnectionLobby).
                lobby.enter(socket)
            case .rdma(let rdma, let peerHost):
                guard let ticket = lobby.track(source: peerHost, interrupt: { rdma.shutdown() }) else {
                    logger.warning("RDMA connection refused before its handshake: too many pending", metadata: ["peer": "\(peerHost)"])
                    rdma.shutdown()
                    continue
                }
                startSession(accepted, handshake: ticket)
            }
        }
    }

    /// Gives an accepted connection its session id and thread, which runs TLS, the Hello and
    /// then the session; `handshake` is finished once the Hello arrived or the thread ends.
    private func startSession(_ accepted: Accepted, handshake: HandshakeTicket) {
        let transport = accepted.transport
        let preemption = PreemptionOrder()
        let id: UInt64? = state.withLock { state in
            guard !state.stopping else { return nil }
            let id = state.nextSession
            state.nextSession += 1
            state.open[id] = transport
            state.preemptions[id] = preemption
            return id
        }
        guard let id else {
            handshake.finish()
            transport.shutdown()
            return
        }
        Thread.start(named: "xpu-session-\(id)") { [self] in
            defer {
                handshake.finish()
                state.withLock { state in
                    state.open[id] = nil
                    state.preemptions[id] = nil
                }
            }
            // TLS and authentication (Authentication.swift) run on the session's own thread.
            let secured: (any Transport, ConnectionSecurity)?
            switch accepted {
            case .socket(let socket):
                secured = secure(socket, session: id, handshake: handshake)
            case .rdma(let rdma, let peerHost):
                // No TLS over RDMA: the policy (if any) still decides who may open a session.
                var connectionSecurity = ConnectionSecurity(authenticator: security.authenticator, peerHost: peerHost)
                connectionSecurity.transportName = "rdma"
                secured = (rdma, connectionSecurity)
            }
            guard let (securedTransport, connectionSecurity) = secured else { return }
            securedTransport.setBusyPoll(configuration.busyPoll)
            let connection = Connection(
                transport: securedTransport, driver: driver, sessionID: id, logger: logger,
                compressionAllowed: configuration.compression, limits: configuration.limits, devices: devices, metrics: metrics,
                tenantProcesses: tenantProcesses, preemption: preemption, handshake: handshake)
            connection.security = connectionSecurity
            connection.run()
        }
    }
}
