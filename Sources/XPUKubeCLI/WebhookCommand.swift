import ArgumentParser
import Logging
import ServiceLifecycle
import XPUKube
import XPUKubeDriver

/// `xpu-kube webhook`: the mutating admission webhook for clusters without DRA.
struct WebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook", abstract: "Serve the admission webhook that injects slices into annotated pods (HTTPS).")

    @Option(help: "HOST:PORT to listen on.") var listen = "0.0.0.0:8443"
    @Option(help: "The serving certificate (PEM), reloaded when it changes.") var tlsCert: String
    @Option(help: "The serving key (PEM), reloaded with the certificate.") var tlsKey: String
    @Option(help: "Seconds between two reads of the certificate and key.") var reloadInterval: Double = 30
    @Option(help: "The pool directory, HOST:PORT (XPU_POOL of the pods).") var pool: String
    @Option(help: "The image with the shim at /opt/xpu-remote/lib (the xpu-remote image).") var shimImage: String
    @Option(help: "A ConfigMap in each pod's namespace holding the servers' CA as ca.crt (XPU_TLS_CA).") var caConfigmap: String?
    @Option(help: "Log level.") var logLevel: Logger.Level = .info

    func run() async throws {
        var logger = Logger(label: "xpu-kube-webhook")
        logger.logLevel = logLevel
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen \(listen): expected HOST:PORT")
        }
        let (reloader, application) = try AdmissionWebhook.make(
            .init(
                host: String(listen[..<colon]), port: port, certificateFile: tlsCert, keyFile: tlsKey,
                reloadInterval: .milliseconds(Int(reloadInterval * 1000)),
                injection: PodInjection(poolAddress: pool, shimImage: shimImage, certificateAuthorityConfigMap: caConfigmap)),
            logger: logger)
        let group = ServiceGroup(services: [reloader, application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}
