import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `xpu-remote-server --tenant-processes`: each session in a process of its own, with admission,
/// compute shares and /metrics kept in the server. The same programs give the same output; a
/// tenant whose process is killed (as a driver crash would) ends alone, and its grant comes back.
@Suite("Tenant processes", .serialized)
struct TenantProcessTests {
    static let arguments = ["--tenant-processes"]

    /// The pids of the session processes the server started, in order.
    static func sessionProcesses(_ server: Server) -> [pid_t] {
        server.process.stderr.text.split(separator: "\n").filter { $0.contains("session process started") }
            .compactMap { ComputeShareTests.field("pid", in: $0).flatMap { pid_t($0) } }
    }

    /// Waits until the server has started `count` session processes; returns their pids.
    static func waitForProcesses(_ server: Server, count: Int) throws -> [pid_t] {
        _ = server.process.waitForLog(where: { _ in sessionProcesses(server).count >= count }, timeout: .seconds(30))
        let pids = sessionProcesses(server)
        try #require(pids.count >= count, "session processes \(pids), wanted \(count)\n\(server.process.stderr.text)")
        return pids
    }

    /// The parent pid of a running process, from /proc.
    static func parent(of pid: pid_t) -> pid_t? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix("PPid:") }
            .flatMap { pid_t($0.dropFirst("PPid:".count).trimmingCharacters(in: .whitespaces)) }
    }

    @Test("the differential programs print the same through a server with tenant processes, each session in its own process")
    func differential() throws {
        let harness = try Harness.get()
        let programs = [
            "device_query", "memory", "streams_events", "vector_add", "error_paths", "meminfo", "threads", "async_semantics",
            "bulk_copies", "illegal_address",
        ]
        let server = try Server(harness: harness, arguments: Self.arguments)
        for program in programs {
            let direct = try harness.runDirect(program)
            let remote = try harness.runRemote(program, server: server)
            expectSameBehaviour(program, direct: direct, remote: remote)
        }
        let status = server.stop()
        #expect(status == .exited(0), "the server stops cleanly on SIGTERM: \(status.map(String.init(describing:)) ?? "still running")")
        let log = server.process.stderr.text
        let pids = Self.sessionProcesses(server)
        #expect(pids.count == programs.count, "one process per session: \(pids)\n\(log)")
        #expect(Set(pids).count == pids.count && !pids.contains(server.process.pid), "distinct processes: \(pids)")
        let ended = log.split(separator: "\n").filter { $0.contains("session process ended") }
        #expect(ended.count == programs.count && ended.allSatisfy { $0.contains("status=exit 0") }, "\(ended)")
        #expect(log.split(separator: "\n").filter { $0.contains("session released") }.count == programs.count, "\(log)")
    }

    @Test("a session process killed with SIGKILL ends only its tenant, and its grant comes back")
    func killedProcess() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness, arguments: Self.arguments)  // a 1 GiB simulated device
        defer { server.stop() }
        let stop = harness.workDirectory.appendingPathComponent("tenant-process-stop-\(UUID().uuidString)").path
        let worker = try harness.startRemote("tenant_worker", [stop], server: server)
        defer { worker.stop(terminateFirst: false) }
        try #require(worker.waitForOutput(containing: "ready", timeout: .seconds(60)), "worker:\n\(worker.stdout.text)\n\(worker.stderr.text)")
        let holder = try harness.startRemote("hold_and_copy", ["256"], server: server, environment: ["XPU_SLICE": "mem=700MiB"])
        defer { holder.stop(terminateFirst: false) }
        try #require(holder.waitForOutput(containing: "ready", timeout: .seconds(60)), "holder:\n\(holder.stderr.text)")

        // Each session runs in a process of its own, a child of the server.
        let pids = try Self.waitForProcesses(server, count: 2)
        let (workerProcess, holderProcess) = (pids[0], pids[1])
        for pid in [workerProcess, holderProcess] {
            #expect(Self.parent(of: pid) == server.process.pid, "session process \(pid) is the server's child")
        }
        // The device is granted: a slice of the whole device does not fit now.
        let refused = try harness.runRemote("meminfo", server: server, environment: ["XPU_SLICE": "mem=1GiB"])
        #expect(refused.status != .exited(0) && refused.stdout.contains("CUDA_ERROR_OUT_OF_MEMORY"), "\(refused.stdout)")

        // A driver crash, as the holder's tenant sees it: its process dies at once.
        #expect(kill(holderProcess, SIGKILL) == 0)
        let held = holder.finish(timeout: .seconds(60))
        #expect(held.status != nil && held.status != .exited(0), "the holder's client gets an error: \(held.stdout)\n\(held.stderr)")
        #expect(held.stdout.contains("CUDA_ERROR"), "\(held.stdout)\n\(held.stderr)")

        // The neighbour works on, undisturbed.
        #expect(Self.parent(of: workerProcess) == server.process.pid, "the other session's process lives on")
        #expect(FileManager.default.createFile(atPath: stop, contents: nil))
        let result = worker.finish(timeout: harness.programTimeout)
        #expect(result.status == .exited(0), "worker:\n\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains(" correct"), "\(result.stdout)")

        // The killed session's grant is back: the whole device can be granted again.
        var granted: ProgramOutput?
        for _ in 0..<50 {
            let attempt = try harness.runRemote("meminfo", server: server, environment: ["XPU_SLICE": "mem=1GiB"])
            if attempt.status == .exited(0) {
                granted = attempt
                break
            }
            usleep(100_000)
        }
        #expect(granted != nil, "a slice of the whole device must be granted once the killed session is released")
        let log = server.process.stderr.text
        #expect(
            log.split(separator: "\n").contains { $0.contains("session process ended abnormally") && $0.contains("status=signal 9") },
            "\(log)")
    }

    @Test("compute shares are scheduled and accounted across processes (30/70)")
    func computeShares() throws {
        try ComputeShareTests.checkShares([30, 70], streams: false, serverArguments: Self.arguments)
    }

    @Test("a memory quota is reported and enforced in a session process")
    func memoryQuota() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness, arguments: Self.arguments)
        defer { server.stop() }
        let output = try harness.runRemote("slice_memory", ["64"], server: server, environment: ["XPU_SLICE": "mem=64MiB"])
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.contains("an allocation beyond the quota: CUDA_ERROR_OUT_OF_MEMORY"))
    }

    @Test("/metrics shows the usage session processes report")
    func metrics() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness, arguments: Self.arguments + ["--metrics", "127.0.0.1:0"])
        defer { server.stop() }
        let plain = try MetricsTests.start(harness, server, mib: 64, launches: 100, slice: "mem=256MiB")
        defer { MetricsTests.kill(plain) }
        let shared = try MetricsTests.start(harness, server, mib: 32, launches: 10, slice: "mem=128MiB,compute=30%")
        defer { MetricsTests.kill(shared) }
        let both = try MetricsTests.scrape(server) { scrape in
            scrape.sessions.count == 2
                && scrape.series.filter { $0.key.hasPrefix("xpu_tenant_launches_total{") }.values.sorted() == [10, 100]
                && scrape.series.filter { $0.key.hasPrefix("xpu_tenant_device_seconds_total{") }.values.allSatisfy { $0 > 0 }
        }
        let ids = both.sessions.sorted { Int($0)! < Int($1)! }
        try #require(ids.count == 2, "\(both.text)")
        let (first, second) = ("session=\"\(ids[0])\"", "session=\"\(ids[1])\"")
        #expect(both.value("xpu_tenant_memory_used_bytes", first) == Double(64 << 20), "\(both.text)")
        #expect(both.value("xpu_tenant_memory_used_bytes", second) == Double(32 << 20))
        #expect(both.value("xpu_tenant_launches_total", first) == 100)
        #expect(both.value("xpu_tenant_launches_total", second) == 10)
        #expect((both.value("xpu_tenant_device_seconds_total", first) ?? 0) > 0, "metered by events in the session's process")
        #expect((both.value("xpu_tenant_device_seconds_total", second) ?? 0) > 0, "measured by the server's scheduler")
        #expect(both[#"xpu_device_memory_allocated_ratio{device="0"}"#] == 0.375, "(256 + 128) MiB of 1 GiB")
        #expect(both[#"xpu_device_tenants{device="0"}"#] == 2)

        MetricsTests.kill(plain)
        MetricsTests.kill(shared)
        let none = try MetricsTests.scrape(server) { $0.sessions.isEmpty && $0[#"xpu_device_tenants{device="0"}"#] == 0 }
        #expect(none.sessions.isEmpty, "\(none.text)")
        #expect(none[#"xpu_device_memory_allocated_ratio{device="0"}"#] == 0)
    }

    @Test("over TLS the server relays each session's plaintext to its process: the programs print the same, and a killed process ends only its tenant")
    func tls() throws {
        let harness = try Harness.get()
        let pki = try TransportCertificates.shared.get()
        let server = try TransportSecurityTests.SecureServer(
            harness: harness, Self.arguments + ["--tls-cert", pki.path("server.crt"), "--tls-key", pki.path("server.key")])
        // Bulk copies fill the relay's buffers both ways; error_paths ends with latched errors.
        try Self.checkTransport(harness, server, programs: ["vector_add", "bulk_copies", "error_paths"], ["XPU_TLS_CA": pki.path("ca.crt")])
    }

    @Test("over shared memory (unix:) each session's process maps the rings and goes on where the handshake left them: the programs print the same, and a killed process ends only its tenant")
    func sharedMemory() throws {
        let harness = try Harness.get()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-tp-\(getpid()).sock").path
        let server = try TransportSecurityTests.SecureServer(harness: harness, Self.arguments, listen: "unix:\(path)")
        // Bulk copies wrap both rings many times; async_semantics latches errors in the process.
        try Self.checkTransport(harness, server, programs: ["vector_add", "bulk_copies", "error_paths", "async_semantics"])
    }

    /// Runs `programs` through `server` (one session process each, printing what they print
    /// direct), then kills a session process mid-copy: its client must end with an error it can
    /// report, and the server must serve the next client.
    static func checkTransport(
        _ harness: Harness, _ server: TransportSecurityTests.SecureServer, programs: [String], _ environment: [String: String] = [:]
    ) throws {
        for program in programs {
            let direct = try harness.runDirect(program)
            let remote = try TransportSecurityTests.run(harness, program, server: server.address, environment)
            expectSameBehaviour(program, direct: direct, remote: remote)
        }
        func started() -> [pid_t] {
            server.process.stderr.text.split(separator: "\n").filter { $0.contains("session process started") }
                .compactMap { ComputeShareTests.field("pid", in: $0).flatMap { pid_t($0) } }
        }
        let pids = started()
        #expect(
            pids.count == programs.count && !pids.contains(server.process.pid),
            "one process per session: \(pids)\n\(server.process.stderr.text)")

        var clientEnvironment = Harness.baseEnvironment().merging(environment) { $1 }
        clientEnvironment["XPU_SERVER"] = server.address
        let holder = try ChildProcess(harness.runBinary, ["--", harness.program("hold_and_copy"), "64"], environment: clientEnvironment)
        try #require(holder.waitForOutput(containing: "ready", timeout: .seconds(60)), "\(holder.stderr.text)")
        let victim = try #require(started().last)
        #expect(kill(victim, SIGKILL) == 0)
        let held = holder.finish(timeout: .seconds(60))
        // An error it can report (not a signal: the shim guards SIGPIPE around every TLS call).
        #expect(held.status == .exited(1), "the client gets an error: \(held.status.map(String.init(describing:)) ?? "-")\n\(held.stdout)\n\(held.stderr)")
        #expect(held.stdout.contains("CUDA_ERROR"), "\(held.stdout)\n\(held.stderr)")
        let after = try TransportSecurityTests.run(harness, "meminfo", server: server.address, environment)
        #expect(after.status == .exited(0), "the server keeps serving: \(after.stderr)")
        let log = server.process.stderr.text
        #expect(log.contains("session process ended abnormally") && log.contains("status=signal 9"), "\(log)")
    }

    @Test("RDMA, whose queue pairs cannot follow a session into its process, is refused at startup")
    func unsupportedTransports() throws {
        let harness = try Harness.get()
        let output = try Harness.runTool(
            harness.serverBinary, ["--listen", "rdma://127.0.0.1:0", "--device", "sim", "--tenant-processes"], timeout: .seconds(60))
        #expect(output.status == .exited(2), "\(output.status.map(String.init(describing:)) ?? "timeout")\n\(output.stderr)")
        #expect(output.stderr.contains("--tenant-processes does not support rdma://"), "\(output.stderr)")
    }
}
