import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Client and server on a real network path, two network namespaces joined by a veth pair
/// (`NamespacePair`), with faults put on it: random loss (nftables), delay with jitter (the tests'
/// relay, Tests/programs/fault_relay.py), and partitions shorter and longer than the peer timeout
/// (TCP keepalive and user timeout on both ends, `--peer-timeout` and `XPU_PEER_TIMEOUT`).
@Suite(
    "Network faults", .serialized,
    .enabled(if: NamespacePair.unavailable == nil, "\(NamespacePair.unavailable ?? "")"))
struct NetworkFaultTests {
    /// Programs whose output is compared with direct runs under loss and delay: kernels,
    /// copies from 0 bytes to 33 MiB, streams and events.
    static let programs = ["vector_add", "memory", "streams_events"]

    @Test("Calls complete correctly under 1% loss each way, and with 2 ms ± 1 ms delay added")
    func lossAndDelay() throws {
        let harness = try Harness.get()
        let network = try NamespacePair()
        let server = try Server(
            harness: harness, arguments: ["--insecure"], host: NamespacePair.serverAddress, namespace: network.server)
        try network.loseIncoming(network.server, percent: 1)
        try network.loseIncoming(network.client, percent: 1)
        for name in Self.programs {
            let direct = try harness.runDirect(name)
            let remote = try run(name, through: server.address, in: network, harness: harness)
            expectSameBehaviour("\(name) under 1% loss", direct: direct, remote: remote)
        }

        let relayScript = Harness.packageRoot.appendingPathComponent("Tests/programs/fault_relay.py").path
        let port = String(server.address.split(separator: ":").last!)
        let relay = try network.start(
            in: network.client,
            [try Harness.toolPath("python3"), relayScript, "127.0.0.1", "0", NamespacePair.serverAddress, port, "2", "1", "19"])
        defer { relay.stop(terminateFirst: false) }
        try #require(relay.waitForOutput(containing: "relay listening on ", timeout: .seconds(30)), "relay: \(relay.stderr.text)")
        let relayAddress = try #require(
            relay.stdout.text.split(separator: "\n").first { $0.hasPrefix("relay listening on ") }?
                .dropFirst("relay listening on ".count))
        for name in Self.programs {
            let direct = try harness.runDirect(name)
            let remote = try run(name, through: String(relayAddress), in: network, harness: harness)
            expectSameBehaviour("\(name) under 1% loss and 2 ms ± 1 ms delay", direct: direct, remote: remote)
        }
    }

    @Test("A partition longer than the peer timeout ends the session on both sides and frees it on the server")
    func longPartition() throws {
        let harness = try Harness.get()
        let network = try NamespacePair()
        let server = try Server(
            harness: harness, arguments: ["--insecure", "--peer-timeout", "3", "--metrics", "127.0.0.1:0"],
            host: NamespacePair.serverAddress, namespace: network.server)
        let freeBefore = try freeMemory(server, network, harness)

        let go = harness.workDirectory.appendingPathComponent("long-partition-go-\(UUID().uuidString)").path
        let program = try start("network_fault", [go], through: server.address, in: network, harness: harness, peerTimeout: 3)
        defer { program.stop(terminateFirst: false) }
        try #require(program.waitForOutput(containing: "ready", timeout: .seconds(60)), "\(program.stdout.text)\n\(program.stderr.text)")
        #expect(try scrape(server, network) { $0.sessions.count == 1 }.sessions.count == 1)

        try network.partition(network.client)
        _ = FileManager.default.createFile(atPath: go, contents: nil)
        // The client's call fails within its peer timeout; the server ends the session within its own.
        let output = program.finish(timeout: .seconds(60))
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.contains("copy after the fault: CUDA_ERROR_DEVICE_UNAVAILABLE"), "\(output.stdout)")
        #expect(output.stdout.contains("next call: CUDA_ERROR_DEVICE_UNAVAILABLE"), "\(output.stdout)")
        // Ended by TCP's keepalive or user timeout (ETIMEDOUT), not by a reset or close.
        #expect(output.stderr.contains("connection to the server lost: I/O error: recv: Connection timed out"), "\(output.stderr)")
        // Still partitioned: only the server's keepalive can have ended its side.
        let after = try scrape(server, network) { $0["xpu_server_sessions"] == 0 }
        #expect(after["xpu_server_sessions"] == 0, "\(after.text)")
        #expect(after.sessions.isEmpty, "\(after.text)")
        let serverLog = server.process.stderr.text
        #expect(
            serverLog.contains("connection failed, closing session") && serverLog.contains("Connection timed out"), "\(serverLog)")

        try network.heal(network.client)
        #expect(try freeMemory(server, network, harness) == freeBefore, "device memory of the lost session not freed")
    }

    @Test("A partition healed within the peer timeout loses nothing")
    func healedPartition() throws {
        let harness = try Harness.get()
        let network = try NamespacePair()
        let server = try Server(
            harness: harness, arguments: ["--insecure", "--peer-timeout", "15", "--metrics", "127.0.0.1:0"],
            host: NamespacePair.serverAddress, namespace: network.server)
        let go = harness.workDirectory.appendingPathComponent("healed-partition-go-\(UUID().uuidString)").path
        let program = try start("network_fault", [go], through: server.address, in: network, harness: harness, peerTimeout: 15)
        defer { program.stop(terminateFirst: false) }
        try #require(program.waitForOutput(containing: "ready", timeout: .seconds(60)), "\(program.stdout.text)\n\(program.stderr.text)")

        try network.partition(network.client)
        _ = FileManager.default.createFile(atPath: go, contents: nil)
        // The fault's duration: the copy's request and its retransmissions are dropped meanwhile.
        usleep(2_000_000)
        #expect(program.poll() == nil, "the program ended during the partition:\n\(program.stdout.text)")
        try network.heal(network.client)

        let output = program.finish(timeout: .seconds(60))
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.contains("copy after the fault: CUDA_SUCCESS"), "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.contains("data intact: yes"), "\(output.stdout)")
        #expect(output.stdout.contains("next call: CUDA_SUCCESS"), "\(output.stdout)")
        #expect(!server.process.stderr.text.contains("connection failed"), "\(server.process.stderr.text)")
    }

    @Test("A pool directory cut off by a partition while the shim's request waits fails the request within the peer timeout")
    func poolDirectoryPartition() throws {
        let harness = try Harness.get()
        let network = try NamespacePair()
        // A directory that takes the request and never answers, as one waiting for capacity does
        // (the kernel still acknowledges, so only a partition makes it silent).
        let script = """
            import socket, sys
            listener = socket.socket()
            listener.bind((sys.argv[1], 0))
            listener.listen()
            print("directory listening on", listener.getsockname()[1], flush=True)
            connection, _ = listener.accept()
            connection.recv(65536)
            print("request received", flush=True)
            while connection.recv(65536):
                pass
            """
        let directory = try network.start(
            in: network.server, [try Harness.toolPath("python3"), "-c", script, NamespacePair.serverAddress])
        defer { directory.stop(terminateFirst: false) }
        let prefix = "directory listening on "
        try #require(
            directory.waitForOutput(where: { $0.contains(prefix) && $0.hasSuffix("\n") }, timeout: .seconds(30)),
            "directory: \(directory.stderr.text)")
        let port = try #require(directory.stdout.text.split(separator: "\n").first { $0.hasPrefix(prefix) }?.dropFirst(prefix.count))

        var environment = Harness.baseEnvironment()
        environment["XPU_POOL"] = "\(NamespacePair.serverAddress):\(port)"
        environment["XPU_POOL_WAIT"] = "10m"
        environment["XPU_PEER_TIMEOUT"] = "3"
        let program = try network.start(in: network.client, [harness.runBinary, "--", harness.program("meminfo")], environment: environment)
        defer { program.stop(terminateFirst: false) }
        try #require(directory.waitForOutput(containing: "request received", timeout: .seconds(60)), "\(program.stderr.text)")
        try network.partition(network.client)
        let output = program.finish(timeout: .seconds(60))
        #expect(output.status != nil && output.status != .exited(0), "the program must fail, not wait for ever: \(output.stderr)")
        #expect(output.stderr.contains("failed") && output.stderr.contains("Connection timed out"), "\(output.stderr)")
        try network.heal(network.client)
    }

    // MARK: - Helpers

    func start(
        _ name: String, _ arguments: [String] = [], through address: String, in network: NamespacePair, harness: Harness,
        peerTimeout: Int? = nil
    ) throws -> ChildProcess {
        var environment = Harness.baseEnvironment()
        if let peerTimeout { environment["XPU_PEER_TIMEOUT"] = "\(peerTimeout)" }
        return try network.start(
            in: network.client, [harness.runBinary, "--server", address, "--", harness.program(name)] + arguments,
            environment: environment)
    }

    func run(_ name: String, through address: String, in network: NamespacePair, harness: Harness) throws -> ProgramOutput {
        try start(name, through: address, in: network, harness: harness).finish(timeout: harness.programTimeout)
    }

    /// The device's free memory as a fresh client in the client namespace sees it.
    func freeMemory(_ server: Server, _ network: NamespacePair, _ harness: Harness) throws -> String {
        let output = try run("meminfo", through: server.address, in: network, harness: harness)
        try #require(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        return try #require(output.stdout.split(separator: "\n").first { $0.hasPrefix("free ") }.map(String.init), "\(output.stdout)")
    }

    /// Scrapes the server's /metrics from inside its namespace until `condition` holds or 30 s pass.
    func scrape(_ server: Server, _ network: NamespacePair, until condition: (MetricsTests.Scrape) -> Bool) throws
        -> MetricsTests.Scrape
    {
        let address = try #require(server.metricsAddress)
        let script = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://\(address)/metrics').read().decode())"
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let output = try network.run(in: network.server, [try Harness.toolPath("python3"), "-c", script])
            try #require(output.status == .exited(0), "scrape failed: \(output.stderr)")
            var scrape = MetricsTests.Scrape(text: output.stdout)
            for line in output.stdout.split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
                scrape.series[String(line[..<space])] = value
            }
            if condition(scrape) || ContinuousClock.now >= deadline { return scrape }
            usleep(200_000)
        }
    }
}
