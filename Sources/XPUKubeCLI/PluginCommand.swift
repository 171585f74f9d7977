import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import XPUKube
import XPUKubeDriver

/// `xpu-kube plugin`: the DRA kubelet plugin of one node.
struct PluginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin", abstract: "Serve the DRA kubelet plugin: register with the kubelet, prepare claims as CDI specs.")

    @Option(help: "The DRA driver's name.") var driverName = "xpu-remote.io"
    @Option(help: "This node's name (for the log).") var nodeName = ""
    @Option(help: "The pool directory, HOST:PORT (XPU_POOL of the containers).") var pool: String
    @Option(help: "The kubelet's directory.") var kubeletDir = "/var/lib/kubelet"
    @Option(help: "Where CDI specs are written (the runtime reads it).") var cdiDir = "/var/run/cdi"
    @Option(help: "Prepared claims and their token files (tmpfs).") var stateDir = "/run/xpu-remote"
    @Option(help: "The shim's directory in this image (libcuda.so.1, libnvidia-ml.so.1), copied to --shim-dir at start.")
    var shimSource = "/opt/xpu-remote/lib"
    @Option(help: "Where the node keeps the shim that containers mount (same path inside and outside the plugin).") var shimDir = "/var/lib/xpu-remote/lib"
    @Option(help: "The servers' CA (PEM), mounted into containers as XPU_TLS_CA when the file exists.") var tlsCA: String?
    @Option(help: "The Secret, in each claim's namespace, whose key 'token' is the tenant's token.") var tokenSecret = "xpu-remote-token"
    @Option(help: "Log level.") var logLevel: Logger.Level = .info
    @OptionGroup var api: APIOptions

    func run() async throws {
        var logger = Logger(label: "xpu-kube-plugin")
        logger.logLevel = logLevel
        try ShimInstaller.install(from: shimSource, into: shimDir)
        let client = try KubeAPIClient(try api.configuration())
        let preparer = ClaimPreparer(
            settings: .init(driver: driverName, poolAddress: pool, shimDirectory: shimDir, certificateAuthorityFile: tlsCA, tokenSecret: tokenSecret),
            store: ClaimStore(stateDirectory: stateDir, cdiDirectory: cdiDir), api: client, logger: logger)
        let plugin = KubeletPlugin(settings: .init(driver: driverName, kubeletDirectory: kubeletDir), preparer: preparer, logger: logger)
        logger.info("xpu-kube plugin on node \(nodeName.isEmpty ? "?" : nodeName), pool \(pool)")
        let group = ServiceGroup(services: [plugin], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        try await client.shutdown()
    }
}

extension APIOptions {
    func configuration() throws -> KubeAPIClient.Configuration {
        guard let kubeAPI else { return try KubeAPIClient.Configuration.inCluster() }
        return .init(server: kubeAPI, tokenFile: kubeTokenFile, certificateAuthorityFile: kubeCA)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
