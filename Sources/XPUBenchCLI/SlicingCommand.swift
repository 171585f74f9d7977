import ArgumentParser
import Foundation
import XPUTransport

#if canImport(Glibc)
import Glibc
#endif

/// `xpu-bench slicing`: what a slice costs. Three sessions on one server, measured in the same
/// run with their rounds interleaved: no slice (the baseline), a memory slice, and a memory and
/// compute slice, whose launches go through the server's ComputeScheduler (each kernel runs in
/// its tenant's turn, to completion, so that its device time is measured and charged).
///
/// The shim holds one session per loaded copy and reads `XPU_SLICE` in its `cuInit`, so each
/// variant loads its own copy of `libxpushim.so` (a file copy: `dlopen` would hand back the
/// loaded one for the same file) with `XPU_SLICE` set just before its `cuInit`.
struct SlicingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slicing",
        abstract: "Launch rate and small-call latency with no slice, a memory slice and a memory+compute slice, in one run.",
        discussion: """
            Each round times N cuLaunchKernel calls of an empty kernel (grid 1, block 1, default \
            stream) and the cuCtxSynchronize after them for each variant in turn, then latency \
            calls (cuMemGetInfo_v2, which a memory slice answers from its quota, and \
            cuCtxSynchronize, which it does not touch), one call of each variant in turn. Launch \
            rates are the median round; latencies are percentiles over all rounds. Every sliced \
            figure is given beside the unsliced session's.
            """)

    @OptionGroup var rig: BenchRigOptions
    @OptionGroup var settings: SlicingSettings

    func run() throws {
        let rig = try BenchRig(options: rig)
        defer { rig.shutdown() }
        let result = try SlicingBench(settings: settings).run(rig: rig)
        if self.rig.json {
            print(try BenchOutput.json(SlicingReport(run: BenchRunInfo(rig: rig), slicing: result)))
        } else {
            print(result.summary)
            print(BenchOutput.table(result.figures), terminator: "")
        }
    }
}

struct SlicingReport: Codable {
    var run: BenchRunInfo
    var slicing: SlicingResult
}

struct SlicingSettings: ParsableArguments {
    @Option(help: "The memory slice (XPU_SLICE of the second session).")
    var memorySlice = "mem=1GiB"

    @Option(help: "The memory and compute slice (XPU_SLICE of the third session).")
    var computeSlice = "mem=1GiB,compute=50%"

    @Option(help: "Launches per round, before the one cuCtxSynchronize.")
    var slicingLaunches = 5_000

    @Option(help: "Latency calls per round, of each call.")
    var slicingCalls = 2_000

    @Option(help: "Rounds; each measures every variant once.")
    var slicingRounds = 9
}

/// One session's figures.
struct SlicingVariantResult: Codable, Sendable {
    /// "none", "memory", "memory+compute".
    var name: String
    /// The session's XPU_SLICE (empty for none).
    var slice: String
    /// Launches per second, median round, and every round's rate.
    var launchRate: Double
    var launchRounds: [Double]
    /// Latency of each call, by function name.
    var latency: [String: LatencySeries]
}

struct SlicingResult: Codable, Sendable {
    var launchesPerRound: Int
    var callsPerRound: Int
    var rounds: Int
    var variants: [SlicingVariantResult]
    var figures: [BenchFigure]

    var summary: String {
        "slicing: \(launchesPerRound) empty-kernel launches + 1 cuCtxSynchronize per round (median of \(rounds) rounds); "
            + "\(callsPerRound * rounds) calls per latency series (microseconds)"
    }
}

struct SlicingBench {
    var settings: SlicingSettings

    /// The calls timed for latency: one a memory slice answers differently, one it does not.
    static let calls: [LatencyCall] = [.memGetInfo, .ctxSynchronize]

    func run(rig: BenchRig) throws -> SlicingResult {
        let variants = [("none", ""), ("memory", settings.memorySlice), ("memory+compute", settings.computeSlice)]
        let sessions = try variants.map { name, slice in try Self.session(slice: slice, name: name, dist: rig.dist) }
        let targets = try sessions.map { try LaunchTarget(session: $0) }
        let latencyCalls = try sessions.map { session in try Self.calls.map { try LatencyBench.makeCall($0, session: session) } }
        defer {
            for target in targets { target.cleanup() }
            for calls in latencyCalls { for call in calls { call.cleanup() } }
        }

        progress("slicing: warm-up")
        for (target, calls) in zip(targets, latencyCalls) {
            try target.launchRound(kernel: "xpu_bench_empty", count: min(200, settings.slicingLaunches))
            for call in calls { for _ in 0..<200 { try call.invoke() } }
        }
        let rounds = max(1, settings.slicingRounds)
        var rates = [[Double]](repeating: [], count: variants.count)
        var samples = [[[UInt64]]](repeating: [[UInt64]](repeating: [], count: Self.calls.count), count: variants.count)
        for round in 0..<rounds {
            progress("slicing: round \(round + 1)/\(rounds)")
            for index in variants.indices {
                rates[index].append(try targets[index].launchRound(kernel: "xpu_bench_empty", count: settings.slicingLaunches))
            }
            // One call of each variant in turn, the first one rotating, so that a burst of load
            // on the machine, or being next after another session's call, falls on every variant.
            for call in Self.calls.indices {
                for turn in 0..<settings.slicingCalls {
                    for offset in variants.indices {
                        let index = (turn + offset) % variants.count
                        let start = monotonicNanoseconds()
                        try latencyCalls[index][call].invoke()
                        samples[index][call].append(monotonicNanoseconds() - start)
                    }
                }
            }
        }
        let results = variants.indices.map { index in
            SlicingVariantResult(
                name: variants[index].0, slice: variants[index].1, launchRate: BenchSample(rates[index]).median,
                launchRounds: rates[index],
                latency: Dictionary(uniqueKeysWithValues: Self.calls.indices.map {
                    (Self.calls[$0].functionName, LatencySeries(nanoseconds: samples[index][$0]))
                }))
        }
        return SlicingResult(
            launchesPerRound: settings.slicingLaunches, callsPerRound: settings.slicingCalls, rounds: rounds,
            variants: results, figures: Self.figures(results))
    }

    /// Every sliced figure beside the unsliced session's.
    static func figures(_ variants: [SlicingVariantResult]) -> [BenchFigure] {
        guard let base = variants.first else { return [] }
        var figures: [BenchFigure] = []
        let baselineName = "same, no slice"
        for variant in variants.dropFirst() {
            let label = "\(variant.name) slice (\(variant.slice))"
            figures.append(BenchFigure(
                name: "launch rate, empty kernel: \(label)", unit: "launches/s", value: variant.launchRate,
                baselineName: baselineName, baseline: base.launchRate, better: .higher))
            for call in calls.map(\.functionName) {
                guard let series = variant.latency[call], let baseSeries = base.latency[call] else { continue }
                figures.append(BenchFigure(
                    name: "latency p50, \(call): \(label)", unit: "us", value: series.p50,
                    baselineName: baselineName, baseline: baseSeries.p50, better: .lower))
                figures.append(BenchFigure(
                    name: "latency p99, \(call): \(label)", unit: "us", value: series.p99,
                    baselineName: baselineName, baseline: baseSeries.p99, better: .lower))
            }
        }
        return figures
    }

    /// A session of its own copy of the shim, opened with `XPU_SLICE=slice` (none when empty).
    static func session(slice: String, name: String, dist: String) throws -> BenchSession {
        let folder = NSTemporaryDirectory() + "xpu-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let copy = folder + "/libxpushim-\(name.replacingOccurrences(of: "+", with: "-")).so"
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: dist + "/lib/libxpushim.so", toPath: copy)
        let previous = getenv("XPU_SLICE").map { String(cString: $0) }
        defer {
            if let previous { setenv("XPU_SLICE", previous, 1) } else { unsetenv("XPU_SLICE") }
        }
        if slice.isEmpty { unsetenv("XPU_SLICE") } else { setenv("XPU_SLICE", slice, 1) }
        return try BenchSession(driver: BenchDriver(label: "shim (\(name) slice)", path: copy))
    }
}
