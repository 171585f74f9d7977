import ArgumentParser
import CXPUDriver
import Foundation
import XPUTransport

/// `xpu-bench launch`: asynchronous launches of an empty kernel, end to end (N launches, then one
/// cuCtxSynchronize), through the shim and directly on libxpusim.so in the same run.
struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Launch rate of an empty kernel through the shim, beside the same launches direct on libxpusim.so.",
        discussion: """
            Each round times N cuLaunchKernel calls (grid 1x1x1, block 1x1x1, default stream) and \
            the cuCtxSynchronize after them, once through the shim and once on libxpusim.so in this \
            process; the figure is the median round. Two kernels: one with no parameters and one \
            with three pointer parameters (kernelParams marshalled by the shim).
            """)

    @OptionGroup var rig: BenchRigOptions
    @OptionGroup var settings: LaunchSettings

    func run() throws {
        let rig = try BenchRig(options: rig)
        defer { rig.shutdown() }
        let result = try LaunchBench(settings: settings).run(rig: rig)
        if self.rig.json {
            print(try BenchOutput.json(LaunchReport(run: BenchRunInfo(rig: rig), launch: result)))
        } else {
            print(result.summary)
            print(BenchOutput.table(result.figures), terminator: "")
        }
    }
}

struct LaunchReport: Codable {
    var run: BenchRunInfo
    var launch: LaunchResult
}

struct LaunchSettings: ParsableArguments {
    @Option(help: "Launches per round, before the one cuCtxSynchronize.")
    var launches = 10_000

    @Option(help: "Rounds per kernel and side; the median round is reported.")
    var launchRounds = 5

    @Option(help: "Unmeasured launches per kernel and side first.")
    var launchWarmup = 200
}

/// One kernel's measurement.
struct LaunchVariantResult: Codable, Sendable {
    var kernel: String
    var parameters: Int
    /// Launches per second, median round, and every round's rate.
    var remoteRate: Double
    var directRate: Double
    var remoteRounds: [Double]
    var directRounds: [Double]
    /// CPU per launch over the measured rounds, in microseconds: this process during the direct
    /// rounds (the caller and the simulated device's threads), this process during the remote
    /// rounds (the caller in the shim), and the server's threads during them (nil for a server
    /// given by --server).
    var directCPUMicroseconds: Double
    var clientCPUMicroseconds: Double
    var serverCPUMicroseconds: Double?
}

struct LaunchResult: Codable, Sendable {
    var launchesPerRound: Int
    var variants: [LaunchVariantResult]
    var figures: [BenchFigure]

    var summary: String {
        "launch: \(launchesPerRound) launches + 1 cuCtxSynchronize per round, median of \(variants.first?.remoteRounds.count ?? 0) rounds"
    }
}

struct LaunchBench {
    var settings: LaunchSettings

    /// Two kernels that return at once: no parameters, and three pointers.
    static let ptx = """
        .version 7.0
        .target sm_80
        .address_size 64

        .visible .entry xpu_bench_empty()
        {
        \tret;
        }

        .visible .entry xpu_bench_empty3(
        \t.param .u64 xpu_bench_empty3_param_0,
        \t.param .u64 xpu_bench_empty3_param_1,
        \t.param .u64 xpu_bench_empty3_param_2
        )
        {
        \tret;
        }

        """

    func run(rig: BenchRig) throws -> LaunchResult {
        let remote = try LaunchTarget(session: rig.remote)
        let direct = try LaunchTarget(session: rig.direct)
        defer {
            remote.cleanup()
            direct.cleanup()
        }
        var variants: [LaunchVariantResult] = []
        var figures: [BenchFigure] = []
        for (kernel, parameters) in [("xpu_bench_empty", 0), ("xpu_bench_empty3", 3)] {
            progress("launch: \(kernel) warm-up")
            try remote.launchRound(kernel: kernel, count: settings.launchWarmup)
            try direct.launchRound(kernel: kernel, count: settings.launchWarmup)
            var remoteRates: [Double] = [], directRates: [Double] = []
            var (clientCPU, serverCPU, directCPU): (UInt64, UInt64?, UInt64) = (0, 0, 0)
            let rounds = max(1, settings.launchRounds)
            for round in 0..<rounds {
                progress("launch: \(kernel) round \(round + 1)/\(settings.launchRounds)")
                let (clientBefore, serverBefore) = (processCPUNanoseconds(), rig.serverCPUNanoseconds())
                remoteRates.append(try remote.launchRound(kernel: kernel, count: settings.launches))
                clientCPU += processCPUNanoseconds() - clientBefore
                if let before = serverBefore, let after = rig.serverCPUNanoseconds(), let sum = serverCPU {
                    serverCPU = sum + (after &- before)
                } else {
                    serverCPU = nil
                }
                let directBefore = processCPUNanoseconds()
                directRates.append(try direct.launchRound(kernel: kernel, count: settings.launches))
                directCPU += processCPUNanoseconds() - directBefore
            }
            let launches = Double(rounds * settings.launches)
            func perLaunch(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1000 / launches }
            let variant = LaunchVariantResult(
                kernel: kernel, parameters: parameters,
                remoteRate: BenchSample(remoteRates).median, directRate: BenchSample(directRates).median,
                remoteRounds: remoteRates, directRounds: directRates,
                directCPUMicroseconds: perLaunch(directCPU), clientCPUMicroseconds: perLaunch(clientCPU),
                serverCPUMicroseconds: serverCPU.map(perLaunch))
            variants.append(variant)
            let label = parameters == 0 ? "empty kernel" : "empty kernel, \(parameters) pointer params"
            figures.append(BenchFigure(
                name: "launch rate: \(label) via shim", unit: "launches/s", value: variant.remoteRate,
                baselineName: "same launches direct on libxpusim.so", baseline: variant.directRate, better: .higher))
            // Where the time goes: CPU per launch on both ends against the direct path's. On one
            // machine the two ends share its cores, so their sum bounds the rate from below.
            if let server = variant.serverCPUMicroseconds {
                figures.append(BenchFigure(
                    name: "CPU per launch: \(label) via shim (client \(String(format: "%.2f", variant.clientCPUMicroseconds)) + server \(String(format: "%.2f", server)))",
                    unit: "us", value: variant.clientCPUMicroseconds + server,
                    baselineName: "same launches direct on libxpusim.so (whole process)", baseline: variant.directCPUMicroseconds,
                    better: .lower))
            }
        }
        return LaunchResult(launchesPerRound: settings.launches, variants: variants, figures: figures)
    }
}

/// CPU time this process has used, all threads (CLOCK_PROCESS_CPUTIME_ID).
func processCPUNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The module and three device buffers for the pointer parameters, on one session.
final class LaunchTarget {
    let session: BenchSession
    private var module: CUmodule?
    private var functions: [String: CUfunction?] = [:]
    private var buffers: [CUdeviceptr] = []

    init(session: BenchSession) throws {
        self.session = session
        let driver = session.driver
        try session.makeCurrent()
        var module: CUmodule?
        let loaded = LaunchBench.ptx.withCString { driver.cuModuleLoadData(&module, $0) }
        try driver.check(loaded, "cuModuleLoadData")
        self.module = module
        for name in ["xpu_bench_empty", "xpu_bench_empty3"] {
            var function: CUfunction?
            try driver.check(driver.cuModuleGetFunction(&function, module, name), "cuModuleGetFunction(\(name))")
            functions[name] = function
        }
        for _ in 0..<3 {
            var pointer: CUdeviceptr = 0
            try driver.check(driver.cuMemAlloc(&pointer, 256), "cuMemAlloc")
            buffers.append(pointer)
        }
    }

    func cleanup() {
        let driver = session.driver
        for pointer in buffers { _ = driver.cuMemFree(pointer) }
        _ = driver.cuModuleUnload(module)
    }

    /// `count` launches then one cuCtxSynchronize; returns launches per second.
    @discardableResult
    func launchRound(kernel: String, count: Int) throws -> Double {
        let driver = session.driver
        try session.makeCurrent()
        guard let function = functions[kernel] else { throw BenchError("no kernel \(kernel)") }
        var arguments = buffers
        let parameterCount = kernel == "xpu_bench_empty3" ? 3 : 0
        return try arguments.withUnsafeMutableBufferPointer { values throws -> Double in
            var pointers: [UnsafeMutableRawPointer?] = (0..<parameterCount).map { UnsafeMutableRawPointer(values.baseAddress! + $0) }
            return try pointers.withUnsafeMutableBufferPointer { parameters throws -> Double in
                let kernelParams = parameterCount == 0 ? nil : parameters.baseAddress
                let start = monotonicNanoseconds()
                for _ in 0..<count {
                    try driver.check(driver.cuLaunchKernel(function, 1, 1, 1, 1, 1, 1, 0, nil, kernelParams, nil), "cuLaunchKernel(\(kernel))")
                }
                try driver.check(driver.cuCtxSynchronize(), "cuCtxSynchronize")
                let elapsed = Double(monotonicNanoseconds() - start) / 1e9
                return Double(count) / elapsed
            }
        }
    }
}
