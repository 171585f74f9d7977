import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Programs behave the same when the shim (`XPU_POLL_US`) and the server (`--busy-poll-us`)
/// spin for their replies and requests before blocking.
@Suite("End to end: busy-poll", .serialized)
struct BusyPollEndToEndTests {
    @Test("Same output directly and through a server with busy-poll on both ends", arguments: ["memory", "threads", "bulk_copies", "async_semantics"])
    func differential(program: String) throws {
        let harness = try Harness.get()
        let direct = try harness.runDirect(program)
        let server = try Server(harness: harness, arguments: ["--busy-poll-us", "50"])
        let remote: ProgramOutput
        do {
            remote = try harness.runRemote(program, server: server, environment: ["XPU_POLL_US": "50"])
        } catch {
            server.stop()
            throw error
        }
        expectSameBehaviour(program + " (busy-poll)", direct: direct, remote: remote)
        // The spinning session thread still ends on SIGTERM within the grace period.
        let status = server.stop()
        #expect(status != nil && status != .signaled(SIGKILL), "stderr:\n\(server.process.stderr.text)")
    }
}
