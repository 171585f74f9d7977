import Foundation
import Testing

/// Compute shares on the simulated device, end to end: tenants with shares, modes and priorities
/// through the shim reach the server's scheduler, run, and have their device time accounted to
/// their session with the share they asked for. How closely device time follows the shares, and
/// what low-priority load does to a high-priority tenant's latency, are timings: they depend on
/// how busy the machine is, so they are measured by bench/compute-shares/run.sh, and the rules
/// that produce them (proportions, priority order, caps) are checked exactly on a clock the test
/// moves in ComputeSchedulerTests.
@Suite("Compute shares", .serialized)
struct ComputeShareTests {
    /// Loop iterations per kernel (about 2 ms on the interpreter) and kernels per batch.
    static let iterations = "40000"

    /// Runs one `compute_share` tenant per slice over a common window, each to a good end.
    static func run(
        _ slices: [String], window: Int, batch: Int = 8, streams: Bool = false, server: Server, harness: Harness
    ) throws {
        let start = Int(Date().timeIntervalSince1970 * 1000) + 1500
        let tenants = try slices.map { slice in
            try harness.startRemote(
                "compute_share",
                [String(start), String(window), iterations, String(slice.contains("priority=high") ? 1 : batch)]
                    + (streams ? ["stream"] : []),
                server: server, environment: slice.isEmpty ? [:] : ["XPU_SLICE": slice])
        }
        defer { for tenant in tenants { tenant.stop(terminateFirst: false) } }
        for tenant in tenants {
            let output = tenant.finish(timeout: .seconds(120))
            try #require(output.status == .exited(0), "tenant failed:\n\(output.stdout)\n\(output.stderr)")
        }
    }

    @Test("tenants with shares run and the server accounts device time to each one's share", arguments: [[10, 90], [20, 30, 50]])
    func shares(_ percents: [Int]) throws {
        try Self.checkShares(percents, streams: false)
    }

    @Test("tenants with shares that launch into streams of their own are scheduled and accounted alike")
    func sharesInStreams() throws {
        try Self.checkShares([30, 70], streams: true)
    }

    /// Device time, share and mode of every released session with a share, from the server's log.
    static func accounted(_ log: String) -> [(share: Double, nanoseconds: Double, mode: String)] {
        log.split(separator: "\n").filter { $0.contains("session released") }
            .compactMap { line in
                guard let share = Self.field("compute", in: line).flatMap({ Double($0.dropLast()) }),
                    let nanoseconds = Self.field("deviceNanoseconds", in: line).flatMap(Double.init),
                    let mode = Self.field("mode", in: line)
                else { return nil }
                return (share, nanoseconds, mode)
            }
    }

    /// Runs tenants with `percents` over a 2 s window on a new server (with `serverArguments`)
    /// and checks that each ended well and that the server charged device time to a session with
    /// its share. (How many kernels a tenant completes inside the window depends on how fast this
    /// machine runs it: not asserted. Every tenant runs one kernel before the window, so each
    /// session has device time.)
    static func checkShares(_ percents: [Int], streams: Bool, serverArguments: [String] = []) throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness, arguments: serverArguments)
        try Self.run(percents.map { "compute=\($0)%" }, window: 2000, streams: streams, server: server, harness: harness)
        server.stop()
        let tenants = Self.accounted(server.process.stderr.text)
        #expect(tenants.map(\.share).sorted() == percents.map(Double.init).sorted(), "sessions with a share: \(tenants)")
        #expect(tenants.allSatisfy { $0.nanoseconds > 0 && $0.mode == "guaranteed" }, "\(tenants)")
        let total = tenants.map(\.nanoseconds).reduce(0, +)
        // For the record only (bench/compute-shares/run.sh measures it on a quiet machine).
        print("compute shares \(percents): device time " + tenants.map { "\($0.share)% -> \(String(format: "%.1f", $0.nanoseconds / total * 100))%" }.joined(separator: ", "))
    }

    /// The value of `name=` in a log line (up to the next space).
    static func field(_ name: String, in line: Substring) -> String? {
        guard let range = line.range(of: " \(name)=") ?? line.range(of: "\(name)=") else { return nil }
        return String(line[range.upperBound...].prefix { $0 != " " })
    }

    @Test("a guaranteed and a capped 30% tenant alone both run, each accounted with its mode")
    func guaranteedAndCappedAlone() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        try Self.run(["compute=30%"], window: 1500, server: server, harness: harness)
        try Self.run(["compute=30%,mode=capped"], window: 1500, server: server, harness: harness)
        server.stop()
        let tenants = Self.accounted(server.process.stderr.text)
        #expect(tenants.map(\.mode) == ["guaranteed", "capped"], "\(tenants)")
        #expect(tenants.allSatisfy { $0.share == 30 && $0.nanoseconds > 0 }, "\(tenants)")
    }

    @Test("a high-priority tenant and low-priority load all run and are accounted to their shares")
    func priority() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        try Self.run(
            ["priority=low,compute=45%", "priority=low,compute=45%", "priority=high,compute=10%"], window: 1500, server: server,
            harness: harness)
        server.stop()
        let tenants = Self.accounted(server.process.stderr.text)
        #expect(tenants.map(\.share).sorted() == [10, 45, 45], "\(tenants)")
        #expect(tenants.allSatisfy { $0.nanoseconds > 0 }, "\(tenants)")
    }
}
