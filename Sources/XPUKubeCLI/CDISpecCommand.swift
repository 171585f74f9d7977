import ArgumentParser
import Foundation
import XPUKube

/// `xpu-kube cdi-spec`: prints the CDI spec the kubelet plugin writes for an allocated claim read
/// from a file (for review, and for scripts/check-deploy.sh, which validates it against
/// proto/cdi/spec.schema.json).
struct CDISpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cdi-spec", abstract: "Print the CDI spec the kubelet plugin writes for an allocated ResourceClaim (JSON file).")

    @Option(help: "The ResourceClaim, as JSON, with its allocation in status.") var claim: String
    @Option(help: "The DRA driver's name.") var driverName = "xpu-remote.io"
    @Option(help: "The pool directory, HOST:PORT.") var pool = "xpu-pool.xpu-remote.svc:7071"
    @Option(help: "ADDRESS=BYTES[,BYTES...]: a server of the pool and its devices' memory, for placement 'device' (repeatable).")
    var server: [String] = []
    @Option(help: "The node's directory holding the shim.") var shimDir = "/var/lib/xpu-remote/lib"
    @Option(help: "The plugin's state directory.") var stateDir = "/run/xpu-remote"
    @Flag(help: "The claim's namespace has a token Secret.") var token = false
    @Flag(help: "The plugin has the servers' CA.") var tlsCA = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: claim) else { throw ValidationError("--claim \(claim): cannot read the file") }
        let resourceClaim: ResourceClaim
        do {
            resourceClaim = try JSONDecoder().decode(ResourceClaim.self, from: data)
        } catch {
            throw ValidationError("--claim \(claim): not a ResourceClaim: \(error)")
        }
        let inventory = PoolInventory(servers: try SlicesCommand.servers(server))
        let plan = try ClaimPlan.make(
            claim: resourceClaim, driver: driverName, poolAddress: pool, hasToken: token, hasCertificateAuthority: tlsCA,
            locate: inventory.locate)
        // The plugin's layout (ClaimStore): the claim's files under <state>/claims/<uid>/.
        let directory = "\(stateDir)/claims/\(plan.cdiDeviceName)"
        let spec = plan.cdiSpec(
            shimDirectory: shimDir, tokenPath: token ? directory + "/token" : nil, certificateAuthorityPath: tlsCA ? directory + "/ca.crt" : nil)
        print(String(decoding: spec.json, as: UTF8.self))
    }
}
