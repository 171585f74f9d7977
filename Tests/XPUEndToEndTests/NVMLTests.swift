import Foundation
import Testing
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// NVML served by the shim (libnvidia-ml.so.1): monitoring tools and frameworks on the CPU-only
/// side see the session's slice, consistent with the driver API.
///
/// Needs the PyPI packages that scripts/lib/prereqs.sh installs: nvidia-nvml-dev (nvml.h, for the C client),
/// nvidia-ml-py (pynvml) and gpustat.
@Suite("NVML")
struct NVMLTests {
    @Test("a C tenant: NVML agrees with cuMemGetInfo while it allocates, and sees its own kernels")
    func cTenant() throws {
        let harness = try Harness.get()
        let program = try Self.compileSliceProgram(harness)
        let server = try Server(harness: harness)
        defer { server.stop() }
        let output = try Self.run(harness, [program], server: server, environment: ["XPU_NVML_CACHE_MS": "0"])
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        #expect(output.stdout.contains("device 0: xpu-remote Simulated GPU"), "\(output.stdout)")
        #expect(output.stdout.contains("allocation 3: cuMemGetInfo used 384 MiB of 1024 MiB; nvml used 384 MiB"))
        #expect(output.stdout.contains("utilization: busy >= 50%"), "\(output.stdout)")
        #expect(output.stdout.contains("nvml_slice: 0 failures"), "\(output.stdout)\n\(output.stderr)")
        // Unserved entry points are logged once each.
        #expect(output.stderr.components(separatedBy: "nvmlDeviceGetFanSpeed is not supported").count == 2)
    }

    @Test("a tenant with a memory slice: NVML and cuMemGetInfo both report the quota")
    func slicedTenant() throws {
        let harness = try Harness.get()
        let program = try Self.compileSliceProgram(harness)
        let server = try Server(harness: harness)
        defer { server.stop() }
        let output = try Self.run(
            harness, [program], server: server, environment: ["XPU_NVML_CACHE_MS": "0", "XPU_SLICE": "mem=768MiB"])
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        #expect(
            output.stdout.contains("allocation 3: cuMemGetInfo used 384 MiB of 768 MiB; nvml used 384 MiB free 384 MiB of 768 MiB"),
            "\(output.stdout)")
        #expect(output.stdout.contains("nvml_slice: 0 failures"), "\(output.stdout)\n\(output.stderr)")
    }

    @Test("pynvml and gpustat in a Python tenant that allocates through ctypes")
    func pythonTenant() throws {
        let harness = try Harness.get()
        try Self.requirePython(["pynvml", "gpustat"])
        let server = try Server(harness: harness)
        defer { server.stop() }
        let script = Harness.packageRoot.appendingPathComponent("Tests/programs/nvml_tenant.py").path
        let output = try Self.run(harness, ["python3", script], server: server, environment: ["XPU_NVML_CACHE_MS": "0"])
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        let rows = output.stdout.split(separator: "\n").compactMap { line in
            try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        }
        let steps = rows.filter { $0["step"] != nil }
        #expect(steps.count == 4, "\(output.stdout)")
        for step in steps {
            #expect(step["agree"] as? Bool == true, "\(step)")
            #expect(step["nvml_used"] as? Int == step["cuda_used"] as? Int, "\(step)")
        }
        #expect(steps.last?["nvml_used"] as? Int == 512 << 20, "\(output.stdout)")
        let gpustat = rows.first { $0["gpustat_name"] != nil }
        #expect(gpustat?["gpustat_name"] as? String == "xpu-remote Simulated GPU")
        #expect(gpustat?["gpustat_used_mib"] as? Int == 512, "\(output.stdout)")
        #expect(gpustat?["gpustat_process_mib"] as? [Int] == [512], "\(output.stdout)")
        #expect(rows.contains { $0["nvmlDeviceGetFanSpeed"] as? String == "NVML_ERROR_NOT_SUPPORTED" })
        #expect(rows.last?["failures"] as? Int == 0, "\(output.stdout)\n\(output.stderr)")
    }

    @Test("gpustat on the CPU-only side shows the remote device")
    func gpustatCommand() throws {
        let harness = try Harness.get()
        try Self.requirePython(["pynvml", "gpustat"])
        let server = try Server(harness: harness)
        defer { server.stop() }
        let json = try Self.run(harness, ["python3", "-m", "gpustat", "--json"], server: server)
        #expect(json.status == .exited(0), "\(json.stdout)\n\(json.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let gpus = report?["gpus"] as? [[String: Any]] ?? []
        #expect(gpus.count == 1, "\(json.stdout)")
        #expect(gpus.first?["name"] as? String == "xpu-remote Simulated GPU")
        #expect(gpus.first?["memory.total"] as? Int == 1024)
        #expect(gpus.first?["memory.used"] as? Int == 0)
        #expect((gpus.first?["uuid"] as? String)?.hasPrefix("GPU-") == true)
        #expect(gpus.first?["utilization.gpu"] as? Int == 0)
        let text = try Self.run(harness, ["python3", "-m", "gpustat", "--no-color"], server: server)
        #expect(text.status == .exited(0), "\(text.stdout)\n\(text.stderr)")
        #expect(text.stdout.contains("[0] xpu-remote Simulated GPU"), "\(text.stdout)")
        #expect(text.stdout.contains("0 /  1024 MB"), "\(text.stdout)")
    }

    @Test("a 10 Hz poller costs the server at most one view request per device per 100 ms")
    func pollRate() throws {
        let harness = try Harness.get()
        try Self.requirePython(["pynvml"])
        let server = try Server(harness: harness)
        defer { server.stop() }
        let counter = try ChildProcess(
            "/usr/bin/env",
            [
                "python3", Harness.packageRoot.appendingPathComponent("bench/nvml/frame_counter.py").path,
                "--server", server.address,
            ], environment: Harness.baseEnvironment())
        defer { counter.stop() }
        let relay = try Self.awaitLine(counter, prefix: "frame-counter listening on ")
        let seconds = 3.0
        let poller = Harness.packageRoot.appendingPathComponent("bench/nvml/poll.py").path
        let output = try ChildProcess(
            harness.runBinary, ["--server", relay, "--", "python3", poller, "--seconds", "\(seconds)"],
            environment: Harness.baseEnvironment()
        ).finish(timeout: .seconds(120))
        #expect(output.status == .exited(0), "\(output.stdout)\n\(output.stderr)")
        let poll = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
        let calls = poll?["nvml_calls"] as? Int ?? 0
        let summary = try Self.awaitLine(counter, prefix: "{\"connection\": 1")
        let counts = try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any]
        let frames = counts?["frames"] as? Int ?? .max
        let views = (counts?["by_call"] as? [String: Int])?["202"] ?? .max
        // 10 views a second at most, plus the handshake, ManagementOpen and DeviceFacts.
        #expect(calls >= Int(seconds * 10) * 9, "the poller made \(calls) NVML calls")
        #expect(views <= Int(seconds * 10) + 1, "\(views) DeviceView requests in \(seconds) s: \(summary)")
        #expect(frames <= views + 3, "\(frames) frames: \(summary)")
        print("NVML poll at 10 Hz for \(seconds) s: \(calls) NVML calls, \(frames) request frames (\(summary))")
    }

    @Test("the shim exports every NVML entry point of nvml.h")
    func exports() throws {
        let harness = try Harness.get()
        let library = harness.dist.appendingPathComponent("lib/libnvidia-ml.so.1").path
        let nm = try Harness.runTool("nm", ["-D", "--defined-only", library], timeout: .seconds(60))
        #expect(nm.status == .exited(0), "\(nm.stderr)")
        let exported = Set(nm.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) })
        let list = try String(
            contentsOf: Harness.packageRoot.appendingPathComponent("proto/nvml-exports.txt"), encoding: .utf8)
        let expected = list.split(separator: "\n").map(String.init).filter { !$0.isEmpty && !$0.hasPrefix("#") }
        #expect(expected.count > 400)
        let missing = expected.filter { !exported.contains($0) }
        #expect(missing.isEmpty, "not exported: \(missing.prefix(20))")
    }

    // MARK: - Helpers

    /// Runs a command through xpu-run against `server`.
    static func run(
        _ harness: Harness, _ command: [String], server: Server, environment: [String: String] = [:]
    ) throws -> ProgramOutput {
        try ChildProcess(
            harness.runBinary, ["--server", server.address, "--"] + command,
            environment: Harness.baseEnvironment().merging(environment) { $1 }
        ).finish(timeout: harness.programTimeout)
    }

    /// Tests/programs/nvml_slice.c, compiled against NVIDIA's cuda.h and nvml.h, once per test
    /// process: the tests of this suite run in parallel, and one of them rewriting the binary
    /// while another executes it fails the exec with ETXTBSY ("Text file busy").
    static func compileSliceProgram(_ harness: Harness) throws -> String {
        try sliceProgram.withLock { built in
            if let built { return try built.get() }
            let result = Result { try compileSliceProgramOnce(harness) }
            built = result
            return try result.get()
        }
    }

    private static let sliceProgram = Mutex<Result<String, any Error>?>(nil)

    private static func compileSliceProgramOnce(_ harness: Harness) throws -> String {
        let include = try Harness.cudaIncludeDirectory()
        guard FileManager.default.fileExists(atPath: include + "/nvml.h") else {
            throw E2EError("nvml.h not found beside cuda.h in \(include): pip install nvidia-nvml-dev")
        }
        let output = harness.workDirectory.appendingPathComponent("nvml_slice").path
        let lib = harness.dist.appendingPathComponent("lib").path
        let result = try Harness.runTool(
            ProcessInfo.processInfo.environment["CC"] ?? "cc",
            [
                "-O1", "-Wno-deprecated-declarations", "-I\(include)",
                Harness.packageRoot.appendingPathComponent("Tests/programs/nvml_slice.c").path,
                "-L\(lib)", "-l:libcuda.so.1", "-l:libnvidia-ml.so.1", "-o", output,
            ], timeout: .seconds(120))
        guard result.status == .exited(0) else { throw E2EError("compiling nvml_slice.c failed:\n\(result.stderr)") }
        return output
    }

    static func requirePython(_ modules: [String]) throws {
        let check = try Harness.runTool("python3", ["-c", "import " + modules.joined(separator: ", ")], timeout: .seconds(60))
        guard check.status == .exited(0) else {
            throw E2EError("python3 lacks \(modules.joined(separator: ", ")): pip install nvidia-ml-py gpustat\n\(check.stderr)")
        }
    }

    /// The first stdout line of `process` starting with `prefix` (without the prefix when it ends in a space).
    static func awaitLine(_ process: ChildProcess, prefix: String) throws -> String {
        func line(_ text: String) -> Substring? {
            text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().first { $0.hasPrefix(prefix) }
        }
        if process.waitForOutput(where: { line($0) != nil }, timeout: .seconds(60)), let line = line(process.stdout.text) {
            return prefix.hasSuffix(" ") ? String(line.dropFirst(prefix.count)) : String(line)
        }
        throw E2EError("no line starting with '\(prefix)':\n\(process.stdout.text)\n\(process.stderr.text)")
    }
}
