import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Two network namespaces joined by a veth pair, for tests of a real network path between a
/// client and a server: the server's side has 10.91.0.1 and the client's 10.91.0.2, a /30 that
/// exists only inside these two namespaces; each has its loopback up. Names carry the test
/// process's id and a counter, so parallel runs never meet; both namespaces (and with them the
/// veth pair, the addresses and any nftables rules) are deleted when the pair is released, and
/// namespaces a crashed run left behind are deleted by the next run.
///
/// Faults: nftables inside one namespace (`nft`), shaping with tc, delay with the tests' relay
/// (Tests/programs/fault_relay.py) run inside one namespace (`start`).
final class NamespacePair: Sendable {
    let client: String
    let server: String
    static let serverAddress = "10.91.0.1"
    static let clientAddress = "10.91.0.2"

    private static let created = Atomic<Int>(0)
    private static let prefix = "xpu-net-"

    /// Why namespaces cannot be made here (not root, `ip` or `nft` missing, namespaces refused),
    /// or nil. Checked once; also deletes namespaces left by runs that are gone.
    static let unavailable: String? = {
        guard geteuid() == 0 else { return "network-namespace tests need root (ip netns); CI runs them as root" }
        for tool in ["ip", "nft"] where (try? Harness.toolPath(tool)) == nil {
            return "network-namespace tests need \(tool) (apt: iproute2, nftables)"
        }
        removeLeftovers()
        let probe = "\(prefix)probe-\(getpid())"
        guard let made = try? ip(["netns", "add", probe]), made.status == .exited(0) else {
            return "cannot create a network namespace here (ip netns add failed)"
        }
        _ = try? ip(["netns", "del", probe])
        return nil
    }()

    init() throws {
        let tag = "\(getpid())-\(Self.created.add(1, ordering: .relaxed).newValue)"
        client = "\(Self.prefix)c-\(tag)"
        server = "\(Self.prefix)s-\(tag)"
        do {
            try Self.must(["netns", "add", client])
            try Self.must(["netns", "add", server])
            // Created inside the namespaces: the interface names exist nowhere else.
            try Self.must(["link", "add", "xpu-c", "netns", client, "type", "veth", "peer", "name", "xpu-s", "netns", server])
            for (namespace, interface, address) in [(client, "xpu-c", Self.clientAddress), (server, "xpu-s", Self.serverAddress)] {
                try Self.must(["-n", namespace, "link", "set", "lo", "up"])
                try Self.must(["-n", namespace, "addr", "add", "\(address)/30", "dev", interface])
                try Self.must(["-n", namespace, "link", "set", interface, "up"])
            }
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    /// Starts `command` inside `namespace`.
    func start(in namespace: String, _ command: [String], environment: [String: String] = Harness.baseEnvironment()) throws
        -> ChildProcess
    {
        try ChildProcess(try Harness.toolPath("ip"), ["netns", "exec", namespace] + command, environment: environment)
    }

    /// Runs `command` inside `namespace` to its end.
    func run(in namespace: String, _ command: [String], timeout: Duration = .seconds(60)) throws -> ProgramOutput {
        try start(in: namespace, command).finish(timeout: timeout)
    }

    /// Loads an nftables script into `namespace` (`nft -f`).
    func nft(in namespace: String, _ script: String) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-nft-\(getpid())-\(UUID().uuidString).nft")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try Harness.runTool("ip", ["netns", "exec", namespace, try Harness.toolPath("nft"), "-f", file.path], timeout: .seconds(30))
        guard result.status == .exited(0) else { throw E2EError("nft -f in \(namespace) failed:\n\(script)\n\(result.stderr)") }
    }

    /// Drops every packet of the veth link in `namespace` (both directions), until `heal`.
    func partition(_ namespace: String) throws {
        try nft(
            in: namespace,
            """
            table inet xpu_partition {
                chain input { type filter hook input priority 0; policy accept; iifname != "lo" drop; }
                chain output { type filter hook output priority 0; policy accept; oifname != "lo" drop; }
            }
            """)
    }

    func heal(_ namespace: String) throws {
        try nft(in: namespace, "delete table inet xpu_partition")
    }

    /// Drops `percent` of the packets `namespace` receives over the veth link, at random.
    func loseIncoming(_ namespace: String, percent: Int) throws {
        try nft(
            in: namespace,
            """
            table inet xpu_loss {
                chain input { type filter hook input priority 0; policy accept; iifname != "lo" numgen random mod 100 < \(percent) drop; }
            }
            """)
    }

    private func remove() {
        for namespace in [client, server] { _ = try? Self.ip(["netns", "del", namespace]) }
    }

    private static func ip(_ arguments: [String]) throws -> ProgramOutput {
        try Harness.runTool("ip", arguments, timeout: .seconds(30))
    }

    private static func must(_ arguments: [String]) throws {
        let result = try ip(arguments)
        guard result.status == .exited(0) else { throw E2EError("ip \(arguments.joined(separator: " ")) failed: \(result.stderr)") }
    }

    /// Deletes this suite's namespaces whose creating process is gone.
    private static func removeLeftovers() {
        guard let list = try? ip(["netns", "list"]) else { return }
        for line in list.stdout.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix(prefix) else { continue }
            let fields = name.dropFirst(prefix.count).split(separator: "-")
            guard fields.count == 3, let pid = pid_t(fields[1]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? ip(["netns", "del", name])
        }
    }
}
