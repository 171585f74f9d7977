import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// One program, several servers: `XPU_SERVER` lists them, every device of every server is a
/// device of the program (server by server), `CUDA_VISIBLE_DEVICES` picks and orders them, and
/// each call reaches the server that owns what it names. The servers differ in memory (1 GiB and
/// 2 GiB) so the program's output tells them apart; the simulated device's UUID ends with its
/// ordinal on its server.
@Suite("Multi-server", .serialized)
struct MultiServerTests {
    @Test("a client uses two devices on two servers in one program")
    func twoServers() throws {
        let harness = try Harness.get()
        let first = try PoolServer(harness: harness, memory: "1GiB", pool: nil)
        defer { first.process.stop() }
        let second = try PoolServer(harness: harness, memory: "2GiB", pool: nil)
        defer { second.process.stop() }

        let run = try runClient(harness, ["2"], servers: [first, second])
        #expect(run.status == .exited(0), "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("devices: 2"), "\(run.stdout)")
        #expect(run.stdout.contains("device 0: uuid ends 00, 1024 MiB"), "\(run.stdout)")
        #expect(run.stdout.contains("device 1: uuid ends 00, 2048 MiB"), "\(run.stdout)")
        // Two servers, two devices: their UUIDs differ (each server names its simulated node).
        let uuids = run.stdout.split(separator: "\n").compactMap { line in
            line.range(of: ", uuid ").map { String(line[$0.upperBound...]) }
        }
        #expect(uuids.count == 2 && Set(uuids).count == 2, "\(run.stdout)")
        for ordinal in 0..<2 {
            #expect(run.stdout.contains("device \(ordinal) vadd: ok"), "\(run.stdout)")
            #expect(run.stdout.contains("device \(ordinal) memory: its own"), "\(run.stdout)")
        }
        #expect(run.stdout.contains("device 0's function in device 1's context: CUDA_ERROR_INVALID_HANDLE"), "\(run.stdout)")
        // Each server served its own session of the program, and released it.
        for server in [first, second] {
            #expect(server.waitForLog("session released", timeout: .seconds(10)), "\(server.process.stderr.text)")
            #expect(server.process.stderr.text.contains("multi_device"), "\(server.process.stderr.text)")
        }

        // The single form is unchanged: one server, its devices only.
        let alone = try runClient(harness, ["1"], servers: [second])
        #expect(alone.status == .exited(0), "\(alone.stdout)\n\(alone.stderr)")
        #expect(alone.stdout.contains("device 0: uuid ends 00, 2048 MiB"), "\(alone.stdout)")

        // One unreachable server fails cuInit, as a machine without its GPU would.
        let unreachable = try runClient(harness, ["2"], servers: [first], extraServer: "127.0.0.1:1")
        #expect(unreachable.status != .exited(0))
        #expect(unreachable.stdout.contains("CUDA_ERROR_NO_DEVICE"), "\(unreachable.stdout)\n\(unreachable.stderr)")
    }

    @Test("CUDA_VISIBLE_DEVICES picks and orders the combined devices; copies between servers are staged")
    func visibleDevices() throws {
        let harness = try Harness.get()
        let first = try PoolServer(harness: harness, memory: "1GiB", pool: nil)
        defer { first.process.stop() }
        let second = try PoolServer(harness: harness, memory: "2GiB", pool: nil, devices: 2)
        defer { second.process.stop() }

        // Three devices: the first server's, then the second's two.
        let all = try runClient(harness, ["3"], servers: [first, second])
        #expect(all.status == .exited(0), "\(all.stdout)\n\(all.stderr)")
        #expect(all.stdout.contains("device 0: uuid ends 00, 1024 MiB"), "\(all.stdout)")
        #expect(all.stdout.contains("device 1: uuid ends 00, 2048 MiB"), "\(all.stdout)")
        #expect(all.stdout.contains("device 2: uuid ends 01, 2048 MiB"), "\(all.stdout)")

        // "2,0": the second server's second device first. Their memory lies at different
        // addresses, so a copy between them names each end unambiguously: staged through the client.
        let reordered = try runClient(harness, ["2", "peer"], servers: [first, second], visible: "2,0")
        #expect(reordered.status == .exited(0), "\(reordered.stdout)\n\(reordered.stderr)")
        #expect(reordered.stdout.contains("device 0: uuid ends 01, 2048 MiB"), "\(reordered.stdout)")
        #expect(reordered.stdout.contains("device 1: uuid ends 00, 1024 MiB"), "\(reordered.stdout)")
        #expect(reordered.stdout.contains("device 1's pattern copied to device 0: yes"), "\(reordered.stdout)")
        #expect(reordered.stdout.contains("device 0's bytes copied to device 1 (async): yes"), "\(reordered.stdout)")
        #expect(reordered.stdout.contains("device 0 can access device 1 as a peer: 0"), "\(reordered.stdout)")
        #expect(reordered.stdout.contains("device 1's bytes copied to device 0 with cuMemcpyPeer: yes"), "\(reordered.stdout)")
        #expect(reordered.stdout.contains("device 0's bytes copied to device 1 with cuMemcpyPeerAsync: yes"), "\(reordered.stdout)")

        // As CUDA reads it, the list ends at the first invalid entry: "1,7,0" shows device 1 only.
        let truncated = try runClient(harness, ["1"], servers: [first, second], visible: "1,7,0")
        #expect(truncated.status == .exited(0), "\(truncated.stdout)\n\(truncated.stderr)")
        #expect(truncated.stdout.contains("device 0: uuid ends 00, 2048 MiB"), "\(truncated.stdout)")

        // By UUID, as nvidia-smi prints it: the whole UUID, or a prefix that names one device.
        let uuids = all.stdout.split(separator: "\n").compactMap { line -> String? in
            guard let range = line.range(of: ", uuid ") else { return nil }
            let hex = Array(line[range.upperBound...])
            guard hex.count == 32 else { return nil }
            let groups = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(hex[$0]) }
            return "GPU-" + groups.joined(separator: "-")
        }
        try #require(uuids.count == 3, "\(all.stdout)")
        let byUUID = try runClient(harness, ["2"], servers: [first, second], visible: "\(uuids[2]),0")
        #expect(byUUID.status == .exited(0), "\(byUUID.stdout)\n\(byUUID.stderr)")
        #expect(byUUID.stdout.contains("device 0: uuid ends 01, 2048 MiB"), "\(byUUID.stdout)")
        #expect(byUUID.stdout.contains("device 1: uuid ends 00, 1024 MiB"), "\(byUUID.stdout)")
        // Up to the server's node bytes: only the first server's device has that prefix.
        let prefix = String(uuids[0].prefix(32))
        let byPrefix = try runClient(harness, ["1"], servers: [first, second], visible: prefix)
        #expect(byPrefix.status == .exited(0), "\(prefix)\n\(byPrefix.stdout)\n\(byPrefix.stderr)")
        #expect(byPrefix.stdout.contains("device 0: uuid ends 00, 1024 MiB"), "\(byPrefix.stdout)")
        // A prefix every device shares names none: the list ends there, and nothing is visible.
        let ambiguous = try runClient(harness, ["0"], servers: [first, second], visible: String(uuids[0].prefix(12)))
        #expect(ambiguous.stdout.contains("cuInit(0) -> CUDA_ERROR_NO_DEVICE"), "\(ambiguous.stdout)\n\(ambiguous.stderr)")

        // Nothing visible: cuInit answers CUDA_ERROR_NO_DEVICE.
        let hidden = try runClient(harness, ["0"], servers: [first, second], visible: "")
        #expect(hidden.stdout.contains("cuInit(0) -> CUDA_ERROR_NO_DEVICE"), "\(hidden.stdout)\n\(hidden.stderr)")
    }

    @Test("a server lost mid-run: its calls fail with DEVICE_UNAVAILABLE, the other server serves on")
    func serverLostMidRun() throws {
        let harness = try Harness.get()
        let first = try PoolServer(harness: harness, memory: "1GiB", pool: nil)
        defer { first.process.stop() }
        let second = try PoolServer(harness: harness, memory: "2GiB", pool: nil)
        defer { second.process.stop() }
        let go = harness.workDirectory.appendingPathComponent("server-loss-go-\(getpid())").path
        var environment = Harness.baseEnvironment()
        environment["XPU_SERVER"] = [first, second].map(\.address).joined(separator: ",")
        let client = try ChildProcess(harness.runBinary, ["--", harness.program("server_loss"), go], environment: environment)
        defer { client.stop(terminateFirst: false) }
        try #require(client.waitForOutput(containing: "ready", timeout: .seconds(60)), "\(client.stdout.text)\n\(client.stderr.text)")
        first.process.signalGroup(SIGKILL)
        _ = first.process.stop(terminateFirst: false)
        _ = FileManager.default.createFile(atPath: go, contents: nil)
        let run = client.finish(timeout: harness.programTimeout)
        #expect(run.status == .exited(0), "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("copy to the lost server: CUDA_ERROR_DEVICE_UNAVAILABLE"), "\(run.stdout)")
        #expect(run.stdout.contains("synchronize on the lost server: CUDA_ERROR_DEVICE_UNAVAILABLE"), "\(run.stdout)")
        #expect(run.stdout.contains("the other server's data: yes"), "\(run.stdout)")
        #expect(run.stdout.contains("the other server still allocates and sets: yes"), "\(run.stdout)")
        #expect(second.waitForLog("session released", timeout: .seconds(10)), "\(second.process.stderr.text)")
    }

    /// Runs multi_device with `XPU_SERVER` naming `servers` in order (and `extraServer` after them).
    private func runClient(
        _ harness: Harness, _ arguments: [String], servers: [PoolServer], extraServer: String? = nil, visible: String? = nil
    ) throws -> ProgramOutput {
        var environment = Harness.baseEnvironment()
        environment["XPU_SERVER"] = (servers.map(\.address) + [extraServer].compactMap { $0 }).joined(separator: ",")
        environment["CUDA_VISIBLE_DEVICES"] = visible
        return try ChildProcess(harness.runBinary, ["--", harness.program("multi_device")] + arguments, environment: environment)
            .finish(timeout: harness.programTimeout)
    }
}
