import ArgumentParser

/// `xpu-bench`: measurements of xpu-remote, each printed beside a baseline measured in the same run.
public struct BenchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "xpu-bench",
        abstract: "Measure xpu-remote: every figure beside a baseline measured in the same run.",
        subcommands: [
            PoolSimCommand.self, InterpreterCommand.self, LatencyCommand.self, LaunchCommand.self,
            BandwidthCommand.self, AllCommand.self, TransportsCommand.self, SlicingCommand.self, EchoPeerCommand.self,
            SpinCommand.self, OpenCLCommand.self,
        ])

    public init() {}
}
