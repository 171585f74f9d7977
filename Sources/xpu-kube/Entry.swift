import ArgumentParser
import XPUKubeCLI

/// The thin async entry point; the subcommands live in XPUKubeCLI.
@main
struct Entry: AsyncParsableCommand {
    static let configuration = KubeCommand.configuration
}
