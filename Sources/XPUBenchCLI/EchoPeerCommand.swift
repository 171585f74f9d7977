import ArgumentParser
import Foundation
import XPUTransport

#if canImport(Glibc)
import Glibc
#endif

/// `xpu-bench echo-peer`: the raw TCP baseline's peer as a process of its own. Run it on the
/// server's host and pass `--echo-peer HOST:PORT` to `latency`, so that the raw round trip crosses
/// the same network as the calls; `latency` also starts one itself on loopback for its
/// two-process baseline.
struct EchoPeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-peer",
        abstract: "Serve the raw TCP baseline (the peer of `latency --echo-peer`) until stopped.",
        discussion: """
            Each connection gets a thread that reads a 24-byte header (bytes that follow, bytes \
            to send back) and those bytes, then sends the bytes asked for; plain blocking reads, \
            TCP_NODELAY and 4 MiB socket buffers, as xpu-remote's transport. Prints \
            "xpu-bench echo-peer listening on HOST:PORT" once it listens.
            """)

    @Option(help: "Address to listen on (port 0: any free port).")
    var listen = "127.0.0.1:0"

    func run() throws {
        guard let endpoint = Endpoint(parsing: listen) else { throw ValidationError("--listen: not HOST:PORT: \(listen)") }
        let listener = try Listener(binding: endpoint)
        // Written straight to the descriptor: whoever started this waits for the line.
        let line = "\(EchoPeerCommand.banner)\(listener.endpoint)\n"
        _ = line.withCString { write(1, $0, strlen($0)) }
        while true {
            let connection = try listener.accept()
            Thread.detachNewThread { try? RawTCPBaseline.serve(connection) }
        }
    }

    static let banner = "xpu-bench echo-peer listening on "
}

/// `xpu-bench spin`: keeps one core busy until its parent goes away (the busy machine of
/// `latency --load busy`). Not for direct use.
struct SpinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spin", abstract: "Keep one core busy until the parent process ends (used by `latency`).",
        shouldDisplay: false)

    func run() throws {
        let parent = getppid()
        var turns: UInt64 = 0
        // A plain loop on one core; it looks up its parent now and then, so it never outlives it.
        while true {
            turns &+= 1
            if turns & 0xF_FFFF == 0, getppid() != parent { return }
        }
    }
}

/// A child process of xpu-bench running one of its subcommands (the executable is this one).
final class BenchChild: @unchecked Sendable {
    let process: Process

    /// Starts `xpu-bench <arguments>`; with `banner`, waits for the line that starts with it and
    /// returns the rest in `announced`.
    init(_ arguments: [String], banner: String? = nil) throws {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            throw BenchError("cannot find the xpu-bench executable (/proc/self/exe)")
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        guard let banner else { return }
        let reader = LineReader(output.fileHandleForReading)
        while let line = reader.nextLine() {
            if line.hasPrefix(banner) {
                announced = String(line.dropFirst(banner.count))
                return
            }
        }
        stop()
        throw BenchError("xpu-bench \(arguments.joined(separator: " ")) did not print \"\(banner)\"")
    }

    private(set) var announced: String?

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }
}
