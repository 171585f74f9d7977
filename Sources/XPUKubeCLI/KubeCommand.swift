import ArgumentParser

/// `xpu-kube`: xpu-remote on Kubernetes (docs/kubernetes.md).
public struct KubeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "xpu-kube",
        abstract: "xpu-remote on Kubernetes: the DRA driver (kubelet plugin, ResourceSlice controller) and the admission webhook.",
        subcommands: [PluginCommand.self, ControllerCommand.self, WebhookCommand.self, SlicesCommand.self, CDISpecCommand.self])

    public init() {}
}

/// Options every daemon shares: how to reach the API server.
struct APIOptions: ParsableArguments {
    @Option(help: "Kubernetes API server URL (default: in-cluster, from KUBERNETES_SERVICE_HOST and the service account).")
    var kubeAPI: String?

    @Option(help: "With --kube-api: file holding the bearer token.")
    var kubeTokenFile: String?

    @Option(help: "With --kube-api: the API server's CA (PEM).")
    var kubeCA: String?
}
