import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import XPUPlacement
import XPUTransport

/// `xpu-pool`: the pool directory. Servers register and heartbeat (`xpu-remote-server --pool`),
/// clients ask it where to run (`XPU_POOL`); placement follows `--policy`.
public struct PoolCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "xpu-pool",
        abstract: "The xpu-remote pool directory: places slices on registered servers.",
        discussion: """
            Servers register with xpu-remote-server --pool HOST:PORT and send a heartbeat every \
            second; a server silent for --heartbeat-timeout is dropped. Clients set XPU_POOL=HOST:PORT \
            and XPU_SLICE=mem=...,compute=...%; the shim asks the directory for a server and connects \
            to it. A request that does not fit waits in the queue up to the client's XPU_POOL_WAIT \
            (default 0: fail at once). The directory keeps soft state only: restarting it loses no session.
            """)

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free port, printed at start).")
    var listen: String = "127.0.0.1:7071"

    @Option(help: "Placement policy: fgd, bestfit, spread or load.")
    var policy: NamedPolicy.Name = .bestfit

    @Option(help: "Seconds without a heartbeat after which a server is dropped.")
    var heartbeatTimeout: Double = 3

    @Flag(
        help: """
            Let a high-priority request that fits nowhere preempt low-priority slices (their sessions \
            end with CUDA_ERROR_DEVICE_UNAVAILABLE). Off: such requests wait or fail like any other.
            """)
    var preempt = false

    @Option(
        help: """
            Seconds a waiting request may be passed by later requests of its priority that fit; after \
            that, capacity that frees goes to it first (no starvation by a stream of small requests). \
            0: strict arrival order within a priority.
            """)
    var passWindow: Double = 30

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    public init() {}

    public func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "xpu-pool")
        guard let endpoint = Endpoint(parsing: listen) else { throw ValidationError("--listen must be HOST:PORT, got '\(listen)'") }
        guard heartbeatTimeout > 0, heartbeatTimeout.isFinite else { throw ValidationError("--heartbeat-timeout must be positive") }
        guard passWindow >= 0, passWindow.isFinite else { throw ValidationError("--pass-window must be 0 or more seconds") }
        let directory = Directory(
            policy: policy, heartbeatTimeout: .milliseconds(Int(heartbeatTimeout * 1000)), preempt: preempt,
            passingWindow: .milliseconds(Int(passWindow * 1000)), logger: logger)
        let server: DirectoryServer
        do {
            server = try DirectoryServer(listen: endpoint, directory: directory, logger: logger)
        } catch {
            logger.critical("cannot listen: \(error)")
            throw ExitCode(2)
        }
        logger.info(
            "directory up", metadata: ["policy": "\(policy.rawValue)", "heartbeatTimeout": "\(heartbeatTimeout)s", "preempt": "\(preempt)", "passWindow": "\(passWindow)s"])
        FileHandle.standardOutput.write(Data("xpu-pool listening on \(server.endpoint)\n".utf8))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

extension NamedPolicy.Name: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
