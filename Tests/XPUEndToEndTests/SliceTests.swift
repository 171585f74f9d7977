import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Memory slices: the quota is what a tenant sees and gets, and a slice is granted only if it
/// fits what the device has not granted yet.
@Suite("Slices", .serialized)
struct SliceTests {
    @Test("a memory quota is reported and enforced")
    func memoryQuota() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let output = try harness.runRemote("slice_memory", ["64"], server: server, environment: ["XPU_SLICE": "mem=64MiB"])
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.contains("an allocation beyond the quota: CUDA_ERROR_OUT_OF_MEMORY"))
    }

    @Test("slices that do not fit the device are refused at cuInit, and fit again once released")
    func admission() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)  // a 1 GiB simulated device
        defer { server.stop() }
        let holder = try harness.startRemote("hold_and_copy", ["256"], server: server, environment: ["XPU_SLICE": "mem=700MiB"])
        defer { holder.stop(terminateFirst: false) }
        try #require(holder.waitForOutput(containing: "ready", timeout: .seconds(120)), "holder:\n\(holder.stderr.text)")

        let refused = try harness.runRemote("meminfo", server: server, environment: ["XPU_SLICE": "mem=700MiB"])
        #expect(refused.status != .exited(0))
        #expect(refused.stdout.contains("CUDA_ERROR_OUT_OF_MEMORY"), "stdout:\n\(refused.stdout)")
        #expect(refused.stderr.contains("does not fit"), "the client's log gives the reason:\n\(refused.stderr)")
        #expect(server.process.stderr.text.contains("slice refused"))

        let small = try harness.runRemote("meminfo", server: server, environment: ["XPU_SLICE": "mem=200MiB"])
        #expect(small.status == .exited(0), "a slice that fits is granted:\n\(small.stdout)\n\(small.stderr)")

        holder.signalGroup(SIGKILL)
        _ = holder.wait(timeout: .seconds(10))
        #expect(server.waitUntilSessionsReleased(), "the holder's session must be released when it dies")
        let granted = try harness.runRemote("meminfo", server: server, environment: ["XPU_SLICE": "mem=700MiB"])
        #expect(granted.status == .exited(0), "the holder's slice must be released when it dies:\n\(granted.stderr)")
    }

    @Test("a malformed slice request is refused with the reason")
    func malformed() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let output = try harness.runRemote("meminfo", server: server, environment: ["XPU_SLICE": "mem=lots"])
        #expect(output.status != .exited(0))
        #expect(output.stderr.contains("mem='lots'"), "stderr:\n\(output.stderr)")
    }
}
