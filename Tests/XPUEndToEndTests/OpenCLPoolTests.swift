import Foundation
import Testing

/// One pool directory with a CUDA server (the simulated device) and an OpenCL server (PoCL): each
/// kind of client is placed on the server of its API family, and an OpenCL request is refused
/// when no OpenCL server has room or none is registered. Needs `scripts/build.sh` and PoCL, as
/// `OpenCLTests`.
@Suite("OpenCL in the pool", .serialized)
struct OpenCLPoolTests {
    /// An OpenCL program's environment: the ICD alone, placed by the pool at `pool`.
    static func poolEnvironment(_ setup: OpenCLTests.Setup, pool: String, slice: String) -> [String: String] {
        var environment = Harness.baseEnvironment()
        environment["OCL_ICD_VENDORS"] = setup.vendors
        environment["XPU_POOL"] = pool
        environment["XPU_SLICE"] = slice
        environment["XPU_LOG"] = "info"
        return environment
    }

    @Test("OpenCL and CUDA requests each go to a server of their family; an OpenCL request with no room there is refused")
    func placesByFamily() throws {
        let harness = try Harness.get()
        let setup = try OpenCLTests.setup.get()
        let directory = try PoolDirectory(harness: harness, listen: "127.0.0.1:0", policy: "bestfit")
        let cuda = try PoolServer(harness: harness, memory: "1GiB", pool: directory.address)
        let openCL = try OpenCLTests.openCLServer(harness, arguments: ["--pool", directory.address])
        try directory.requireRegistered([cuda])
        try #require(
            directory.waitForLog("server registered \(openCL.address)", timeout: .seconds(30)),
            "\(directory.process.stderr.text)\n\(openCL.process.stderr.text)")

        let tenant = try ChildProcess(
            setup.programs["quota_tenant"]!, [], environment: Self.poolEnvironment(setup, pool: directory.address, slice: "mem=64MiB")
        ).finish(timeout: harness.programTimeout)
        #expect(tenant.status == .exited(0), "\(tenant.stdout)\n\(tenant.stderr)")
        #expect(tenant.stdout.hasPrefix("global memory: 67108864\n"), "\(tenant.stdout)")
        #expect(tenant.stderr.contains("pool placed XPU_SLICE='mem=64MiB' on \(openCL.address)"), "\(tenant.stderr)")

        let program = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "mem=64MiB")
        #expect(program.status == .exited(0), "\(program.stdout)\n\(program.stderr)")
        #expect(program.stderr.contains("pool placed XPU_SLICE='mem=64MiB' on \(cuda.address)"), "\(program.stderr)")

        // More than PoCL's device holds: the CUDA server's free memory is not offered either.
        let tooBig = try ChildProcess(
            setup.programs["quota_tenant"]!, [], environment: Self.poolEnvironment(setup, pool: directory.address, slice: "mem=64TiB")
        ).finish(timeout: harness.programTimeout)
        #expect(tooBig.status != .exited(0))
        #expect(tooBig.stdout.hasPrefix("no device"), "\(tooBig.stdout)")
        #expect(tooBig.stderr.contains("nothing fits 'mem=64TiB'"), "\(tooBig.stderr)")
        #expect(tooBig.stderr.contains("free on opencl servers: \(openCL.address)#0"), "\(tooBig.stderr)")
        #expect(!tooBig.stderr.contains(cuda.address), "\(tooBig.stderr)")
    }

    @Test("an OpenCL request to a pool with CUDA servers only is refused, saying so")
    func noOpenCLServer() throws {
        let harness = try Harness.get()
        let setup = try OpenCLTests.setup.get()
        let directory = try PoolDirectory(harness: harness, listen: "127.0.0.1:0", policy: "bestfit")
        let cuda = try PoolServer(harness: harness, memory: "1GiB", pool: directory.address)
        try directory.requireRegistered([cuda])
        let refused = try ChildProcess(
            setup.programs["quota_tenant"]!, [], environment: Self.poolEnvironment(setup, pool: directory.address, slice: "mem=64MiB")
        ).finish(timeout: harness.programTimeout)
        #expect(refused.status != .exited(0))
        #expect(refused.stderr.contains("no opencl server is registered with the pool (servers by API: cuda 1, opencl 0)"), "\(refused.stderr)")
        // XPU_API naming the other family is the library's own error, before asking the pool.
        var environment = Self.poolEnvironment(setup, pool: directory.address, slice: "mem=64MiB")
        environment["XPU_API"] = "cuda"
        let contradicted = try ChildProcess(setup.programs["quota_tenant"]!, [], environment: environment).finish(timeout: harness.programTimeout)
        #expect(contradicted.status != .exited(0))
        #expect(contradicted.stderr.contains("XPU_API=cuda asks the pool for another API than this library's (opencl)"), "\(contradicted.stderr)")
    }
}
