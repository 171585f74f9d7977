import ArgumentParser
import Foundation
import XPUTransport

#if canImport(Glibc)
import Glibc
#endif

/// Options every measuring subcommand shares.
struct BenchRigOptions: ParsableArguments {
    @Option(help: "A running xpu-remote-server (host:port). Without it, a simulated one is started on loopback.")
    var server: String?

    @Option(help: "The dist/ folder of scripts/build.sh (default: found from the xpu-bench executable or the current folder).")
    var dist: String?

    @Option(help: "Memory of the simulated devices (the local server's and the in-process baseline's).")
    var simMemory = "4GiB"

    @Option(help: "How the shim reaches the server it starts: tcp, tls (TLS 1.3, throwaway certificates made with openssl), or shm (shared memory over a Unix socket).")
    var transport: BenchTransport = .tcp

    @Flag(help: "Start the local server with --staged-copies: bulk data through its staging buffers and the driver's copy, the path a server on a real GPU takes (the simulated device otherwise lets it copy in place).")
    var stagedCopies = false

    @Option(help: "Busy-poll of the shim (XPU_POLL_US) and of the server xpu-bench starts (--busy-poll-us), in microseconds; 0 turns it off. Default: theirs.")
    var busyPollUs: Int?

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        if let busyPollUs, !(0...1_000_000).contains(busyPollUs) {
            throw ValidationError("--busy-poll-us must be 0 to 1000000")
        }
        if stagedCopies && server != nil {
            throw ValidationError("--staged-copies applies to the server xpu-bench starts; start the --server one with it instead")
        }
    }
}

/// The transports xpu-bench can start its local server with.
enum BenchTransport: String, CaseIterable, Codable, ExpressibleByArgument {
    case tcp, tls, shm
}

/// Everything one run measures with: the remote side (the shim, connected to a server) and the
/// local baseline (the simulated device in this process), both initialized once per process —
/// the shim reads `XPU_SERVER` in its `cuInit` and cannot be pointed elsewhere afterwards.
final class BenchRig: @unchecked Sendable {
    let dist: String
    let serverEndpoint: String
    /// The server this run started, stopped (SIGTERM) by `shutdown`.
    private var localServer: Process?
    let remote: BenchSession
    let direct: BenchSession
    /// The local server stages bulk data (`--staged-copies`).
    let stagedCopies: Bool
    /// The shim's busy-poll setting (`XPU_POLL_US` as the shim reads it), for sessions of the
    /// bench's own that should wait as the shim does.
    let busyPoll: BusyPoll.Settings
    /// `--busy-poll-us` given to the server this run started.
    private let startedWithBusyPoll: Int?

    init(options: BenchRigOptions) throws {
        let dist = try Self.findDist(options.dist)
        self.dist = dist
        stagedCopies = options.stagedCopies
        startedWithBusyPoll = options.server == nil ? options.busyPollUs : nil
        if let microseconds = options.busyPollUs { setenv("XPU_POLL_US", String(microseconds), 1) }
        busyPoll = getenv("XPU_POLL_US").flatMap { BusyPoll.Settings(parsingMicroseconds: String(cString: $0)) }
            ?? BusyPoll.Settings(microseconds: BusyPoll.Settings.defaultMicroseconds)
        if let server = options.server {
            serverEndpoint = server
        } else {
            let (process, endpoint) = try Self.startServer(
                dist: dist, simMemory: options.simMemory,
                arguments: try Self.listenArguments(options.transport) + (options.stagedCopies ? ["--staged-copies"] : [])
                    + (options.busyPollUs.map { ["--busy-poll-us", String($0)] } ?? []))
            localServer = process
            serverEndpoint = endpoint
        }
        do {
            // Both libraries read their environment in cuInit: set it before.
            setenv("XPU_SERVER", serverEndpoint, 1)
            setenv("XPU_SIM_MEMORY", options.simMemory, 1)
            remote = try BenchSession(driver: BenchDriver(label: "shim", path: dist + "/lib/libxpushim.so"))
            direct = try BenchSession(driver: BenchDriver(label: "sim", path: dist + "/lib/libxpusim.so"))
        } catch {
            localServer?.terminate()
            localServer?.waitUntilExit()
            throw error
        }
        progress("xpu-bench: server \(serverEndpoint)\(localServer == nil ? "" : " (simulated, started by xpu-bench)"), dist \(dist)")
    }

    /// The process id of the server this run started; nil for a server given by --server.
    var serverProcessID: pid_t? { localServer?.processIdentifier }

    /// Nanoseconds of CPU the server this run started has used so far, summed over its threads
    /// (`/proc/PID/task/*/schedstat`, nanosecond resolution); nil for a server given by --server.
    func serverCPUNanoseconds() -> UInt64? {
        guard let pid = localServer?.processIdentifier else { return nil }
        let tasks = "/proc/\(pid)/task"
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: tasks) else { return nil }
        var total: UInt64 = 0
        for thread in threads {
            guard let text = try? String(contentsOfFile: "\(tasks)/\(thread)/schedstat", encoding: .utf8),
                let onCPU = text.split(separator: " ").first.flatMap({ UInt64($0) })
            else { continue }  // a thread that ended meanwhile
            total += onCPU
        }
        return total
    }

    /// A description of the server for reports.
    var serverDescription: String {
        localServer == nil
            ? serverEndpoint
            : "\(serverEndpoint) (xpu-remote-server --device sim\(stagedCopies ? " --staged-copies" : "")"
                + "\(startedWithBusyPoll.map { " --busy-poll-us \($0)" } ?? ""), started by xpu-bench)"
    }

    /// Stops the server this run started. The shim's connection is still open; the server ends
    /// that session as on any disconnect.
    func shutdown() {
        guard let server = localServer else { return }
        server.terminate()
        server.waitUntilExit()
        localServer = nil
    }

    /// `--dist`, else the folder above the executable's bin/ when it is a dist/, else a `dist/`
    /// beside any folder above the executable, else `./dist`.
    static func findDist(_ explicit: String?) throws -> String {
        func isDist(_ path: String) -> Bool {
            FileManager.default.fileExists(atPath: path + "/bin/xpu-remote-server")
                && FileManager.default.fileExists(atPath: path + "/lib/libxpushim.so")
                && FileManager.default.fileExists(atPath: path + "/lib/libxpusim.so")
        }
        if let explicit {
            guard isDist(explicit) else {
                throw BenchError("\(explicit) is not a dist/ folder (bin/xpu-remote-server, lib/libxpushim.so, lib/libxpusim.so)")
            }
            return explicit
        }
        var candidates: [String] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
            candidates.append(folder.deletingLastPathComponent().path)
            while folder.path != "/" {
                candidates.append(folder.appendingPathComponent("dist").path)
                folder = folder.deletingLastPathComponent()
            }
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/dist")
        guard let found = candidates.first(where: isDist) else {
            throw BenchError("no dist/ folder found (run scripts/build.sh, or pass --dist); looked in \(candidates.joined(separator: ", "))")
        }
        return URL(fileURLWithPath: found).standardizedFileURL.path
    }

    /// Starts `xpu-remote-server --device sim` from `dist` with `arguments` (where it listens, and
    /// any other flag) and reads the address it prints.
    static func startServer(dist: String, simMemory: String, arguments: [String] = ["--listen", "127.0.0.1:0"]) throws -> (Process, String) {
        try startServer(dist: dist, device: ["--device", "sim", "--sim-memory", simMemory], arguments: arguments)
    }

    /// Starts `xpu-remote-server` from `dist` with the `device` flags and `arguments`, and reads
    /// the address it prints.
    static func startServer(dist: String, device: [String], arguments: [String]) throws -> (Process, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: dist + "/bin/xpu-remote-server")
        process.arguments = arguments + device + ["--log-level", "warning"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let reader = LineReader(output.fileHandleForReading)
        let prefix = "xpu-remote-server listening on "
        let deadline = monotonicNanoseconds() + 30_000_000_000
        while monotonicNanoseconds() < deadline {
            guard let line = reader.nextLine() else { break }
            if line.hasPrefix(prefix) {
                let endpoint = String(line.dropFirst(prefix.count))
                // Keep draining stdout so that the server never blocks on a full pipe.
                Thread.detachNewThread { while reader.nextLine() != nil {} }
                return (process, endpoint)
            }
        }
        process.terminate()
        process.waitUntilExit()
        throw BenchError("\(dist)/bin/xpu-remote-server did not print its address (exit status \(process.terminationStatus))")
    }
}

/// Lines from a pipe, read with plain blocking reads.
final class LineReader: @unchecked Sendable {
    private let handle: FileHandle
    private var buffer: [UInt8] = []

    init(_ handle: FileHandle) { self.handle = handle }

    func nextLine() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let chunk = handle.availableData
            if chunk.isEmpty {
                guard !buffer.isEmpty else { return nil }
                defer { buffer.removeAll() }
                return String(decoding: buffer, as: UTF8.self)
            }
            buffer.append(contentsOf: chunk)
        }
    }
}

extension BenchRig {
    /// The server's listening flags for a transport; for TLS it also makes a throwaway CA and
    /// server certificate with the `openssl` command and points the shim at the CA (`XPU_TLS_CA`).
    static func listenArguments(_ transport: BenchTransport) throws -> [String] {
        let directory = NSTemporaryDirectory() + "xpu-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        switch transport {
        case .tcp:
            return ["--listen", "127.0.0.1:0"]
        case .shm:
            return ["--listen", "unix:\(directory)/server.sock"]
        case .tls:
            let script = """
                set -e
                cd "$1"
                openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out ca.key 2>/dev/null
                openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out server.key 2>/dev/null
                openssl req -x509 -new -key ca.key -out ca.crt -days 1 -subj /CN=xpu-bench-ca
                printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
                openssl req -new -key server.key -out server.csr -subj /CN=127.0.0.1
                openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 \\
                    -extfile server.ext 2>/dev/null
                """
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script, "sh", directory]
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw BenchError("making TLS certificates with openssl failed") }
            setenv("XPU_TLS_CA", directory + "/ca.crt", 1)
            return [
                "--listen", "127.0.0.1:0", "--tls-cert", directory + "/server.crt", "--tls-key", directory + "/server.key",
            ]
        }
    }
}
