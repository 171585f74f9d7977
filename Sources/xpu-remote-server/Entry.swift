import ArgumentParser
import Foundation
import XPURemoteServerCLI

/// The thin entry point; the command itself lives in XPURemoteServerCLI. A session process
/// (`--tenant-processes`) is served on the main thread without Swift concurrency, so nothing of
/// libdispatch's worker pool wakes it while its session is idle; the server runs async.
@main
enum Entry {
    static func main() {
        if CommandLine.arguments.contains("--serve-session") {
            let command = Command.parseOrExit()
            if command.command.isSessionProcess { exit(command.command.serveSessionProcess()) }
        }
        Task {
            await Command.main()
            exit(0)
        }
        dispatchMain()
    }
}

struct Command: AsyncParsableCommand {
    static let configuration = RemoteServerCommand.configuration

    @OptionGroup var command: RemoteServerCommand

    func run() async throws {
        try await command.run()
    }
}
