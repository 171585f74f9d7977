import ArgumentParser
import XPUBenchCLI

/// The thin entry point; every subcommand lives in XPUBenchCLI.
@main
struct Entry: AsyncParsableCommand {
    static let configuration = BenchCommand.configuration
}
