import Foundation
import Testing
import XPUKube

/// A container's view of a slice prepared by the DRA driver, without a container: the CDI spec
/// xpu-kube writes for a claim is applied to a process as a runtime would (its variables set; its
/// bind mounts stood in for by symlinks under a directory that plays the container's root, with
/// the variables' paths moved under it), and an unmodified CUDA program run that way reaches a
/// server through the pool, sees exactly its slice, and authenticates with the token file.
@Suite("CDI container view", .serialized)
struct CDIContainerTests {
    @Test("a CUDA program with a claim's CDI edits gets its slice from the pool, token read from the mounted file")
    func claimEditsRunACUDAProgram() throws {
        let harness = try Harness.get()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-cdi-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }

        // The tenant's token "test", known to the server only as its SHA-256 (proto/SECURITY.md).
        let policy = work.appendingPathComponent("policy.json").path
        try #"{"tenants":[{"name":"team-a","tokenSHA256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","maxPriority":"high"}]}"#
            .write(toFile: policy, atomically: true, encoding: .utf8)
        let token = work.appendingPathComponent("node-token").path
        try "test\n".write(toFile: token, atomically: true, encoding: .utf8)

        let directory = try PoolDirectory(harness: harness, listen: "127.0.0.1:0", policy: "bestfit")
        defer { directory.process.stop() }
        let server = try PoolServer(harness: harness, memory: "2GiB", pool: directory.address, arguments: ["--policy", policy])
        defer { server.process.stop() }
        try directory.requireRegistered([server])

        let shim = harness.dist.appendingPathComponent("lib").path
        let injection = SliceInjection(
            target: .pool(directory.address), shape: SliceShape(memoryBytes: 512 << 20, computePercent: 30, priority: .high), hasToken: true)
        let spec = CDISpec(
            deviceName: "5b0c2f9e-1111-4222-8333-444455556666", injection: injection,
            mounts: SliceInjection.shimMounts(shimDirectory: shim) + [.init(hostPath: token, containerPath: SliceInjection.ContainerPath.token)])

        // The runtime's part: mounts (here symlinks under `root`), then the variables.
        let root = work.appendingPathComponent("root").path
        let edits = try #require(spec.devices.first?.containerEdits)
        for mount in edits.mounts ?? [] {
            let path = root + mount.containerPath
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: mount.hostPath)
        }
        var environment = Harness.baseEnvironment()
        environment["LD_LIBRARY_PATH"] = nil
        for entry in edits.env ?? [] {
            let equals = try #require(entry.firstIndex(of: "="))
            var value = String(entry[entry.index(after: equals)...])
            for containerPath in [SliceInjection.ContainerPath.library, SliceInjection.ContainerPath.secrets] {
                value = value.replacingOccurrences(of: containerPath, with: root + containerPath)
            }
            environment[String(entry[..<equals])] = value
        }
        #expect(environment["XPU_TOKEN"] == nil)

        let output = try ChildProcess(harness.program("meminfo"), [], environment: environment).finish(timeout: harness.programTimeout)
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)\n\(directory.process.stderr.text)")
        #expect(output.stdout.contains("total \(512 << 20)"), "\(output.stdout)")
        #expect(server.waitForLog("team-a", timeout: .seconds(10)), "\(server.process.stderr.text)")

        // A token file that cannot be read is refused at cuInit, not sent empty.
        environment["XPU_TOKEN_FILE"] = work.appendingPathComponent("missing").path
        let refused = try ChildProcess(harness.program("meminfo"), [], environment: environment).finish(timeout: harness.programTimeout)
        #expect(refused.status != .exited(0))
        #expect(refused.stderr.contains("XPU_TOKEN_FILE"), "\(refused.stderr)")
    }
}
