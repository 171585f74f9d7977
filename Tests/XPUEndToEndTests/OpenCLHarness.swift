import Foundation
import Synchronization

/// What the OpenCL end-to-end tests share: the C programs of Tests/opencl compiled once against
/// the system's `CL/cl.h` and ICD loader (`libOpenCL.so.1`), PoCL's `.icd` file for direct runs, and a
/// vendors directory holding `xpu.icd` (our ICD, `dist/lib/libxpu-opencl.so`) for remote runs.
///
/// Direct runs set `OCL_ICD_VENDORS` to PoCL's `.icd` file, so they see PoCL alone whatever
/// else `/etc/OpenCL/vendors` holds; remote runs set it to the vendors directory with `xpu.icd`,
/// so they see the remote platform alone. The server (`Server` with `--device opencl:pocl`) picks
/// PoCL's platform by name.
///
/// Environment knobs: `XPU_DIST` (default `<package>/dist`), `XPU_POCL_ICD` (default
/// `/etc/OpenCL/vendors/pocl.icd`), `CC` (default `cc`), `XPU_E2E_TIMEOUT` (seconds per program
/// run, default 300).
struct OpenCLHarness: Sendable {
    /// The C programs in Tests/opencl, by name without `.c`.
    static let programNames = [
        "vector_add", "reduction", "matrix_multiply", "events_profiling", "error_cases", "user_events", "program_calls",
        "buffer_regions",
    ]
    /// Programs about what only the ICD does (a platform serves what they call), run through it alone.
    static let icdProgramNames = ["unserved_calls"]

    /// Built once per test process; a failure (no PoCL, no headers, a compile error) fails every test.
    static let shared: Result<OpenCLHarness, E2EError> = Result { () throws(E2EError) in try OpenCLHarness() }

    static func get() throws -> OpenCLHarness { try shared.get() }

    static var dist: URL {
        ProcessInfo.processInfo.environment["XPU_DIST"].map { URL(fileURLWithPath: $0) }
            ?? Harness.packageRoot.appendingPathComponent("dist")
    }

    /// Our ICD as scripts/build.sh leaves it in dist/.
    static var icdLibrary: String { dist.appendingPathComponent("lib/libxpu-opencl.so").path }

    /// Whether dist/ holds the ICD; the remote halves of the tests need it.
    static var icdBuilt: Bool { FileManager.default.fileExists(atPath: icdLibrary) }

    let pocl: String
    /// A directory holding only `xpu.icd`, naming `icdLibrary`.
    let remoteVendors: String
    let programTimeout: Duration
    private let programs: [String: String]

    private init() throws(E2EError) {
        let env = ProcessInfo.processInfo.environment
        pocl = env["XPU_POCL_ICD"] ?? "/etc/OpenCL/vendors/pocl.icd"
        guard FileManager.default.fileExists(atPath: pocl) else {
            throw E2EError("\(pocl) not found: install pocl-opencl-icd (scripts/lib/prereqs.sh) or set XPU_POCL_ICD")
        }
        programTimeout = .seconds(Int(env["XPU_E2E_TIMEOUT"] ?? "") ?? 300)
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-opencl-e2e-\(getpid())")
        let vendors = work.appendingPathComponent("vendors")
        do {
            try? FileManager.default.removeItem(at: work)
            try FileManager.default.createDirectory(at: vendors, withIntermediateDirectories: true)
            try (Self.icdLibrary + "\n").write(
                to: vendors.appendingPathComponent("xpu.icd"), atomically: true, encoding: .utf8)
        } catch {
            throw E2EError("cannot prepare \(work.path): \(error)")
        }
        remoteVendors = vendors.path
        Self.workDirectoryToRemove.withLock { $0 = work.path }
        atexit {
            if let path = OpenCLHarness.workDirectoryToRemove.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
        }

        let cc = env["CC"] ?? "cc"
        let sources = Harness.packageRoot.appendingPathComponent("Tests/opencl")
        var built: [String: String] = [:]
        for name in Self.programNames + Self.icdProgramNames {
            let output = work.appendingPathComponent(name).path
            let arguments = [
                "-O1", "-Wall", "-Werror", "-pthread", sources.appendingPathComponent("\(name).c").path, "-l:libOpenCL.so.1", "-o", output,
            ]
            let result = try Harness.runTool(cc, arguments, timeout: .seconds(120))
            guard result.status == .exited(0) else {
                throw E2EError(
                    "compiling \(name).c failed (install opencl-c-headers and ocl-icd-libopencl1: scripts/lib/prereqs.sh):\n"
                        + result.stdout + result.stderr)
            }
            built[name] = output
        }
        programs = built
    }

    private static let workDirectoryToRemove = Mutex<String?>(nil)

    func program(_ name: String) -> String { programs[name]! }

    /// The test process's environment without anything that picks an OpenCL platform or a server.
    static func baseEnvironment() -> [String: String] {
        var env = Harness.baseEnvironment()
        env["OCL_ICD_VENDORS"] = nil
        env["OPENCL_VENDOR_PATH"] = nil
        return env
    }

    /// An `xpu-remote-server --device opencl:pocl` on a free loopback port (the end-to-end
    /// `Server`), with `arguments` added.
    func server(arguments: [String] = []) throws -> Server {
        try Server(harness: Harness.get(), arguments: arguments, device: ["--device", "opencl:pocl"])
    }

    /// Environment for a client of `server` through our ICD, with `extra` added.
    func remoteEnvironment(_ server: Server, _ extra: [String: String] = [:]) -> [String: String] {
        var env = Self.baseEnvironment()
        env["OCL_ICD_VENDORS"] = remoteVendors
        env["XPU_SERVER"] = server.address
        return env.merging(extra) { $1 }
    }

    /// Environment for a direct run on PoCL.
    func directEnvironment() -> [String: String] {
        var env = Self.baseEnvironment()
        env["OCL_ICD_VENDORS"] = pocl
        return env
    }

    func runDirect(_ name: String) throws -> ProgramOutput {
        try ChildProcess(program(name), [], environment: directEnvironment()).finish(timeout: programTimeout)
    }

    func runRemote(_ name: String, server: Server, environment: [String: String] = [:]) throws -> ProgramOutput {
        try ChildProcess(program(name), [], environment: remoteEnvironment(server, environment))
            .finish(timeout: programTimeout)
    }

    /// Runs a tool from PATH (clinfo) with `environment`.
    func runTool(_ tool: String, _ arguments: [String], environment: [String: String]) throws -> ProgramOutput {
        try ChildProcess(try Harness.toolPath(tool), arguments, environment: environment).finish(timeout: programTimeout)
    }
}
