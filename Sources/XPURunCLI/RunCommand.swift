import ArgumentParser
import Foundation

/// `xpu-run`: runs an unmodified program with the xpu-remote shim as its CUDA driver.
public struct RunCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "xpu-run",
        abstract: "Run a program with its CUDA driver calls served by a remote xpu-remote-server.",
        discussion: """
            The program finds the shim as libcuda.so.1 first on its library path, whether it links \
            the driver or loads it with dlopen. Example: xpu-run --server gpu-node:7070 -- python infer.py. \
            With several servers (--server a:7070,b:7070) or a pool placing several slices \
            (--pool dir:7071 --devices 2), the program sees every device as one list 0..n-1 \
            (CUDA_VISIBLE_DEVICES applies to it).
            """)

    @Option(
        help: """
            The server, HOST:PORT, or several, comma-separated (sets XPU_SERVER; default: XPU_SERVER, \
            else 127.0.0.1:7070).
            """)
    var server: String?

    @Option(help: "The slice to request from each server, e.g. mem=4GiB,compute=30% (sets XPU_SLICE).")
    var slice: String?

    @Option(help: "A pool directory, HOST:PORT, that places the slices (sets XPU_POOL; ignored with a server).")
    var pool: String?

    @Option(help: "How many slices, each a device, the pool places (sets XPU_DEVICES; default 1).")
    var devices: Int?

    @Option(help: "Directory holding libcuda.so.1 and libxpushim.so (default: ../lib beside xpu-run).")
    var libraryDirectory: String?

    @Flag(help: "Also put the shim in LD_PRELOAD, for programs that dlopen the driver by absolute path.")
    var preload = false

    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
    var command: [String] = []

    public init() {}

    public func run() throws {
        var command = command
        if command.first == "--" { command.removeFirst() }
        guard let program = command.first else { throw ValidationError("name a program to run after --") }
        let directory = libraryDirectory ?? Self.defaultLibraryDirectory()
        let shim = URL(fileURLWithPath: directory).appendingPathComponent("libcuda.so.1").path
        guard FileManager.default.fileExists(atPath: shim) else {
            throw ValidationError("no libcuda.so.1 in \(directory); pass --library-directory or run scripts/build.sh")
        }
        let environment = ProcessInfo.processInfo.environment
        let libraryPath = [directory, environment["LD_LIBRARY_PATH"]].compactMap { $0 }.filter { !$0.isEmpty }
        setenv("LD_LIBRARY_PATH", libraryPath.joined(separator: ":"), 1)
        if let server { setenv("XPU_SERVER", server, 1) }
        if let slice { setenv("XPU_SLICE", slice, 1) }
        if let pool { setenv("XPU_POOL", pool, 1) }
        if let devices { setenv("XPU_DEVICES", "\(devices)", 1) }
        if preload {
            let preloads: [String?] = [
                URL(fileURLWithPath: directory).appendingPathComponent("libxpushim.so").path, environment["LD_PRELOAD"],
            ]
            setenv("LD_PRELOAD", preloads.compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " "), 1)
        }
        var arguments = command.map { strdup($0) }
        arguments.append(nil)
        execvp(program, &arguments)
        let reason = String(cString: strerror(errno))
        FileHandle.standardError.write(Data("xpu-run: cannot run \(program): \(reason)\n".utf8))
        throw ExitCode(127)
    }

    static func defaultLibraryDirectory() -> String {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().appendingPathComponent("../lib").standardizedFileURL.path
    }
}
