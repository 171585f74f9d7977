import ArgumentParser
import Foundation
import XPUKube

/// `xpu-kube slices`: prints the ResourceSlices the controller would publish for servers given on
/// the command line (for review, and for scripts/check-deploy.sh).
struct SlicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slices", abstract: "Print, as YAML-compatible JSON documents, the ResourceSlices for the servers given.")

    @Option(help: "The DRA driver's name.") var driverName = "xpu-remote.io"
    @Option(help: "The DRA pool's name.") var poolName = "xpu-remote"
    @Option(help: "KEY=VALUE node label (repeatable).") var nodeSelector: [String] = []
    @Option(help: "ADDRESS=BYTES[,BYTES...]: a server and the memory of each of its devices (repeatable).") var server: [String] = []

    func run() throws {
        let servers = try Self.servers(server)
        let publication = try Self.publication(driverName, poolName, nodeSelector)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        for slice in publication.slices(of: PoolInventory(servers: servers), generation: 1) {
            print("---")
            print(String(decoding: try encoder.encode(slice), as: UTF8.self))
        }
    }

    /// `--server ADDRESS=BYTES[,BYTES...]` entries as the pool would list them.
    static func servers(_ entries: [String]) throws -> [PoolInventory.Server] {
        try entries.map { entry in
            guard let equals = entry.lastIndex(of: "=") else { throw ValidationError("--server \(entry): expected ADDRESS=BYTES[,BYTES...]") }
            let sizes = entry[entry.index(after: equals)...].split(separator: ",").compactMap { UInt64($0) }
            return .init(address: String(entry[..<equals]), labels: [], deviceMemory: sizes)
        }
    }

    static func publication(_ driver: String, _ pool: String, _ labels: [String]) throws -> ResourceSlicePublication {
        let pairs = try labels.map { label -> (key: String, value: String) in
            let parts = label.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw ValidationError("--node-selector \(label): expected KEY=VALUE") }
            return (String(parts[0]), String(parts[1]))
        }
        return ResourceSlicePublication(driver: driver, poolName: pool, nodeLabels: pairs)
    }
}
