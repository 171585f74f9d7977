import Foundation
import Testing

/// Behaviour of the shim that has no direct counterpart on a driver: fork, unserved calls, and
/// what queueing a launch costs the application.
@Suite("Shim behaviour")
struct ShimBehaviourTests {
    @Test("a forked child opens its own session; the parent's survives")
    func fork() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let output = try harness.runRemote("fork_session", server: server)
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.contains("child before cuInit: CUDA_ERROR_NOT_INITIALIZED"))
        #expect(output.stdout.contains("child: round trip ok"))
        #expect(output.stdout.contains("parent: round trip ok"))
    }

    @Test("an unserved entry point fails with NOT_SUPPORTED and is logged once")
    func unsupported() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let output = try harness.runRemote("unsupported", server: server)
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        let logLines = output.stderr.split(separator: "\n").filter { $0.contains("cuArrayCreate_v2 is not supported") }
        #expect(logLines.count == 1, "stderr:\n\(output.stderr)")
    }

    @Test("queueing a launch allocates nothing in the application's process, with or without parameters")
    func launchesAllocateNothing() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        func counts(_ output: ProgramOutput) -> [Int] {
            output.stdout.split(separator: "\n").filter { $0.hasPrefix("allocations during") }
                .compactMap { Int($0.split(separator: " ").last ?? "") }
        }
        let output = try harness.runRemote("launch_allocations", server: server)
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        #expect(counts(output) == [0, 0], "\(output.stdout)")
        // The counter counts: the same program directly on the simulated device allocates at
        // least a parameter block per launch with parameters on the launching thread (its
        // stream worker allocates too, but may not get to run while the launches are queued).
        let direct = try harness.runDirect("launch_allocations")
        #expect(counts(direct).count == 2 && counts(direct)[0] >= 10_000, "\(direct.stdout)")
    }
}

/// The threads xpu-remote adds to a process carry names of their own, so that an operator reading
/// `top -H` or /proc (and `bench/latency-bandwidth/launch-path/placement.sh`) can tell them apart.
@Suite("Thread names")
struct ThreadNameTests {
    @Test("the shim's flusher, the server's session thread and the device's stream worker are named")
    func named() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let client = try harness.startRemote("thread_names", server: server)
        defer { _ = client.stop(terminateFirst: false) }
        try #require(client.waitForOutput(containing: "ready", timeout: .seconds(60)), "\(client.stderr.text)")
        let clientThreads = client.stdout.text.split(separator: "\n").filter { $0.hasPrefix("thread ") }
            .map { $0.dropFirst("thread ".count) }
        #expect(clientThreads.contains("xpu-flush"), "\(clientThreads)")
        let serverThreads = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(server.process.pid)/task")
            .compactMap { try? String(contentsOfFile: "/proc/\(server.process.pid)/task/\($0)/comm", encoding: .utf8) }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(serverThreads.contains("xpu-accept"), "\(serverThreads)")
        #expect(serverThreads.contains { $0.hasPrefix("xpu-session-") }, "\(serverThreads)")
        #expect(serverThreads.contains("xpusim-stream"), "\(serverThreads)")
    }
}

/// LZ4 is negotiated and used where it pays, and switching it off changes nothing but the bytes.
@Suite("Compression")
struct CompressionTests {
    @Test("compressible copies travel compressed both ways; XPU_COMPRESSION=off sends them raw")
    func compressedCopies() throws {
        let harness = try Harness.get()
        let direct = try harness.runDirect("bulk_copies")
        for setting in ["on", "off"] {
            let server = try Server(harness: harness)
            let remote = try harness.runRemote("bulk_copies", server: server, environment: ["XPU_COMPRESSION": setting])
            expectSameBehaviour("bulk_copies (compression \(setting))", direct: direct, remote: remote)
            server.stop()
            let log = server.process.stderr.text
            let received = Self.counter("compressedChunksReceived", in: log)
            let sent = Self.counter("compressedChunksSent", in: log)
            if setting == "on" {
                #expect(received > 0 && sent > 0, "compressed chunks in/out: \(received)/\(sent)\n\(log)")
            } else {
                #expect(received == 0 && sent == 0, "compressed chunks in/out with compression off: \(received)/\(sent)")
            }
        }
    }

    @Test(
        "copies move in place on the simulated device, and through staging with --staged-copies, with the same results",
        arguments: ["bulk_copies", "bulk_ordering"])
    func inPlaceAndStagedCopies(program: String) throws {
        let harness = try Harness.get()
        let direct = try harness.runDirect(program)
        for staged in [false, true] {
            let server = try Server(harness: harness, arguments: staged ? ["--staged-copies"] : [])
            for setting in ["on", "off"] {
                let remote = try harness.runRemote(program, server: server, environment: ["XPU_COMPRESSION": setting])
                expectSameBehaviour("\(program) (\(staged ? "staged" : "in place"), compression \(setting))", direct: direct, remote: remote)
            }
            server.stop()
            let log = server.process.stderr.text
            let moved = Self.counter("directChunks", in: log)
            // Zero-filled chunks (both programs copy some, compressed when compression is on) are
            // the driver's memset on the staged path, inflated in place otherwise.
            let set = Self.counter("memsetChunks", in: log)
            if staged {
                #expect(moved == 0, "chunks moved in place with --staged-copies: \(moved)")
                #expect(set > 0, "no zero chunk became a memset with --staged-copies\n\(log)")
            } else {
                #expect(moved > 0, "no chunk moved in place on the simulated device\n\(log)")
                #expect(set == 0, "memset chunks on the in-place path: \(set)")
            }
        }
    }

    /// The value of `name=N` in the server's "session released" log line (summed over sessions).
    static func counter(_ name: String, in log: String) -> Int {
        log.split(separator: "\n").filter { $0.contains("session released") }.reduce(0) { total, line in
            guard let range = line.range(of: "\(name)=") else { return total }
            return total + (Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0)
        }
    }
}
