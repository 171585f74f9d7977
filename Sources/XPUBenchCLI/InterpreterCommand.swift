import ArgumentParser

/// Placeholder for `xpu-bench interpreter` (the PTX issue).
struct InterpreterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "interpreter", abstract: "Not built yet.")
}
