import Testing

/// Behaviour of the shim that has no direct counterpart on a driver: fork and unserved calls.
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
}
