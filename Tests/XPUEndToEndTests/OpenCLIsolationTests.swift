import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A killed OpenCL tenant's buffers are released on the server's platform (PoCL holds buffer
/// memory in the server's process, so the server's resident memory shows it), and a tenant's
/// compute share reaches the server's scheduler, which charges its kernels. A foreign handle is
/// refused server-side in `OpenCLSessionTests`, and the accounting is checked exactly there.
/// Needs `scripts/build.sh` and PoCL, as `OpenCLTests`.
@Suite("OpenCL isolation and shares", .serialized)
struct OpenCLIsolationTests {
    /// The server's resident memory in bytes (VmRSS).
    static func residentBytes(of pid: pid_t) throws -> UInt64 {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        let kilobytes = try #require(UInt64(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? ""))
        return kilobytes << 10
    }

    @Test("a tenant killed while it holds a 256 MiB buffer leaves nothing of it on the server")
    func killedTenantFreesItsBuffers() throws {
        let harness = try Harness.get()
        let setup = try OpenCLTests.setup.get()
        let server = try OpenCLTests.openCLServer(harness)
        let before = try Self.residentBytes(of: server.process.pid)
        let holder = try ChildProcess(
            setup.programs["hold_buffer"]!, ["256"], environment: OpenCLTests.remoteEnvironment(setup, server: server))
        defer { holder.stop(terminateFirst: false) }
        try #require(holder.waitForOutput(containing: "ready", timeout: .seconds(120)), "\(holder.stdout.text)\n\(holder.stderr.text)")
        let holding = try Self.residentBytes(of: server.process.pid)
        #expect(holding >= before + (200 << 20), "resident \(holding >> 20) MiB holding, \(before >> 20) MiB before")
        holder.signalGroup(SIGKILL)
        #expect(holder.wait(timeout: .seconds(10)) == .signaled(SIGKILL))
        #expect(server.waitUntilSessionsReleased(), "the killed tenant's session must be released:\n\(server.process.stderr.text)")
        let after = try Self.residentBytes(of: server.process.pid)
        #expect(after + (200 << 20) <= holding, "resident \(after >> 20) MiB after the kill, \(holding >> 20) MiB holding")
    }

    @Test("a tenant with compute=30% is scheduled and charged device time; one without a share is not")
    func shareReachesTheScheduler() throws {
        let harness = try Harness.get()
        let setup = try OpenCLTests.setup.get()
        let server = try OpenCLTests.openCLServer(harness)
        // A window that starts at once: a few batches of short kernels, then the tenant ends.
        let start = String(Int(Date().timeIntervalSince1970 * 1000))
        for slice in ["compute=30%", nil] {
            let tenant = try ChildProcess(
                setup.programs["compute_share"]!, [start, "300", "20000", "4"],
                environment: OpenCLTests.remoteEnvironment(setup, server: server, slice: slice)
            ).finish(timeout: harness.programTimeout)
            #expect(tenant.status == .exited(0), "\(tenant.stdout)\n\(tenant.stderr)")
        }
        #expect(server.waitUntilSessionsReleased(), "\(server.process.stderr.text)")
        let released = server.process.stderr.text.split(separator: "\n").filter { $0.contains("session released") }
        let scheduled = try #require(released.first { $0.contains("compute=30.0%") }, "\(released)")
        let charged = try #require(
            scheduled.split(separator: " ").first { $0.hasPrefix("deviceNanoseconds=") }.flatMap { UInt64($0.dropFirst("deviceNanoseconds=".count)) })
        #expect(charged > 0, "\(scheduled)")
        let unscheduled = try #require(released.first { $0.contains("compute=none") }, "\(released)")
        #expect(unscheduled.contains("deviceNanoseconds=0"), "\(unscheduled)")
    }
}
