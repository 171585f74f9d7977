import ArgumentParser
import CXPUDriver
import Foundation
import XPUProtocol
import XPUTransport

#if canImport(Glibc)
import Glibc
#endif

/// `xpu-bench latency`: the round trip of a small synchronous call through shim → transport →
/// server, beside the floors it is judged against, on an idle machine and with one core busy.
struct LatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Round trip of a small synchronous call, beside the protocol's ping, raw TCP ping-pong and the direct call.",
        discussion: """
            The call (--call) is one that must reach the server: cuMemGetInfo_v2 by default (free \
            memory is the server's to know). Measured in the same run and interleaved with it in \
            rounds: the protocol's Ping over a session of xpu-bench's own (same transport, the \
            server answers without the driver); a raw TCP ping-pong of the call's frame sizes with \
            a peer in another process (`xpu-bench echo-peer`, started on loopback, or --echo-peer \
            on the server's host) and with a peer thread in this process (loopback); and the same \
            call on libxpusim.so in this process. Each under --load: idle (xpu-bench starts no \
            load; other processes' share of the CPUs is reported) and busy (xpu-bench starts one \
            process that spins on one core). The threads of xpu-bench and of its server are \
            watched during the raw baselines and while a session is held idle afterwards: their \
            wake-ups and CPU are reported, so a baseline that something of ours kept awake shows.
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

/// How busy the machine is kept while a condition is measured.
enum LatencyLoad: String, CaseIterable, Codable, ExpressibleByArgument {
    case idle, busy, both

    var conditions: [LatencyLoad] { self == .both ? [.idle, .busy] : [self] }

    var how: String {
        switch self {
        case .idle: "idle: xpu-bench starts no load (what other processes use is reported as machineBusy)"
        case .busy: "busy: xpu-bench runs `xpu-bench spin`, one process spinning on one core"
        case .both: "idle and busy"
        }
    }
}

struct LatencySettings: ParsableArguments {
    @Option(help: "Measured calls per series and load.")
    var iterations = 20_000

    @Option(help: "Unmeasured calls per series first.")
    var warmup = 2_000

    @Option(help: "Rounds the series are interleaved in (shim, ping, raw, direct, shim, ...).")
    var rounds = 10

    @Option(help: "The call: \(LatencyCall.allCases.map(\.rawValue).joined(separator: ", ")).")
    var call: LatencyCall = .memGetInfo

    @Option(help: "The machine's load while measuring: idle, busy (one core kept busy by a spinning process xpu-bench starts), or both.")
    var load: LatencyLoad = .both

    @Option(help: "A running `xpu-bench echo-peer` (HOST:PORT), on the server's host with --server: the raw baseline across the same network. Default: one started on loopback when xpu-bench starts the server.")
    var echoPeer: String?

    @Option(help: "Seconds a session is held idle after the measurement while the server's and xpu-bench's threads are watched (0: skip).")
    var idleSeconds = 1.0
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

