import Foundation
import Testing

/// The kernel suite through the server: Tests/kernels/run_kernel.c loads nvcc-compiled PTX of a
/// Tests/kernels kernel, checks it against its own CPU reference and prints a hash of the
/// outputs; it runs directly on the simulated device and through shim -> server, and both runs
/// must succeed and print the same thing.
@Suite("End to end: kernel suite, direct vs remote", .serialized)
struct KernelSuiteEndToEndTests {
    static let kernels = ["vector_add", "matmul_tiled", "reduce_warp", "histogram"]
    static let architectures = ["sm_75", "sm_90"]

    /// run_kernel built against the dist's libcuda.so.1, and the PTX files, once per process.
    struct Prepared: Sendable {
        var program: String
        var ptx: [String: String]  // "<kernel>.<arch>" -> file
    }

    static let prepared: Result<Prepared, any Error> = Result { () throws in
        let harness = try Harness.get()
        let root = Harness.packageRoot.appendingPathComponent("Tests/kernels")
        let env = ProcessInfo.processInfo.environment
        let program = harness.workDirectory.appendingPathComponent("run_kernel").path
        let include = try Harness.cudaIncludeDirectory()
        let compiled = try Harness.runTool(
            env["CC"] ?? "cc",
            [
                "-O1", "-I\(include)", root.appendingPathComponent("run_kernel.c").path,
                "-L\(harness.dist.appendingPathComponent("lib").path)", "-l:libcuda.so.1", "-lm", "-o", program,
            ], timeout: .seconds(120))
        guard compiled.status == .exited(0) else { throw E2EError("compiling run_kernel.c failed:\n\(compiled.stderr)") }
        let script = "import nvidia.cu13 as m, os; print(os.path.join(list(m.__path__)[0], 'bin', 'nvcc'))"
        let nvcc =
            try env["XPU_NVCC"]
            ?? Harness.runTool("/usr/bin/env", ["python3", "-c", script], timeout: .seconds(60)).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var ptx: [String: String] = [:]
        for kernel in kernels {
            for arch in architectures {
                let out = harness.workDirectory.appendingPathComponent("\(kernel).\(arch).ptx").path
                let result = try Harness.runTool(
                    nvcc, ["-ptx", "-arch=\(arch)", "-o", out, root.appendingPathComponent("\(kernel).cu").path],
                    timeout: .seconds(120))
                guard result.status == .exited(0) else {
                    throw E2EError("nvcc \(kernel).cu -arch=\(arch) failed (pip install nvidia-cuda-nvcc, or set XPU_NVCC):\n\(result.stdout)\(result.stderr)")
                }
                ptx["\(kernel).\(arch)"] = out
            }
        }
        return Prepared(program: program, ptx: ptx)
    }

    @Test("Same checked output directly and through the server", arguments: kernels)
    func differential(kernel: String) throws {
        let harness = try Harness.get()
        let prepared = try Self.prepared.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        for arch in Self.architectures {
            let arguments = [kernel, prepared.ptx["\(kernel).\(arch)"]!]
            var env = Harness.baseEnvironment()
            env["LD_LIBRARY_PATH"] = [harness.directLibraryDirectory, env["LD_LIBRARY_PATH"]]
                .compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ":")
            let direct = try ChildProcess(prepared.program, arguments, environment: env).finish(timeout: harness.programTimeout)
            let remote = try ChildProcess(
                harness.runBinary, ["--server", server.address, "--", prepared.program] + arguments,
                environment: Harness.baseEnvironment()
            ).finish(timeout: harness.programTimeout)
            #expect(direct.stdout.contains("\(kernel) ok hash"), "\(kernel) \(arch) direct:\n\(direct.stdout)\(direct.stderr)")
            expectSameBehaviour("\(kernel) \(arch)", direct: direct, remote: remote)
        }
    }
}
