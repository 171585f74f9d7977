import ArgumentParser
import Logging
import ServiceLifecycle
import XPUKube
import XPUKubeDriver

/// `xpu-kube controller`: publishes the pool's devices as ResourceSlices.
struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller", abstract: "Publish the pool directory's devices as ResourceSlices, kept in step with it.")

    @Option(help: "The DRA driver's name.") var driverName = "xpu-remote.io"
    @Option(help: "The pool directory, HOST:PORT.") var pool: String
    @Option(help: "The DRA pool's name (and its ResourceSlices' name prefix).") var poolName = "xpu-remote"
    @Option(help: "KEY=VALUE node label that nodes must carry to use the devices (repeatable; none: all nodes).")
    var nodeSelector: [String] = []
    @Option(help: "Seconds the pool directory may hold one long poll (at most 60).") var pollWait: Double = 30
    @Option(help: "Seconds the API server may hold one watch of the ResourceSlices.") var watchTimeout = 300
    @Option(help: "Seconds before trying again after the pool directory or the API server failed.") var retryInterval: Double = 5
    @Option(help: "Log level.") var logLevel: Logger.Level = .info
    @OptionGroup var api: APIOptions

    func run() async throws {
        var logger = Logger(label: "xpu-kube-controller")
        logger.logLevel = logLevel
        let client = try KubeAPIClient(try api.configuration())
        let controller = ResourceSliceController(
            publication: try SlicesCommand.publication(driverName, poolName, nodeSelector), poolAddress: pool,
            pollWait: .milliseconds(Int(pollWait * 1000)), watchTimeoutSeconds: watchTimeout,
            retryInterval: .milliseconds(Int(retryInterval * 1000)), api: client, logger: logger)
        let group = ServiceGroup(services: [controller], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        try await client.shutdown()
    }
}
