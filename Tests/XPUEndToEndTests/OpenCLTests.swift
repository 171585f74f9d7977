import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// OpenCL through the ICD (dist/lib/libxpu-opencl.so) against `xpu-remote-server --device
/// opencl:pocl`: the C programs in Tests/programs/opencl, compiled against Khronos' headers and
/// linked against the system's ICD loader, run directly on PoCL and through the server.
/// Needs PoCL and the ICD loader (scripts/lib/prereqs.sh installs them).
@Suite("OpenCL end to end", .serialized)
struct OpenCLTests {
    /// The compiled programs and a vendors directory whose one `.icd` file names the ICD.
    struct Setup: Sendable {
        let programs: [String: String]
        let vendors: String
    }

    static let setup: Result<Setup, E2EError> = Result { () throws(E2EError) in
        let harness = try Harness.shared.get()
        let work = harness.workDirectory.appendingPathComponent("opencl")
        let vendors = work.appendingPathComponent("vendors")
        do {
            try FileManager.default.createDirectory(at: vendors, withIntermediateDirectories: true)
            let library = harness.dist.appendingPathComponent("lib/libxpu-opencl.so").path
            guard FileManager.default.fileExists(atPath: library) else { throw E2EError("missing \(library): run scripts/build.sh first") }
            try "\(library)\n".write(to: vendors.appendingPathComponent("xpu.icd"), atomically: true, encoding: .utf8)
        } catch let error as E2EError {
            throw error
        } catch {
            throw E2EError("cannot prepare \(vendors.path): \(error)")
        }
        let cc = ProcessInfo.processInfo.environment["CC"] ?? "cc"
        var programs: [String: String] = [:]
        for name in ["core_path", "quota_tenant", "hold_buffer", "compute_share"] {
            let source = Harness.packageRoot.appendingPathComponent("Tests/programs/opencl/\(name).c").path
            let output = work.appendingPathComponent(name).path
            let result = try Harness.runTool(cc, ["-O1", source, "-l:libOpenCL.so.1", "-o", output], timeout: .seconds(120))
            guard result.status == .exited(0) else {
                throw E2EError("compiling \(name).c failed (install opencl-c-headers and ocl-icd-libopencl1):\n\(result.stdout)\(result.stderr)")
            }
            programs[name] = output
        }
        return Setup(programs: programs, vendors: vendors.path)
    }

    /// The environment of a program run directly on the system's platforms.
    static func directEnvironment() -> [String: String] {
        var environment = Harness.baseEnvironment()
        environment["OCL_ICD_VENDORS"] = nil
        return environment
    }

    /// The environment of a program run through the ICD against `server` (only our platform).
    static func remoteEnvironment(_ setup: Setup, server: Server, slice: String? = nil) -> [String: String] {
        var environment = Harness.baseEnvironment()
        environment["OCL_ICD_VENDORS"] = setup.vendors
        environment["XPU_SERVER"] = server.address
        environment["XPU_SLICE"] = slice
        return environment
    }

    static func openCLServer(_ harness: Harness, arguments: [String] = []) throws -> Server {
        try Server(harness: harness, arguments: arguments, device: ["--device", "opencl:pocl"])
    }

    @Test("a program prints the same directly on PoCL and through the ICD and server")
    func differential() throws {
        let harness = try Harness.get()
        let setup = try Self.setup.get()
        let program = setup.programs["core_path"]!
        let direct = try ChildProcess(program, [], environment: Self.directEnvironment()).finish(timeout: harness.programTimeout)
        #expect(direct.status == .exited(0), "direct run failed:\n\(direct.stdout)\n\(direct.stderr)")
        let server = try Self.openCLServer(harness)
        let remote = try ChildProcess(program, [], environment: Self.remoteEnvironment(setup, server: server))
            .finish(timeout: harness.programTimeout)
        expectSameBehaviour("core_path", direct: direct, remote: remote)
        #expect(remote.stdout.contains("vadd wrong elements: 0\n"))
    }

    @Test("a buffer over the slice's memory is refused, and another tenant keeps working meanwhile")
    func quota() throws {
        let harness = try Harness.get()
        let setup = try Self.setup.get()
        let server = try Self.openCLServer(harness)
        // The neighbour: the whole core path, without a slice, at the same time.
        let neighbour = try ChildProcess(setup.programs["core_path"]!, [], environment: Self.remoteEnvironment(setup, server: server))
        let tenant = try ChildProcess(
            setup.programs["quota_tenant"]!, [], environment: Self.remoteEnvironment(setup, server: server, slice: "mem=64MiB")
        ).finish(timeout: harness.programTimeout)
        #expect(tenant.status == .exited(0), "\(tenant.stdout)\n\(tenant.stderr)")
        #expect(
            tenant.stdout == """
                global memory: 67108864
                48 MiB buffer: 0
                32 MiB more: -4 (null: 1)
                round trip after the refusal: 0 still serving
                32 MiB after releasing 48: 0

                """)
        let other = neighbour.finish(timeout: harness.programTimeout)
        #expect(other.status == .exited(0), "\(other.stdout)\n\(other.stderr)")
        #expect(other.stdout.hasSuffix("vadd wrong elements: 0\n") || other.stdout.contains("done\n"))
    }
}
