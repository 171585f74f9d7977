import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Everything the end-to-end tests share: the built binaries in dist/, the C test programs
/// compiled once against the real `cuda.h`, and a directory that makes the simulated device
/// the process's `libcuda.so.1` for direct runs.
///
/// Environment knobs: `XPU_DIST` (default `<package>/dist`), `XPU_CUDA_H` (path of `cuda.h`;
/// default: the `nvidia-cuda-runtime` wheel), `CC` (default `cc`), `XPU_E2E_TIMEOUT` (seconds
/// per program run, default 300).
struct Harness: Sendable {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The C programs in Tests/programs, by name without `.c`.
    static let programNames = [
        "device_query", "memory", "streams_events", "vector_add", "error_paths", "hold_and_copy",
        "meminfo", "threads", "fork_session", "unsupported", "async_semantics", "launch_storm", "bulk_copies", "slice_memory",
        "compute_share", "pool_hold", "illegal_address", "tenant_owner", "tenant_intruder", "tenant_worker", "metered_tenant",
        "multi_device", "bulk_ordering", "server_loss", "launch_allocations", "thread_names", "network_fault", "pointer_capture",
        "coherent_memory",
    ]

    /// Built once per test process; a failure (missing dist, compile error) fails every test.
    static let shared: Result<Harness, E2EError> = Result { () throws(E2EError) in try Harness() }

    static func get() throws -> Harness { try shared.get() }

    let dist: URL
    let serverBinary: String
    let runBinary: String
    let workDirectory: URL
    /// Holds `libcuda.so.1 -> <dist>/lib/libxpusim.so`.
    let directLibraryDirectory: String
    let programTimeout: Duration
    private let programs: [String: String]

    private init() throws(E2EError) {
        let env = ProcessInfo.processInfo.environment
        dist =
            env["XPU_DIST"].map { URL(fileURLWithPath: $0) }
            ?? Self.packageRoot.appendingPathComponent("dist")
        serverBinary = dist.appendingPathComponent("bin/xpu-remote-server").path
        runBinary = dist.appendingPathComponent("bin/xpu-run").path
        let shim = dist.appendingPathComponent("lib/libcuda.so.1").path
        let sim = dist.appendingPathComponent("lib/libxpusim.so").path
        let missing = [serverBinary, runBinary, shim, sim].filter {
            !FileManager.default.isExecutableFile(atPath: $0) && !FileManager.default.fileExists(atPath: $0)
        }
        guard missing.isEmpty else {
            throw E2EError(
                "missing \(missing.joined(separator: ", ")): run scripts/build.sh first")
        }
        programTimeout = .seconds(Int(env["XPU_E2E_TIMEOUT"] ?? "") ?? 300)

        let include = try Self.cudaIncludeDirectory()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-e2e-\(getpid())")
        workDirectory = work
        Self.workDirectoryToRemove.withLock { $0 = work.path }
        atexit { Harness.removeWorkDirectory() }
        do {
            try? FileManager.default.removeItem(at: work)
            let libDirectory = work.appendingPathComponent("direct-lib")
            try FileManager.default.createDirectory(at: libDirectory, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(
                atPath: libDirectory.appendingPathComponent("libcuda.so.1").path,
                withDestinationPath: sim)
            directLibraryDirectory = libDirectory.path
        } catch {
            throw E2EError("cannot prepare a work directory: \(error)")
        }

        let cc = env["CC"] ?? "cc"
        let sources = Self.packageRoot.appendingPathComponent("Tests/programs")
        var built: [String: String] = [:]
        for name in Self.programNames {
            let output = work.appendingPathComponent(name).path
            let arguments = [
                "-O1", "-I\(include)", sources.appendingPathComponent("\(name).c").path,
                "-L\(dist.appendingPathComponent("lib").path)", "-l:libcuda.so.1", "-ldl", "-o", output,
            ]
            let result = try Self.runTool(cc, arguments, timeout: .seconds(120))
            guard result.status == .exited(0) else {
                throw E2EError(
                    "compiling \(name).c failed (\(result.status.map(String.init(describing:)) ?? "timeout")):\n"
                        + result.stdout + result.stderr)
            }
            built[name] = output
        }
        programs = built
    }

    func program(_ name: String) -> String { programs[name]! }

    /// Runs a program directly on the simulated device.
    func runDirect(_ name: String, _ arguments: [String] = []) throws -> ProgramOutput {
        try startDirect(name, arguments).finish(timeout: programTimeout)
    }

    func startDirect(_ name: String, _ arguments: [String] = []) throws -> ChildProcess {
        var env = Self.baseEnvironment()
        env["LD_LIBRARY_PATH"] = [directLibraryDirectory, env["LD_LIBRARY_PATH"]]
            .compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ":")
        env["XPU_SIM_MEMORY"] = "1GiB"
        env["XPU_SIM_NODE"] = Self.simNode
        return try ChildProcess(program(name), arguments, environment: env)
    }

    /// Runs a program through `xpu-run` against `server`.
    func runRemote(
        _ name: String, _ arguments: [String] = [], server: Server, environment: [String: String] = [:]
    ) throws -> ProgramOutput {
        try startRemote(name, arguments, server: server, environment: environment).finish(timeout: programTimeout)
    }

    func startRemote(
        _ name: String, _ arguments: [String] = [], server: Server, environment: [String: String] = [:]
    ) throws -> ChildProcess {
        try ChildProcess(
            runBinary, ["--server", server.address, "--", program(name)] + arguments,
            environment: Self.baseEnvironment().merging(environment) { $1 })
    }

    /// The test process's environment without anything that would pick a driver for the child.
    static func baseEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for key in ["LD_PRELOAD", "XPU_SERVER", "XPU_POOL", "XPU_SLICE", "XPU_SIM_NODE"] { env[key] = nil }
        return env
    }

    /// The simulated node of the direct runs and of the servers they are compared with, so both
    /// print the same device UUID (a server names its node itself when none is given).
    static let simNode = "xpu-remote end-to-end tests"

    /// `baseEnvironment` for a server whose programs are compared with direct runs.
    static func differentialServerEnvironment() -> [String: String] {
        var env = baseEnvironment()
        env["XPU_SIM_NODE"] = simNode
        return env
    }

    /// The path of a tool found on PATH (or given by absolute path), with the system
    /// administration directories searched too (`ip`, `nft`).
    static func toolPath(_ tool: String) throws(E2EError) -> String {
        if tool.contains("/") { return tool }
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
            .split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        guard
            let found = directories.map({ "\($0)/\(tool)" })
                .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { throw E2EError("\(tool) not found on PATH") }
        return found
    }

    /// Runs a helper tool found on PATH (or by absolute path) to completion.
    static func runTool(_ tool: String, _ arguments: [String], timeout: Duration) throws(E2EError)
        -> ProgramOutput
    {
        let path = try toolPath(tool)
        do {
            return try ChildProcess(path, arguments, environment: baseEnvironment()).finish(timeout: timeout)
        } catch let error as E2EError {
            throw error
        } catch {
            throw E2EError("\(error)")
        }
    }

    /// The include directory holding the real `cuda.h` (PyPI wheel nvidia-cuda-runtime).
    static func cudaIncludeDirectory() throws(E2EError) -> String {
        if let header = ProcessInfo.processInfo.environment["XPU_CUDA_H"], !header.isEmpty {
            return URL(fileURLWithPath: header).deletingLastPathComponent().path
        }
        let script = """
            import glob, os, site, sys, sysconfig
            roots = []
            try:
                import nvidia.cu13 as m
                roots += [os.path.join(p, "include") for p in m.__path__]
            except ImportError:
                pass
            dirs = set(site.getsitepackages() + [site.getusersitepackages(), sysconfig.get_paths()["purelib"]])
            for d in sorted(dirs):
                roots += sorted(glob.glob(os.path.join(d, "nvidia", "*", "include")), reverse=True)
            for r in roots:
                if os.path.isfile(os.path.join(r, "cuda.h")):
                    print(r)
                    sys.exit(0)
            sys.exit(1)
            """
        let result = try runTool("python3", ["-c", script], timeout: .seconds(60))
        let path = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.status == .exited(0), !path.isEmpty else {
            throw E2EError(
                "cuda.h not found: install the nvidia-cuda-runtime wheel or set XPU_CUDA_H\n\(result.stderr)")
        }
        return path
    }

    private static let workDirectoryToRemove = Mutex<String?>(nil)

    private static func removeWorkDirectory() {
        if let path = workDirectoryToRemove.withLock({ $0 }) {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}

/// An `xpu-remote-server` on a free port of `host` (loopback unless given), serving the simulated
/// device, with `arguments` added to its command line; in the network namespace `namespace`
/// when given (`ip netns exec`).
final class Server: Sendable {
    let process: ChildProcess
    let address: String
    /// HOST:PORT of /metrics, when `arguments` has `--metrics`.
    let metricsAddress: String?

    /// `device`: the flags that choose what it serves (the simulated device with 1 GiB by default).
    init(
        harness: Harness, arguments: [String] = [], host: String = "127.0.0.1", namespace: String? = nil,
        device: [String] = ["--device", "sim", "--sim-memory", "1GiB"]
    ) throws {
        let command = [harness.serverBinary, "--listen", "\(host):0"] + device + arguments
        let launcher = try namespace.map { [try Harness.toolPath("ip"), "netns", "exec", $0] } ?? []
        let line = launcher + command
        process = try ChildProcess(line[0], Array(line.dropFirst()), environment: Harness.differentialServerEnvironment())
        let prefix = "xpu-remote-server listening on "
        /// The address in the listening line, once the server has printed it whole.
        func listening(_ text: String) -> String? {
            text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().lazy
                .compactMap { line -> String? in
                    guard let range = line.range(of: prefix) else { return nil }
                    return String(line[range.upperBound...]).trimmingCharacters(in: .whitespaces)
                }
                .first
        }
        _ = process.waitForOutput(where: { listening($0) != nil }, timeout: .seconds(60))
        let found = listening(process.stdout.text)
        guard let found, found.hasPrefix("\(host):"), Int(found.dropFirst(host.count + 1)) != nil
        else {
            let status = process.stop()
            throw E2EError(
                "xpu-remote-server did not report its port (\(status.map(String.init(describing:)) ?? "running"))\n"
                    + "stdout:\n\(process.stdout.text)\nstderr:\n\(process.stderr.text)")
        }
        address = found
        // Printed before the listening line.
        let metricsPrefix = "xpu-remote-server metrics on http://"
        metricsAddress = process.stdout.text.split(separator: "\n").lazy
            .compactMap { line -> String? in
                guard let range = line.range(of: metricsPrefix) else { return nil }
                return String(line[range.upperBound...].prefix { $0 != "/" })
            }
            .first
    }

    /// Ends the server with SIGTERM (SIGKILL after a grace period); returns how it ended.
    @discardableResult
    func stop() -> ExitStatus? { process.stop(terminateFirst: true, grace: .seconds(10)) }

    /// Waits until the server has released every session it opened but the `leavingOpen` the
    /// test still holds, as its log says ("session released" comes once a session's memory,
    /// slice and tenancy are all given back); false when more are open after `timeout`.
    func waitUntilSessionsReleased(leavingOpen: Int = 0, timeout: Duration = .seconds(30)) -> Bool {
        process.waitForLog(
            where: { log in
                let opened = log.components(separatedBy: "session open").count - 1
                return opened - (log.components(separatedBy: "session released").count - 1) == leavingOpen
            }, timeout: timeout)
    }

    deinit { process.stop(terminateFirst: true, grace: .seconds(2)) }
}

/// Records a failure unless both runs printed the same thing and ended the same way.
func expectSameBehaviour(
    _ name: String, direct: ProgramOutput, remote: ProgramOutput,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(
        !direct.timedOut, "\(name): direct run timed out\n\(direct.stdout)", sourceLocation: sourceLocation)
    #expect(
        !remote.timedOut, "\(name): remote run timed out\n\(remote.stdout)", sourceLocation: sourceLocation)
    #expect(
        direct.status == .exited(0),
        "\(name): direct run ended with \(direct.status.map(String.init(describing:)) ?? "timeout")\n\(direct.stdout)\nstderr:\n\(direct.stderr)",
        sourceLocation: sourceLocation)
    if direct.stdout != remote.stdout {
        Issue.record(
            "\(name): stdout differs (direct vs remote)\n\(lineDiff(direct.stdout, remote.stdout))\nremote stderr:\n\(remote.stderr)",
            sourceLocation: sourceLocation)
    }
    #expect(
        direct.status == remote.status,
        "\(name): direct \(direct.status.map(String.init(describing:)) ?? "timeout"), remote \(remote.status.map(String.init(describing:)) ?? "timeout")\nremote stderr:\n\(remote.stderr)",
        sourceLocation: sourceLocation)
}

/// A unified-style diff of two texts, line by line (LCS; the outputs are small).
func lineDiff(_ a: String, _ b: String) -> String {
    let x = a.split(separator: "\n", omittingEmptySubsequences: false)
    let y = b.split(separator: "\n", omittingEmptySubsequences: false)
    var lcs = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
    for i in stride(from: x.count - 1, through: 0, by: -1) {
        for j in stride(from: y.count - 1, through: 0, by: -1) {
            lcs[i][j] = x[i] == y[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
        }
    }
    var lines = ["--- direct", "+++ remote"]
    var i = 0
    var j = 0
    while i < x.count || j < y.count {
        if i < x.count && j < y.count && x[i] == y[j] {
            lines.append("  \(x[i])")
            i += 1
            j += 1
        } else if j < y.count && (i == x.count || lcs[i][j + 1] >= lcs[i + 1][j]) {
            lines.append("+ \(y[j])")
            j += 1
        } else {
            lines.append("- \(x[i])")
            i += 1
        }
    }
    return lines.joined(separator: "\n")
}
