import Foundation
import Testing

/// Compute shares on the simulated device: tenants that saturate it with identical kernels get
/// device time in proportion to their shares; a capped share is a ceiling, a guaranteed one a
/// floor that borrows idle capacity; high-priority work goes first.
@Suite("Compute shares", .serialized)
struct ComputeShareTests {
    /// Loop iterations per kernel (about 2 ms on the interpreter) and kernels per batch.
    static let iterations = "40000"

    /// Runs one `compute_share` tenant per slice over a common window; returns kernels completed
    /// and mean batch latency (µs) per tenant.
    static func run(
        _ slices: [String], window: Int, batch: Int = 8, streams: Bool = false, server: Server, harness: Harness
    ) throws -> [(Int, Int)] {
        let start = Int(Date().timeIntervalSince1970 * 1000) + 1500
        let tenants = try slices.map { slice in
            try harness.startRemote(
                "compute_share",
                [String(start), String(window), iterations, String(slice.contains("priority=high") ? 1 : batch)]
                    + (streams ? ["stream"] : []),
                server: server, environment: slice.isEmpty ? [:] : ["XPU_SLICE": slice])
        }
        defer { for tenant in tenants { tenant.stop(terminateFirst: false) } }
        return try tenants.map { tenant in
            let output = tenant.finish(timeout: .seconds(120))
            try #require(output.status == .exited(0), "tenant failed:\n\(output.stdout)\n\(output.stderr)")
            func value(_ prefix: String) -> Int {
                output.stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? -1
            }
            return (value("kernels "), value("mean latency us "))
        }
    }

    @Test("device time follows the shares within 3 points", arguments: [[10, 90], [30, 70], [50, 50], [20, 30, 50]])
    func shares(_ percents: [Int]) throws {
        try Self.checkShares(percents, streams: false)
    }

    @Test("shares hold for kernels launched into streams of the tenants' own")
    func sharesInStreams() throws {
        try Self.checkShares([30, 70], streams: true)
    }

    /// Runs tenants with `percents` over a 5 s window on a new server (with `serverArguments`)
    /// and checks each one's device time against its share.
    static func checkShares(_ percents: [Int], streams: Bool, serverArguments: [String] = []) throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness, arguments: serverArguments)
        _ = try Self.run(percents.map { "compute=\($0)%" }, window: 5000, streams: streams, server: server, harness: harness)
        server.stop()
        // Device time as the server measured it, from each session's closing log line (with
        // the turns that started only after a scheduler wait timed out, for the record).
        let tenants = server.process.stderr.text.split(separator: "\n").filter { $0.contains("session released") }
            .compactMap { line -> (Double, Double, String)? in
                guard let share = Self.field("compute", in: line).flatMap({ Double($0.dropLast()) }),
                    let nanoseconds = Self.field("deviceNanoseconds", in: line).flatMap(Double.init)
                else { return nil }
                return (share, nanoseconds, Self.field("schedulerStalls", in: line) ?? "?")
            }
        try #require(tenants.count == percents.count, "sessions with a share: \(tenants)")
        let total = tenants.map(\.1).reduce(0, +)
        try #require(total > 1e9, "too little device time: \(tenants)")
        for (share, nanoseconds, _) in tenants {
            let measured = nanoseconds / total * 100
            #expect(abs(measured - share) <= 3, "share \(share)%: measured \(measured)% of device time (\(tenants))")
        }
    }

    /// The value of `name=` in a log line (up to the next space).
    static func field(_ name: String, in line: Substring) -> String? {
        guard let range = line.range(of: " \(name)=") ?? line.range(of: "\(name)=") else { return nil }
        return String(line[range.upperBound...].prefix { $0 != " " })
    }

    @Test("a guaranteed 30% tenant alone gets the device; a capped one gets less")
    func guaranteedAlone() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        _ = try Self.run(["compute=30%"], window: 3000, server: server, harness: harness)
        _ = try Self.run(["compute=30%,mode=capped"], window: 3000, server: server, harness: harness)
        server.stop()
        // Each tenant's device time, as the server measured it, over its 3 s window. (Kernel
        // counts are no measure here: on a loaded machine the interpreter's speed varies from
        // one window to the next, while the device time a tenant held does not depend on it.)
        let released = server.process.stderr.text.split(separator: "\n").filter { $0.contains("session released") }
        func share(mode: String) -> Double? {
            released.first { Self.field("mode", in: $0) == mode && Self.field("compute", in: $0) == "30.0%" }
                .flatMap { Self.field("deviceNanoseconds", in: $0) }.flatMap(Double.init).map { $0 / 3e9 * 100 }
        }
        let guaranteed = try #require(share(mode: "guaranteed"), "no guaranteed session in the log")
        let capped = try #require(share(mode: "capped"), "no capped session in the log")
        #expect(guaranteed > 90, "guaranteed 30% alone used \(guaranteed)% of the device over the window")
        #expect(abs(capped - 30) <= 3, "capped 30% alone used \(capped)% of the device over the window")
    }

    @Test("a high-priority tenant's latency under low-priority load stays within 1.5x of alone")
    func priority() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let alone = try Self.run(["priority=high,compute=10%"], window: 2500, server: server, harness: harness)[0].1
        let loaded = try Self.run(
            ["priority=low,compute=45%", "priority=low,compute=45%", "priority=high,compute=10%"], window: 2500, server: server,
            harness: harness)[2].1
        #expect(alone > 0 && Double(loaded) <= 1.5 * Double(alone), "latency alone \(alone) us, under load \(loaded) us")
    }
}
