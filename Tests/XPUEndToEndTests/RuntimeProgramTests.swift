import Foundation
import Testing

/// Programs written against the CUDA runtime (Tests/runtime/*.cu), built the way nvcc builds by
/// default: the runtime linked statically, PTX for compute_75 plus SASS for sm_75 and sm_86 in the
/// fatbinary. The runtime reaches the driver through cuGetProcAddress, cuGetExportTable and the
/// library calls (proto/EXPORT-TABLES.md). Each program runs unmodified directly on the simulated
/// device and through `xpu-run` against a simulated-device server; both runs must pass their own
/// checks and print the same thing.
@Suite("End to end: CUDA runtime programs, direct vs remote")
struct RuntimeProgramTests {
    static let programs = [
        "vector_add", "templates", "atomics", "clock_reads", "streams_pinned", "matmul_shared", "reduction", "scan",
        "constant_symbols", "dynamic_shared", "grid_stride", "struct_params", "errors", "warp_vote",
        "math_functions", "device_functions", "host_callbacks", "device_query", "launch_ex", "device_printf",
        "recursion", "device_assert",
    ]

    /// nvcc's flags: the architecture list (PTX and SASS for 7.5) and a second SASS.
    static let nvccFlags = [
        "-O2", "--generate-code=arch=compute_75,code=[compute_75,sm_75]", "--generate-code=arch=compute_86,code=sm_86",
    ]

    /// Every program compiled once per test process (in parallel), by name.
    static let built: Result<[String: String], any Error> = Result { () throws in
        let harness = try Harness.get()
        let env = ProcessInfo.processInfo.environment
        let script = "import nvidia.cu13 as m, os; print(os.path.join(list(m.__path__)[0], 'bin', 'nvcc'))"
        let nvcc =
            try env["XPU_NVCC"]
            ?? Harness.runTool("/usr/bin/env", ["python3", "-c", script], timeout: .seconds(60)).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let sources = Harness.packageRoot.appendingPathComponent("Tests/runtime")
        var built: [String: String] = [:]
        // Four compilers at a time: each takes a few hundred MB.
        for batch in stride(from: 0, to: programs.count, by: 4).map({ Array(programs[$0..<min($0 + 4, programs.count)]) }) {
            var compiling: [(String, String, ChildProcess)] = []
            do {
                for name in batch {
                    let output = harness.workDirectory.appendingPathComponent("runtime-\(name)").path
                    let arguments =
                        ["-ccbin", env["CXX"] ?? "g++"] + nvccFlags
                        + ["-o", output, sources.appendingPathComponent("\(name).cu").path]
                    compiling.append((name, output, try ChildProcess(nvcc, arguments, environment: Harness.baseEnvironment())))
                }
            } catch {
                throw E2EError("cannot start nvcc (pip install nvidia-cuda-nvcc, or set XPU_NVCC): \(error)")
            }
            for (name, output, process) in compiling {
                let result = process.finish(timeout: .seconds(900))
                guard result.status == .exited(0) else {
                    throw E2EError("nvcc \(name).cu failed:\n\(result.stdout)\(result.stderr)")
                }
                built[name] = output
            }
        }
        return built
    }

    @Test("Same output directly and through the server", arguments: programs)
    func differential(program: String) throws {
        let harness = try Harness.get()
        let executable = try #require(try Self.built.get()[program])
        var directEnvironment = Harness.baseEnvironment()
        directEnvironment["LD_LIBRARY_PATH"] = [harness.directLibraryDirectory, directEnvironment["LD_LIBRARY_PATH"]]
            .compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ":")
        directEnvironment["XPU_SIM_MEMORY"] = "1GiB"
        directEnvironment["XPU_SIM_NODE"] = Harness.simNode
        let direct = try ChildProcess(executable, [], environment: directEnvironment).finish(timeout: harness.programTimeout)
        let server = try Server(harness: harness)
        defer { server.stop() }
        let remote = try ChildProcess(
            harness.runBinary, ["--server", server.address, "--", executable], environment: Harness.baseEnvironment()
        ).finish(timeout: harness.programTimeout)
        expectSameBehaviour(program, direct: direct, remote: remote)
        #expect(direct.stdout.hasSuffix("PASS\n"), "\(program) direct:\n\(direct.stdout)\n\(direct.stderr)")
        #expect(remote.stdout.hasSuffix("PASS\n"), "\(program) remote:\n\(remote.stdout)\n\(remote.stderr)")
    }
}
