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
    @Option(help: "Seconds between two looks at the pool directory.") var interval: Double = 5
    @Option(help: "Log level.") var logLevel: Logger.Level = .info
    @OptionGroup var api: APIOptions

    func run() async throws {
        var logger = Logger(label: "xpu-kube-controller")
        logger.logLevel = logLevel
        let client = try KubeAPIClient(try api.configuration())
        let controller = ResourceSliceController(
            publication: try SlicesCommand.publication(driverName, poolName, nodeSelector), poolAddress: pool,
            interval: .milliseconds(Int(interval * 1000)), api: client, logger: logger)
        let group = ServiceGroup(services: [controller], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        try await client.shutdown()
    }
}
