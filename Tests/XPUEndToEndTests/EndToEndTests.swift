import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Differential end-to-end tests: each C program in Tests/programs runs directly on the simulated
/// device (`libxpusim.so` as `libcuda.so.1`) and through shim -> `xpu-remote-server` -> the same
/// simulated device, and both runs must print the same thing and end the same way.
///
/// Needs `scripts/build.sh` to have filled `dist/` (or `XPU_DIST`).
@Suite("End to end: direct vs remote", .serialized)
struct EndToEndTests {
    @Test(
        "Same output directly and through the server",
        arguments: [
            "device_query", "memory", "streams_events", "vector_add", "error_paths", "meminfo", "threads", "async_semantics", "bulk_copies",
            "bulk_ordering", "illegal_address", "pointer_capture", "coherent_memory",
        ])
    func differential(program: String) throws {
        let harness = try Harness.get()
        let direct = try harness.runDirect(program)
        let server = try Server(harness: harness)
        let remote: ProgramOutput
        let strict: ProgramOutput
        do {
            remote = try harness.runRemote(program, server: server)
            // XPU_STRICT_SYNC=1 makes every call wait for its reply: same behaviour, only slower.
            strict = try harness.runRemote(program, server: server, environment: ["XPU_STRICT_SYNC": "1"])
        } catch {
            server.stop()
            throw error
        }
        expectSameBehaviour(program, direct: direct, remote: remote)
        expectSameBehaviour(program + " (strict)", direct: direct, remote: strict)
        expectCleanStop(server)
    }

    @Test("Two clients at once get the same results as alone")
    func concurrentClients() throws {
        let harness = try Harness.get()
        let expected = [
            "memory": try harness.runDirect("memory"),
            "vector_add": try harness.runDirect("vector_add"),
        ]
        let server = try Server(harness: harness)
        defer { server.stop() }
        let names = ["memory", "vector_add", "memory", "vector_add"]
        var clients: [ChildProcess] = []
        defer { for client in clients { client.stop(terminateFirst: false) } }
        // Each client gets a memory slice: cuMemGetInfo then reports that client's own memory, so
        // memory.c's "free decreased" checks are not disturbed by the other clients' frees.
        for name in names {
            clients.append(try harness.startRemote(name, server: server, environment: ["XPU_SLICE": "mem=200MiB"]))
        }
        let outputs = clients.map { $0.finish(timeout: harness.programTimeout) }
        for (name, output) in zip(names, outputs) {
            expectSameBehaviour(name, direct: expected[name]!, remote: output)
        }
        expectCleanStop(server)
    }

    @Test(
        "A client killed mid-copy, or with calls still queued, gets all its memory freed",
        arguments: ["hold_and_copy", "launch_storm"])
    func killedClientReleasesMemory(program: String) throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }

        let free0 = try #require(try freeMemory(harness, server), "meminfo before")

        let holder = try harness.startRemote(program, ["256"], server: server)
        defer { holder.stop(terminateFirst: false) }
        try #require(
            holder.waitForOutput(containing: "ready", timeout: .seconds(120)),
            "\(program) never said ready\nstdout:\n\(holder.stdout.text)\nstderr:\n\(holder.stderr.text)")

        let held = try #require(try freeMemory(harness, server), "meminfo while held")
        #expect(free0 >= held + 256 << 20, "free while 256 MiB is held: \(held), before: \(free0)")

        holder.signalGroup(SIGKILL)
        #expect(holder.wait(timeout: .seconds(10)) == .signaled(SIGKILL))

        #expect(server.waitUntilSessionsReleased(), "the killed client's session must be released")
        let after = try freeMemory(harness, server)
        #expect(
            after == free0, "free memory after the kill: \(after.map(String.init) ?? "?"), before: \(free0)")
        expectCleanStop(server)
    }

    /// Free bytes as the remote `meminfo` program reports them.
    private func freeMemory(_ harness: Harness, _ server: Server) throws -> Int? {
        let output = try harness.runRemote("meminfo", server: server)
        guard output.status == .exited(0) else {
            Issue.record(
                "meminfo ended with \(output.status.map(String.init(describing:)) ?? "timeout")\n\(output.stdout)\n\(output.stderr)"
            )
            return nil
        }
        for line in output.stdout.split(separator: "\n") where line.hasPrefix("free ") {
            return Int(line.dropFirst("free ".count))
        }
        Issue.record("meminfo printed no free line:\n\(output.stdout)")
        return nil
    }

    /// The server must end on SIGTERM within the grace period, not need SIGKILL.
    private func expectCleanStop(_ server: Server, sourceLocation: SourceLocation = #_sourceLocation) {
        let status = server.stop()
        #expect(
            status != nil && status != .signaled(SIGKILL),
            "xpu-remote-server did not stop on SIGTERM (\(status.map(String.init(describing:)) ?? "still running"))\nstderr:\n\(server.process.stderr.text)",
            sourceLocation: sourceLocation)
    }
}
