import ArgumentParser
import Foundation

/// `xpu-bench all`: latency, launch, bandwidth and the cost of slicing in one run against one
/// server, every figure beside its baseline; `--json` prints one object whose `figures` each carry
/// value, baseline and ratio, followed by the details of each measurement.
struct AllCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "Latency, launch rate, bandwidth and the cost of slicing in one run; --json prints one object.")

    @OptionGroup var rig: BenchRigOptions
    @OptionGroup var latency: LatencySettings
    @OptionGroup var launch: LaunchSettings
    @OptionGroup var bandwidth: BandwidthSettings
    @OptionGroup var slicing: SlicingSettings

    @Flag(help: "Leave out the slicing measurement (it asks the server for two slices).")
    var skipSlicing = false

    @Option(help: "Write an SVG plot of bandwidth vs size to this file.")
    var svg: String?

    func run() throws {
        let rig = try BenchRig(options: rig)
        defer { rig.shutdown() }
        let latencyResult = try LatencyBench(settings: latency).run(rig: rig)
        let launchResult = try LaunchBench(settings: launch).run(rig: rig)
        let bandwidthResult = try BandwidthBench(settings: bandwidth).run(rig: rig)
        let slicingResult = skipSlicing ? nil : try SlicingBench(settings: slicing).run(rig: rig)
        if let svg {
            try BandwidthPlot.svg(bandwidthResult).write(toFile: svg, atomically: true, encoding: .utf8)
            progress("all: plot written to \(svg)")
        }
        let report = AllReport(
            run: BenchRunInfo(rig: rig),
            figures: latencyResult.figures + launchResult.figures + bandwidthResult.figures + (slicingResult?.figures ?? []),
            latency: latencyResult, launch: launchResult, bandwidth: bandwidthResult, slicing: slicingResult)
        if self.rig.json {
            print(try BenchOutput.json(report))
        } else {
            print("server: \(report.run.server); commit \(report.run.commit ?? "unknown"); \(report.run.cores) cores\n")
            print(latencyResult.summary)
            print(BenchOutput.table(latencyResult.figures))
            print(launchResult.summary)
            print(BenchOutput.table(launchResult.figures))
            print(bandwidthResult.matrix, terminator: "")
            if let slicingResult {
                print("\n" + slicingResult.summary)
                print(BenchOutput.table(slicingResult.figures), terminator: "")
            }
        }
    }
}

struct AllReport: Codable {
    var run: BenchRunInfo
    /// Every figure of the run: value, baseline, ratio.
    var figures: [BenchFigure]
    var latency: LatencyResult
    var launch: LaunchResult
    var bandwidth: BandwidthResult
    /// Absent with --skip-slicing.
    var slicing: SlicingResult?
}
