import CXPUDriver
import Foundation
import XPUTransport

#if canImport(Glibc)
import Glibc
#endif

/// What `latency` times, each a series of round trips.
enum LatencySeriesKind: String, Codable, Sendable, CaseIterable {
    /// The call through the shim, the transport and the server, on libxpusim.so.
    case shim
    /// The protocol's Ping over a session of xpu-bench's own (no shim, no driver).
    case ping
    /// Raw TCP ping-pong with `xpu-bench echo-peer`, another process (loopback or the server's host).
    case rawProcesses = "raw-processes"
    /// Raw TCP ping-pong with a peer thread of this process, on loopback.
    case rawThreads = "raw-threads"
    /// The call on libxpusim.so in this process.
    case direct

    var isRaw: Bool { self == .rawProcesses || self == .rawThreads }
}

/// One series under one load.
struct LatencySeriesResult: Codable, Sendable {
    var kind: LatencySeriesKind
    var name: String
    var latency: LatencySeries
    /// CPU of the measuring thread per call (the shim's spin, when it spins, is in it).
    var clientCPUPerCallMicroseconds: Double
    /// CPU of the server xpu-bench started, all threads, per call; nil for a --server one.
    var serverCPUPerCallMicroseconds: Double?
}

/// Every series under one load, and what else ran meanwhile.
struct LatencyCondition: Codable, Sendable {
    var load: LatencyLoad
    /// How the load was made (or kept away).
    var how: String
    /// The share of all cores busy over the condition, from /proc/stat (everything on the
    /// machine: these measurements, the spinning process when busy, other users).
    var machineBusy: Double
    var series: [LatencySeriesResult]
    /// Switches (wake-ups) of our other threads while the raw baselines ran: every thread of the
    /// server xpu-bench started and of xpu-bench itself except the measuring thread and the raw
    /// peer thread. Near 0 per raw call means nothing of ours ran beside them.
    var ourWakeupsDuringRaw: UInt64
    var rawCalls: Int

    func series(_ kind: LatencySeriesKind) -> LatencySeriesResult? { series.first { $0.kind == kind } }
}

/// The session held idle after the measurement: what our processes did meanwhile.
struct LatencyIdleHold: Codable, Sendable {
    var seconds: Double
    /// Switches and CPU of the server xpu-bench started (all threads); nil for a --server one.
    var serverWakeups: UInt64?
    var serverCPUMicroseconds: Double?
    /// Switches and CPU of xpu-bench's threads other than the one that waits out the hold.
    var benchWakeups: UInt64
    var benchCPUMicroseconds: Double
}

struct LatencyResult: Codable, Sendable {
    var call: String
    var requestFrameBytes: Int
    var replyFrameBytes: Int
    /// The shim's and the ping session's busy-poll limit in microseconds (0: off).
    var clientBusyPollMicroseconds: Int
    var conditions: [LatencyCondition]
    var idleHold: LatencyIdleHold?
    /// What was left out and why (no raw peer across the network, ...).
    var notes: [String]
    var figures: [BenchFigure]

    var summary: String {
        var lines = [
            "latency: \(call), request frame \(requestFrameBytes) B, reply frame \(replyFrameBytes) B, "
                + "\(conditions.first?.series.first?.latency.samples ?? 0) calls per series and load (microseconds); "
                + "client busy-poll \(clientBusyPollMicroseconds) us"
        ]
        for condition in conditions {
            lines.append(
                "  \(condition.how); machine busy \(String(format: "%.0f%%", condition.machineBusy * 100)) of all cores; "
                    + "our other threads woke \(condition.ourWakeupsDuringRaw) times in \(condition.rawCalls) raw calls")
            for series in condition.series {
                let server = series.serverCPUPerCallMicroseconds.map { String(format: ", server %.2f", $0) } ?? ""
                lines.append(
                    "    \(series.name): p50 \(BenchOutput.format(series.latency.p50, "us")), p99 \(BenchOutput.format(series.latency.p99, "us")); "
                        + String(format: "CPU per call: client %.2f", series.clientCPUPerCallMicroseconds) + server + " us")
            }
        }
        if let hold = idleHold {
            let server = hold.serverWakeups.map { "server woke \($0) times (\(String(format: "%.0f", hold.serverCPUMicroseconds ?? 0)) us CPU), " } ?? ""
            lines.append(
                "  session held idle \(hold.seconds) s: \(server)xpu-bench's other threads woke \(hold.benchWakeups) times "
                    + "(\(String(format: "%.0f", hold.benchCPUMicroseconds)) us CPU)")
        }
        for note in notes { lines.append("  note: \(note)") }
        return lines.joined(separator: "\n")
    }
}

struct LatencyBench {
    var settings: LatencySettings

    /// A series to time: what it is and one round trip of it.
    private struct Series {
        var kind: LatencySeriesKind
        var name: String
        var invoke: () throws -> Void
    }

    func run(rig: BenchRig) throws -> LatencyResult {
        let call = settings.call
        let frames = call.frameBytes
        var notes: [String] = []
        let remoteCall = try Self.makeCall(call, session: rig.remote)
        let directCall = try Self.makeCall(call, session: rig.direct)
        defer {
            remoteCall.cleanup()
            directCall.cleanup()
        }
        let ping = try ProtocolPing(server: rig.serverEndpoint, busyPoll: rig.busyPoll)

        // The raw peers: another process (started here on loopback, or given on the server's
        // host) and a thread of this process (loopback, so only beside a local server).
        var echoChild: BenchChild?
        defer { echoChild?.stop() }
        let rawProcesses: RawTCPBaseline?
        if let given = settings.echoPeer {
            guard let endpoint = Endpoint(parsing: given) else { throw BenchError("--echo-peer: not HOST:PORT: \(given)") }
            rawProcesses = try RawTCPBaseline(peer: endpoint)
        } else if rig.serverProcessID != nil {
            let child = try BenchChild(["echo-peer", "--listen", "127.0.0.1:0"], banner: EchoPeerCommand.banner)
            echoChild = child
            guard let announced = child.announced, let endpoint = Endpoint(parsing: announced) else {
                throw BenchError("xpu-bench echo-peer announced no address")
            }
            rawProcesses = try RawTCPBaseline(peer: endpoint)
        } else {
            rawProcesses = nil
            notes.append("no raw TCP baseline across the network: run `xpu-bench echo-peer --listen HOST:PORT` on the server's host and pass --echo-peer")
        }
        let rawThreads = rig.serverProcessID != nil ? try RawTCPBaseline() : nil
        if rawThreads == nil { notes.append("no two-thread raw baseline: its loopback is not the server's network") }

        let sizes = "\(frames.request) B / \(frames.reply) B"
        var series = [
            Series(kind: .shim, name: "\(call.functionName) via shim", invoke: remoteCall.invoke),
            Series(kind: .ping, name: "protocol Ping (xpu-bench's own session, no driver)", invoke: ping.ping),
        ]
        if let rawProcesses {
            let peer = settings.echoPeer.map { "echo-peer at \($0)" } ?? "echo-peer process, loopback"
            series.append(Series(kind: .rawProcesses, name: "raw TCP \(sizes), two processes (\(peer))") {
                try rawProcesses.exchange(request: frames.request, reply: frames.reply)
            })
        }
        if let rawThreads {
            series.append(Series(kind: .rawThreads, name: "raw TCP \(sizes), two threads (loopback)") {
                try rawThreads.exchange(request: frames.request, reply: frames.reply)
            })
        }
        series.append(Series(kind: .direct, name: "\(call.functionName) direct on libxpusim.so", invoke: directCall.invoke))

        progress("latency: warm-up (\(settings.warmup) calls per series)")
        for _ in 0..<settings.warmup {
            for one in series { try one.invoke() }
        }
        // Our threads that may run during a raw series without being part of it.
        var measuring: Set<pid_t> = [currentThreadID()]
        if let peer = rawThreads?.peerThread { measuring.insert(peer) }
        func ours() -> [pid_t: ThreadActivity] {
            var threads = ThreadActivity.snapshot(process: getpid(), excluding: measuring) ?? [:]
            if let server = rig.serverProcessID, let serverThreads = ThreadActivity.snapshot(process: server) {
                threads.merge(serverThreads) { mine, _ in mine }
            }
            return threads
        }

        var conditions: [LatencyCondition] = []
        for load in settings.load.conditions {
            conditions.append(try measure(series, load: load, rig: rig, ours: ours))
        }
        let hold = settings.idleSeconds > 0 ? holdIdle(rig: rig, excluding: [currentThreadID()]) : nil
        return LatencyResult(
            call: call.functionName, requestFrameBytes: frames.request, replyFrameBytes: frames.reply,
            clientBusyPollMicroseconds: Int(rig.busyPoll.limit / 1000), conditions: conditions, idleHold: hold, notes: notes,
            figures: Self.figures(conditions))
    }

    /// Times every series in interleaved rounds under `load`.
    private func measure(
        _ series: [Series], load: LatencyLoad, rig: BenchRig, ours: () -> [pid_t: ThreadActivity]
    ) throws -> LatencyCondition {
        var spinner: BenchChild?
        if load == .busy {
            spinner = try BenchChild(["spin"])
            usleep(100_000)  // let it reach its core before the first sample
        }
        defer { spinner?.stop() }
        let rounds = max(1, settings.rounds)
        let perRound = max(1, settings.iterations / rounds)
        var samples = series.map { _ in [UInt64]() }
        var clientCPU = series.map { _ in UInt64(0) }
        var serverCPU = series.map { _ in UInt64(0) }
        for index in samples.indices { samples[index].reserveCapacity(perRound * rounds) }
        var wakeups: UInt64 = 0
        var rawCalls = 0
        let machineBefore = MachineCPU.now()
        for round in 0..<rounds {
            progress("latency (\(load.rawValue)): round \(round + 1)/\(rounds)")
            for (index, one) in series.enumerated() {
                let activityBefore = one.kind.isRaw ? ours() : nil
                let cpuBefore = threadCPUNanoseconds()
                let serverBefore = rig.serverCPUNanoseconds()
                try Self.time(perRound, into: &samples[index], one.invoke)
                clientCPU[index] += threadCPUNanoseconds() - cpuBefore
                if let serverBefore, let serverAfter = rig.serverCPUNanoseconds() { serverCPU[index] += serverAfter &- serverBefore }
                if let activityBefore {
                    wakeups += ThreadActivity.during(activityBefore, ours()).switches
                    rawCalls += perRound
                }
            }
        }
        let machineBusy = MachineCPU.now().busyFraction(since: machineBefore)
        let calls = Double(perRound * rounds)
        let results = series.indices.map { index in
            LatencySeriesResult(
                kind: series[index].kind, name: series[index].name, latency: LatencySeries(nanoseconds: samples[index]),
                clientCPUPerCallMicroseconds: Double(clientCPU[index]) / calls / 1000,
                serverCPUPerCallMicroseconds: rig.serverProcessID == nil ? nil : Double(serverCPU[index]) / calls / 1000)
        }
        return LatencyCondition(
            load: load, how: load.how, machineBusy: machineBusy, series: results, ourWakeupsDuringRaw: wakeups, rawCalls: rawCalls)
    }

    /// Holds the sessions open and idle for `idleSeconds`, watching what our processes do.
    private func holdIdle(rig: BenchRig, excluding: Set<pid_t>) -> LatencyIdleHold {
        progress("latency: holding the session idle for \(settings.idleSeconds) s")
        let serverBefore = rig.serverProcessID.flatMap { ThreadActivity.snapshot(process: $0) }
        let benchBefore = ThreadActivity.snapshot(process: getpid(), excluding: excluding) ?? [:]
        usleep(UInt32(settings.idleSeconds * 1_000_000))
        let serverDuring = serverBefore.flatMap { before in
            rig.serverProcessID.flatMap { ThreadActivity.snapshot(process: $0) }.map { ThreadActivity.during(before, $0) }
        }
        let benchDuring = ThreadActivity.during(benchBefore, ThreadActivity.snapshot(process: getpid(), excluding: excluding) ?? [:])
        return LatencyIdleHold(
            seconds: settings.idleSeconds, serverWakeups: serverDuring?.switches,
            serverCPUMicroseconds: serverDuring.map { Double($0.cpuNanoseconds) / 1000 },
            benchWakeups: benchDuring.switches, benchCPUMicroseconds: Double(benchDuring.cpuNanoseconds) / 1000)
    }

    /// The figures: the call against each floor under the same load, and the idle call against
    /// the busy machine's raw two-process round trip (the blocking limit spinning must beat).
    static func figures(_ conditions: [LatencyCondition]) -> [BenchFigure] {
        var figures: [BenchFigure] = []
        func compare(_ value: LatencySeriesResult, _ valueLoad: LatencyLoad, _ baseline: LatencySeriesResult, _ baselineLoad: LatencyLoad) {
            for (label, pick) in [("p50", \LatencySeries.p50), ("p99", \LatencySeries.p99)] {
                figures.append(
                    BenchFigure(
                        name: "latency \(label), \(valueLoad.rawValue): \(value.name)", unit: "us", value: value.latency[keyPath: pick],
                        baselineName: "\(baseline.name), \(baselineLoad.rawValue)", baseline: baseline.latency[keyPath: pick],
                        better: .lower))
            }
        }
        let idle = conditions.first { $0.load == .idle }
        let busy = conditions.first { $0.load == .busy }
        if let idle, let busy, let shim = idle.series(.shim), let raw = busy.series(.rawProcesses) {
            compare(shim, .idle, raw, .busy)
        }
        for condition in conditions {
            guard let shim = condition.series(.shim) else { continue }
            for kind in [LatencySeriesKind.ping, .rawProcesses, .rawThreads, .direct] {
                if let baseline = condition.series(kind) { compare(shim, condition.load, baseline, condition.load) }
            }
        }
        return figures
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
