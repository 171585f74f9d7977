import ArgumentParser
import CXPUDriver
import XPUProtocol
import XPUTransport

/// `xpu-bench latency`: the round trip of a small synchronous call through shim → TCP → server,
/// beside a raw TCP ping-pong of the same frame sizes and the same call on libxpusim.so in-process.
struct LatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Round trip of a small synchronous call, beside raw TCP ping-pong and the direct call.",
        discussion: """
            The call (--call) is one that must reach the server: cuMemGetInfo_v2 by default (free \
            memory is the server's to know). Baselines, measured in the same run and interleaved \
            with it in rounds: a raw TCP ping-pong of the same request and reply sizes (the call's \
            frames, header included) between two sockets on loopback in this process, and the same \
            call on libxpusim.so loaded in this process (no network).
            """)

    @OptionGroup var rig: BenchRigOptions
    @OptionGroup var settings: LatencySettings

    func run() throws {
        let rig = try BenchRig(options: rig)
        defer { rig.shutdown() }
        let result = try LatencyBench(settings: settings).run(rig: rig)
        if self.rig.json {
            print(try BenchOutput.json(LatencyReport(run: BenchRunInfo(rig: rig), latency: result)))
        } else {
            print(result.summary)
            print(BenchOutput.table(result.figures), terminator: "")
        }
    }
}

struct LatencyReport: Codable {
    var run: BenchRunInfo
    var latency: LatencyResult
}

struct LatencySettings: ParsableArguments {
    @Option(help: "Measured calls per series (remote, raw TCP, direct).")
    var iterations = 20_000

    @Option(help: "Unmeasured calls per series first.")
    var warmup = 2_000

    @Option(help: "Rounds the series are interleaved in (remote, raw, direct, remote, ...).")
    var rounds = 10

    @Option(help: "The call: \(LatencyCall.allCases.map(\.rawValue).joined(separator: ", ")).")
    var call: LatencyCall = .memGetInfo
}

/// The small synchronous calls `latency` can time.
enum LatencyCall: String, CaseIterable, Codable, ExpressibleByArgument {
    /// cuMemGetInfo_v2: empty request, 16-byte reply; the server's allocator answers.
    case memGetInfo = "mem-get-info"
    /// cuCtxSynchronize: empty request and reply. A shim that tracks pending work may one day skip
    /// it when nothing is queued, so it is not the default.
    case ctxSynchronize = "ctx-synchronize"
    /// cuStreamQuery on an idle stream: 8-byte request, empty reply (may become local too).
    case streamQuery = "stream-query"

    var functionName: String {
        switch self {
        case .memGetInfo: "cuMemGetInfo_v2"
        case .ctxSynchronize: "cuCtxSynchronize"
        case .streamQuery: "cuStreamQuery"
        }
    }

    /// The call's request and reply frames in bytes, header included, from the protocol's codecs.
    var frameBytes: (request: Int, reply: Int) {
        switch self {
        case .memGetInfo:
            (FrameHeader.size + CuMemGetInfo_v2Request().encoded.count,
             FrameHeader.size + CuMemGetInfo_v2Reply(free: 0, total: 0).encoded.count)
        case .ctxSynchronize:
            (FrameHeader.size + CuCtxSynchronizeRequest().encoded.count,
             FrameHeader.size + CuCtxSynchronizeReply().encoded.count)
        case .streamQuery:
            (FrameHeader.size + CuStreamQueryRequest(hStream: 0).encoded.count,
             FrameHeader.size + CuStreamQueryReply().encoded.count)
        }
    }
}

/// Percentiles of one series, in microseconds.
struct LatencySeries: Codable, Sendable {
    var p50: Double
    var p99: Double
    var p999: Double
    var mean: Double
    var min: Double
    var samples: Int

    init(nanoseconds: [UInt64]) {
        let sample = BenchSample(nanoseconds.map { Double($0) / 1000 })
        p50 = sample.percentile(50)
        p99 = sample.percentile(99)
        p999 = sample.percentile(99.9)
        mean = sample.mean
        min = sample.sorted.first ?? .nan
        samples = nanoseconds.count
    }
}

struct LatencyResult: Codable, Sendable {
    var call: String
    var requestFrameBytes: Int
    var replyFrameBytes: Int
    var remote: LatencySeries
    var rawTCP: LatencySeries
    var direct: LatencySeries
    var figures: [BenchFigure]

    var summary: String {
        "latency: \(call), request frame \(requestFrameBytes) B, reply frame \(replyFrameBytes) B, "
            + "\(remote.samples) calls per series (microseconds)"
    }
}

struct LatencyBench {
    var settings: LatencySettings

    func run(rig: BenchRig) throws -> LatencyResult {
        let call = settings.call
        let frames = call.frameBytes
        let raw = try RawTCPBaseline()
        let remoteCall = try Self.makeCall(call, session: rig.remote)
        let directCall = try Self.makeCall(call, session: rig.direct)
        defer {
            remoteCall.cleanup()
            directCall.cleanup()
        }
        let rawCall: () throws -> Void = { try raw.exchange(request: frames.request, reply: frames.reply) }

        progress("latency: warm-up (\(settings.warmup) calls per series)")
        for _ in 0..<settings.warmup {
            try remoteCall.invoke()
            try rawCall()
            try directCall.invoke()
        }
        let rounds = max(1, settings.rounds)
        let perRound = max(1, settings.iterations / rounds)
        var remote: [UInt64] = [], rawTimes: [UInt64] = [], direct: [UInt64] = []
        remote.reserveCapacity(perRound * rounds)
        rawTimes.reserveCapacity(perRound * rounds)
        direct.reserveCapacity(perRound * rounds)
        for round in 0..<rounds {
            progress("latency: round \(round + 1)/\(rounds)")
            try Self.time(perRound, into: &remote, remoteCall.invoke)
            try Self.time(perRound, into: &rawTimes, rawCall)
            try Self.time(perRound, into: &direct, directCall.invoke)
        }
        let remoteSeries = LatencySeries(nanoseconds: remote)
        let rawSeries = LatencySeries(nanoseconds: rawTimes)
        let directSeries = LatencySeries(nanoseconds: direct)
        let name = "\(call.functionName) via shim"
        let rawName = "raw TCP ping-pong \(frames.request) B / \(frames.reply) B"
        let directName = "\(call.functionName) direct on libxpusim.so"
        let figures = [
            BenchFigure(name: "latency p50: \(name)", unit: "us", value: remoteSeries.p50, baselineName: rawName, baseline: rawSeries.p50, better: .lower),
            BenchFigure(name: "latency p99: \(name)", unit: "us", value: remoteSeries.p99, baselineName: rawName, baseline: rawSeries.p99, better: .lower),
            BenchFigure(name: "latency p99.9: \(name)", unit: "us", value: remoteSeries.p999, baselineName: rawName, baseline: rawSeries.p999, better: .lower),
            BenchFigure(name: "latency p50: \(name)", unit: "us", value: remoteSeries.p50, baselineName: directName, baseline: directSeries.p50, better: .lower),
            BenchFigure(name: "latency p99: \(name)", unit: "us", value: remoteSeries.p99, baselineName: directName, baseline: directSeries.p99, better: .lower),
        ]
        return LatencyResult(
            call: call.functionName, requestFrameBytes: frames.request, replyFrameBytes: frames.reply,
            remote: remoteSeries, rawTCP: rawSeries, direct: directSeries, figures: figures)
    }

    @inline(__always)
    private static func time(_ count: Int, into samples: inout [UInt64], _ body: () throws -> Void) rethrows {
        for _ in 0..<count {
            let start = monotonicNanoseconds()
            try body()
            samples.append(monotonicNanoseconds() - start)
        }
    }

    /// The call bound to one session, with whatever it needs (a stream) made beforehand.
    struct BoundCall {
        var invoke: () throws -> Void
        var cleanup: () -> Void
    }

    static func makeCall(_ call: LatencyCall, session: BenchSession) throws -> BoundCall {
        let driver = session.driver
        try session.makeCurrent()
        switch call {
        case .memGetInfo:
            return BoundCall(
                invoke: {
                    var free = 0, total = 0
                    try driver.check(driver.cuMemGetInfo(&free, &total), "cuMemGetInfo_v2")
                }, cleanup: {})
        case .ctxSynchronize:
            return BoundCall(invoke: { try driver.check(driver.cuCtxSynchronize(), "cuCtxSynchronize") }, cleanup: {})
        case .streamQuery:
            var stream: CUstream?
            try driver.check(driver.cuStreamCreate(&stream, 0), "cuStreamCreate")
            return BoundCall(
                invoke: { try driver.check(driver.cuStreamQuery(stream), "cuStreamQuery") },
                cleanup: { _ = driver.cuStreamDestroy(stream) })
        }
    }
}
