import ArgumentParser
import XPURemoteServerCLI

/// The thin async entry point; the command itself lives in XPURemoteServerCLI.
@main
struct Entry: AsyncParsableCommand {
    static let configuration = RemoteServerCommand.configuration

    @OptionGroup var command: RemoteServerCommand

    func run() async throws {
        try await command.run()
    }
}
