import ArgumentParser

/// Placeholder for `xpu-bench pool-sim` (the pool issue).
struct PoolSimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pool-sim", abstract: "Not built yet.")
}
