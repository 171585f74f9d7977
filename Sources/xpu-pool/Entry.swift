import ArgumentParser
import XPUPool

/// The thin async entry point; the command itself lives in XPUPool.
@main
struct Entry: AsyncParsableCommand {
    static let configuration = PoolCommand.configuration

    @OptionGroup var command: PoolCommand

    func run() async throws {
        try await command.run()
    }
}
