import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The live pool's queue, preemption and measured load: a directory, simulated-device servers of
/// 1 GiB, holders (`pool_hold`) that keep a slice, and clients that wait, time out or preempt.
@Suite("Pool queue and preemption", .serialized)
struct PoolQueueTests {
    /// A directory and one registered server.
    static func pool(_ harness: Harness, directoryArguments: [String] = [], serverArguments: [String] = []) throws
        -> (PoolDirectory, PoolServer)
    {
        let directory = try PoolDirectory(harness: harness, listen: "127.0.0.1:0", policy: "bestfit", arguments: directoryArguments)
        let server = try PoolServer(harness: harness, memory: "1GiB", pool: directory.address, arguments: serverArguments)
        try directory.requireRegistered([server])
        return (directory, server)
    }

    static func hold(_ harness: Harness, _ directory: PoolDirectory, slice: String) throws -> ChildProcess {
        let holder = try startPoolClient(harness, "pool_hold", ["8"], pool: directory.address, slice: slice)
        try #require(
            holder.waitForOutput(containing: "alive", timeout: .seconds(120)), "holder '\(slice)':\n\(holder.stdout.text)\n\(holder.stderr.text)")
        return holder
    }

    @Test("a request waits in the queue and is placed when the holder exits; without --preempt a high one times out")
    func waitThenPlaced() throws {
        let harness = try Harness.get()
        let (directory, server) = try Self.pool(harness)
        defer {
            server.process.stop()
            directory.process.stop()
        }
        let holder = try Self.hold(harness, directory, slice: "mem=768MiB,priority=low")
        defer { holder.stop(terminateFirst: false) }

        // Without --preempt, high priority does not preempt: it waits its second, then fails as
        // a request that does not fit does; the holder never notices.
        let timedOut = try runPoolClient(
            harness, "meminfo", pool: directory.address, slice: "mem=512MiB,priority=high", environment: ["XPU_POOL_WAIT": "1s"])
        #expect(timedOut.status != .exited(0))
        #expect(timedOut.stdout.contains("CUDA_ERROR_OUT_OF_MEMORY"), "stdout:\n\(timedOut.stdout)")
        #expect(timedOut.stderr.contains("nothing fits 'mem=512MiB,priority=high' after waiting"), "stderr:\n\(timedOut.stderr)")
        #expect(holder.poll() == nil, "the holder ended:\n\(holder.stdout.text)\n\(holder.stderr.text)")
        #expect(!directory.process.stderr.text.contains("preempting"))

        // A request that may wait a minute: queued, then placed once the holder is gone (its
        // server beats at once when the slice is given back).
        let waiter = try startPoolClient(
            harness, "meminfo", pool: directory.address, slice: "mem=512MiB", environment: ["XPU_POOL_WAIT": "60s"])
        try #require(directory.waitForLog("waiting: 'mem=512MiB'", timeout: .seconds(30)), "\(directory.process.stderr.text)")
        #expect(waiter.poll() == nil, "the waiter should still wait:\n\(waiter.stdout.text)\n\(waiter.stderr.text)")
        let killed = ContinuousClock.now
        holder.signalGroup(SIGKILL)
        let waited = waiter.finish(timeout: harness.programTimeout)
        #expect(waited.status == .exited(0), "\(waited.stdout)\n\(waited.stderr)")
        #expect(waited.stdout.contains("total \(512 << 20)"), "\(waited.stdout)")
        #expect(directory.process.stderr.text.contains("after waiting"), "\(directory.process.stderr.text)")
        // Generous: the point is that it was placed as soon as the pool knew, not at the wait's end.
        #expect(ContinuousClock.now - killed < .seconds(45), "placed \(ContinuousClock.now - killed) after the holder died")
    }

    @Test("with --preempt a high-priority request ends a low-priority slice, which sees CUDA_ERROR_DEVICE_UNAVAILABLE")
    func preemption() throws {
        let harness = try Harness.get()
        let (directory, server) = try Self.pool(harness, directoryArguments: ["--preempt"], serverArguments: ["--metrics", "127.0.0.1:0"])
        defer {
            server.process.stop()
            directory.process.stop()
        }
        let victim = try Self.hold(harness, directory, slice: "mem=768MiB,priority=low")
        defer { victim.stop(terminateFirst: false) }

        // Normal priority never preempts: it fails at once, as without --preempt.
        let normal = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "mem=512MiB")
        #expect(normal.stdout.contains("CUDA_ERROR_OUT_OF_MEMORY"), "stdout:\n\(normal.stdout)")
        #expect(victim.poll() == nil)

        // High priority: the low slice is preempted and the request placed in its room (it waits
        // for the victim without asking to).
        let high = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "mem=512MiB,priority=high")
        #expect(high.status == .exited(0), "\(high.stdout)\n\(high.stderr)")
        #expect(high.stdout.contains("total \(512 << 20)"), "\(high.stdout)")
        #expect(high.stderr.contains("on \(server.address) as"), "\(high.stderr)")

        // The victim's next call failed with the documented status, and it said why; it exited
        // on its own (CHECK), neither crashed nor hung. Its output is read once its pipes have
        // drained (`finish`): read at its exit, the last line was sometimes not in yet.
        let ended = victim.finish(timeout: .seconds(60))
        #expect(ended.status == .exited(1), "victim: \(ended.status.map(String.init(describing:)) ?? "still running")")
        #expect(ended.stdout.contains("-> CUDA_ERROR_DEVICE_UNAVAILABLE"), "\(ended.stdout)")
        #expect(ended.stderr.contains("ended the session: preempted by the pool"), "\(ended.stderr)")

        let log = directory.process.stderr.text
        #expect(log.contains("preempting session"), "\(log)")
        #expect(log.contains("(preemptions: 1)"), "\(log)")
        #expect(server.process.stderr.text.contains("session preempted"), "\(server.process.stderr.text)")
        let scrape = try MetricsTests.scrape(address: try #require(server.metricsAddress))
        #expect(scrape["xpu_server_preemptions_total"] == 1, "\(scrape.text)")
    }

    @Test("load places on the server the heartbeats measure least busy, not the least allocated")
    func measuredLoad() throws {
        let harness = try Harness.get()
        // At debug level the directory logs each heartbeat's busy fractions, as `load` reads them.
        let directory = try PoolDirectory(harness: harness, listen: "127.0.0.1:0", policy: "load", arguments: ["--log-level", "debug"])
        defer { directory.process.stop() }
        let idle = try PoolServer(harness: harness, memory: "1GiB", pool: directory.address)
        defer { idle.process.stop() }
        let busy = try PoolServer(harness: harness, memory: "1GiB", pool: directory.address)
        defer { busy.process.stop() }
        try directory.requireRegistered([idle, busy])
        // The idle server has most of its compute granted to a slice that does nothing; the busy
        // one grants nothing but runs kernels back to back for a session without a slice.
        func direct(_ server: PoolServer, _ name: String, _ arguments: [String], slice: String?) throws -> ChildProcess {
            var environment = Harness.baseEnvironment().merging(["XPU_SERVER": server.address]) { $1 }
            environment["XPU_SLICE"] = slice
            return try ChildProcess(harness.runBinary, ["--", harness.program(name)] + arguments, environment: environment)
        }
        let allocated = try direct(idle, "pool_hold", ["8"], slice: "compute=60%")
        defer { allocated.stop(terminateFirst: false) }
        try #require(allocated.waitForOutput(containing: "alive", timeout: .seconds(120)), "\(allocated.stderr.text)")
        let now = Int(Date().timeIntervalSince1970 * 1000)
        let spinner = try direct(busy, "compute_share", [String(now), "600000", "20000", "4"], slice: nil)
        defer { spinner.stop(terminateFirst: false) }
        // Until the directory has a heartbeat of the busy server measuring it at least half busy
        // (the spinner keeps it near 1000 thousandths): what `load` places by.
        func latestBusy(of server: PoolServer, in log: String) -> Int? {
            let beat = "heartbeat \(server.address) busy="
            guard let line = log.split(separator: "\n").last(where: { $0.contains(beat) }),
                let range = line.range(of: beat)
            else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
        let measured = directory.process.waitForLog(where: { (latestBusy(of: busy, in: $0) ?? 0) >= 500 }, timeout: .seconds(120))
        try #require(measured, "the spinner never kept the device busy:\n\(spinner.stdout.text)\n\(spinner.stderr.text)")
        #expect((latestBusy(of: idle, in: directory.process.stderr.text) ?? 0) < 500, "\(directory.process.stderr.text)")

        let placed = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "mem=64MiB,compute=20%")
        #expect(placed.status == .exited(0), "\(placed.stdout)\n\(placed.stderr)")
        #expect(placed.stderr.contains("on \(idle.address) as"), "should avoid the busy \(busy.address):\n\(placed.stderr)")
    }
}
