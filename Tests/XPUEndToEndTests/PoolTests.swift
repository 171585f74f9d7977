import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The live pool on loopback: a directory (`xpu-pool`), three simulated-device servers of
/// different sizes registered with it, and clients that name only `XPU_POOL` and `XPU_SLICE`.
@Suite("Pool", .serialized)
struct PoolTests {
    @Test("slices are placed by best fit; a dead server leaves the pool; a restarted directory rebuilds its view")
    func bestFitPool() throws {
        let harness = try Harness.get()
        let directory = try PoolDirectory(harness: harness, listen: "127.0.0.1:0", policy: "bestfit")
        defer { directory.process.stop() }
        let small = try PoolServer(harness: harness, memory: "1GiB", pool: directory.address)
        defer { small.process.stop() }
        let medium = try PoolServer(harness: harness, memory: "2GiB", pool: directory.address)
        defer { medium.process.stop() }
        let large = try PoolServer(harness: harness, memory: "4GiB", pool: directory.address)
        defer { large.process.stop() }
        try directory.requireRegistered([small, medium, large])

        // Holders, one after another: best fit takes the device left with the least free memory.
        var holders: [(ChildProcess, PoolServer)] = []
        defer { for (holder, _) in holders { holder.stop(terminateFirst: false) } }
        let plan: [(String, PoolServer)] = [
            ("mem=768MiB", small),  // small keeps 256 MiB
            ("mem=1536MiB", medium),  // does not fit small; medium keeps 512 MiB
            ("mem=3GiB", large),  // only large; it keeps 1 GiB
            ("mem=512MiB", medium),  // fills medium exactly
            ("mem=200MiB", small),  // small keeps 56 MiB
            ("mem=900MiB", large),  // only large; it keeps 124 MiB
        ]
        for (slice, expected) in plan {
            let holder = try startPoolClient(harness, "pool_hold", ["8"], pool: directory.address, slice: slice)
            holders.append((holder, expected))
            try #require(
                holder.waitForOutput(containing: "ready", timeout: .seconds(120)),
                "\(slice):\n\(holder.stdout.text)\n\(holder.stderr.text)")
            #expect(holder.stderr.text.contains("on \(expected.address) as"), "\(slice) should land on \(expected.address):\n\(holder.stderr.text)")
            #expect(directory.process.stderr.text.contains("placed '\(slice)'"))
        }

        // Nothing fits: refused at cuInit with the reason.
        let tooBig = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "mem=512MiB")
        #expect(tooBig.status != .exited(0))
        #expect(tooBig.stdout.contains("CUDA_ERROR_OUT_OF_MEMORY"), "stdout:\n\(tooBig.stdout)")
        #expect(tooBig.stderr.contains("nothing fits"), "stderr:\n\(tooBig.stderr)")
        let huge = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "mem=8GiB")
        #expect(huge.stdout.contains("CUDA_ERROR_OUT_OF_MEMORY"), "stdout:\n\(huge.stdout)")

        // What still fits goes where it fits; the program sees its slice.
        let fits = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "mem=64MiB")
        #expect(fits.status == .exited(0), "\(fits.stdout)\n\(fits.stderr)")
        #expect(fits.stdout.contains("total \(64 << 20)"))
        #expect(fits.stderr.contains("on \(large.address) as"), "\(fits.stderr)")
        // A compute-only slice goes to the device with the least memory left (medium, full).
        let compute = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "compute=50%")
        #expect(compute.status == .exited(0), "\(compute.stdout)\n\(compute.stderr)")
        #expect(compute.stderr.contains("on \(medium.address) as"), "\(compute.stderr)")

        // Kill the medium server: the directory drops it within the heartbeat timeout (3 s), and
        // the sessions on the other servers go on.
        let killed = ContinuousClock.now
        medium.process.signalGroup(SIGKILL)
        try #require(
            directory.waitForLog("server dropped \(medium.address)", timeout: .seconds(10)),
            "\(directory.process.stderr.text)")
        let dropDelay = ContinuousClock.now - killed
        #expect(dropDelay < .milliseconds(4500), "dropped after \(dropDelay)")
        let moved = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "compute=50%")
        #expect(moved.status == .exited(0), "\(moved.stdout)\n\(moved.stderr)")
        #expect(moved.stderr.contains("on \(small.address) as"), "\(moved.stderr)")
        try expectAlive(holders.filter { $0.1 !== medium }.map(\.0))

        // Restart the directory on the same port: running sessions never notice, and the view is
        // rebuilt from heartbeats with what the servers have granted.
        directory.process.stop()
        let restarted = try PoolDirectory(harness: harness, listen: directory.address, policy: "bestfit")
        defer { restarted.process.stop() }
        try restarted.requireRegistered([small, large], timeout: .seconds(10))
        #expect(!restarted.process.stderr.text.contains("server registered \(medium.address)"))
        try expectAlive(holders.filter { $0.1 !== medium }.map(\.0))
        // Small has 56 MiB left, large 124 MiB: 100 MiB must go to large (an empty view would say small).
        let after = try runPoolClient(harness, "meminfo", pool: restarted.address, slice: "mem=100MiB")
        #expect(after.status == .exited(0), "\(after.stdout)\n\(after.stderr)")
        #expect(after.stderr.contains("on \(large.address) as"), "\(after.stderr)")
    }

    @Test("spread places on the emptiest device; no directory means no device")
    func spreadAndNoDirectory() throws {
        let harness = try Harness.get()
        let directory = try PoolDirectory(harness: harness, listen: "127.0.0.1:0", policy: "spread")
        defer { directory.process.stop() }
        let small = try PoolServer(harness: harness, memory: "1GiB", pool: directory.address)
        defer { small.process.stop() }
        let large = try PoolServer(harness: harness, memory: "4GiB", pool: directory.address)
        defer { large.process.stop() }
        try directory.requireRegistered([small, large])
        let spread = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "mem=256MiB")
        #expect(spread.status == .exited(0), "\(spread.stdout)\n\(spread.stderr)")
        #expect(spread.stderr.contains("on \(large.address) as"), "\(spread.stderr)")

        // Nobody listens on the directory port any more: CUDA_ERROR_NO_DEVICE, reason logged.
        directory.process.stop()
        let orphan = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "mem=256MiB")
        #expect(orphan.stdout.contains("CUDA_ERROR_NO_DEVICE"), "stdout:\n\(orphan.stdout)")
        #expect(orphan.stderr.contains("no pool directory answered"), "stderr:\n\(orphan.stderr)")
    }
}

extension PoolTests {
    @Test("XPU_DEVICES=2: the pool places two slices on two servers, and one program uses both")
    func twoDevicesFromThePool() throws {
        let harness = try Harness.get()
        let directory = try PoolDirectory(harness: harness, listen: "127.0.0.1:0", policy: "bestfit")
        defer { directory.process.stop() }
        let first = try PoolServer(harness: harness, memory: "1GiB", pool: directory.address)
        defer { first.process.stop() }
        let second = try PoolServer(harness: harness, memory: "2GiB", pool: directory.address)
        defer { second.process.stop() }
        try directory.requireRegistered([first, second])
        // Best fit alone would put both slices on the smaller device; a client's slices go to
        // distinct devices while one fits.
        let both = try runPoolClient(harness, "multi_device", ["2"], pool: directory.address, slice: "mem=256MiB", devices: 2)
        #expect(both.status == .exited(0), "\(both.stdout)\n\(both.stderr)")
        #expect(both.stdout.contains("devices: 2"), "\(both.stdout)")
        for ordinal in 0..<2 {
            #expect(both.stdout.contains("device \(ordinal): uuid ends 00, 256 MiB"), "\(both.stdout)")
            #expect(both.stdout.contains("device \(ordinal) vadd: ok"), "\(both.stdout)")
            #expect(both.stdout.contains("device \(ordinal) memory: its own"), "\(both.stdout)")
        }
        for server in [first, second] {
            #expect(both.stderr.contains("on \(server.address) as"), "\(both.stderr)")
            #expect(server.waitForLog("session released", timeout: .seconds(10)), "\(server.process.stderr.text)")
            #expect(server.process.stderr.text.contains("multi_device"), "\(server.process.stderr.text)")
        }
        #expect(directory.process.stderr.text.components(separatedBy: "placed 'mem=256MiB'").count == 3)

        // Two slices that only the larger device could hold one of: nothing is placed (all or
        // none), cuInit says why, and the one slice that fits still goes where it fits.
        let tooMany = try runPoolClient(harness, "multi_device", ["2"], pool: directory.address, slice: "mem=1536MiB", devices: 2)
        #expect(tooMany.stdout.contains("CUDA_ERROR_OUT_OF_MEMORY"), "\(tooMany.stdout)\n\(tooMany.stderr)")
        #expect(tooMany.stderr.contains("nothing fits"), "\(tooMany.stderr)")
        let one = try runPoolClient(harness, "meminfo", pool: directory.address, slice: "mem=1536MiB")
        #expect(one.status == .exited(0), "\(one.stdout)\n\(one.stderr)")
        #expect(one.stderr.contains("on \(second.address) as"), "\(one.stderr)")
    }
}

/// Checks that each holder is still running and still makes calls: its next "alive" line comes.
private func expectAlive(_ holders: [ChildProcess]) throws {
    let before = holders.map { $0.stdout.text.components(separatedBy: "alive").count }
    for (holder, count) in zip(holders, before) {
        let called = holder.waitForOutput(where: { $0.components(separatedBy: "alive").count > count }, timeout: .seconds(30))
        #expect(called, "a holder stopped making calls")
        #expect(holder.poll() == nil, "a holder ended:\n\(holder.stdout.text)\n\(holder.stderr.text)")
    }
}

func poolEnvironment(pool: String, slice: String, devices: Int?, extra: [String: String] = [:]) -> [String: String] {
    var environment = Harness.baseEnvironment().merging(["XPU_POOL": pool, "XPU_SLICE": slice, "XPU_LOG": "info"]) { $1 }
    environment["XPU_DEVICES"] = devices.map(String.init)
    return environment.merging(extra) { $1 }
}

func startPoolClient(
    _ harness: Harness, _ name: String, _ arguments: [String] = [], pool: String, slice: String, devices: Int? = nil,
    environment extra: [String: String] = [:]
) throws -> ChildProcess {
    try ChildProcess(
        harness.runBinary, ["--", harness.program(name)] + arguments,
        environment: poolEnvironment(pool: pool, slice: slice, devices: devices, extra: extra))
}

func runPoolClient(
    _ harness: Harness, _ name: String, _ arguments: [String] = [], pool: String, slice: String, devices: Int? = nil,
    environment extra: [String: String] = [:]
) throws -> ProgramOutput {
    try startPoolClient(harness, name, arguments, pool: pool, slice: slice, devices: devices, environment: extra)
        .finish(timeout: harness.programTimeout)
}

/// Waits for the line `prefix ADDRESS` on a child's standard output.
private func waitForAddress(_ process: ChildProcess, prefix: String, what: String) throws -> String {
    // Whole lines only: the address is read once its newline is in.
    let complete = { (text: String) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() }
    if process.waitForOutput(where: { complete($0).contains { $0.contains(prefix) } }, timeout: .seconds(60)),
        let line = process.stdout.text.split(separator: "\n").first(where: { $0.contains(prefix) }),
        let range = line.range(of: prefix)
    {
        return String(line[range.upperBound...]).trimmingCharacters(in: .whitespaces)
    }
    let status = process.stop()
    throw E2EError(
        "\(what) did not report its address (\(status.map(String.init(describing:)) ?? "running"))\n"
            + "stdout:\n\(process.stdout.text)\nstderr:\n\(process.stderr.text)")
}

/// `xpu-pool` on loopback.
final class PoolDirectory: Sendable {
    let process: ChildProcess
    let address: String

    init(harness: Harness, listen: String, policy: String, arguments: [String] = []) throws {
        let binary = harness.dist.appendingPathComponent("bin/xpu-pool").path
        process = try ChildProcess(binary, ["--listen", listen, "--policy", policy] + arguments, environment: Harness.baseEnvironment())
        address = try waitForAddress(process, prefix: "xpu-pool listening on ", what: "xpu-pool")
    }

    /// Waits until the directory's log (standard error) contains `text`.
    func waitForLog(_ text: String, timeout: Duration) -> Bool {
        process.waitForLog(containing: text, timeout: timeout)
    }

    /// Requires every server to have registered (its heartbeat logged), with both logs on failure.
    func requireRegistered(_ servers: [PoolServer], timeout: Duration = .seconds(30)) throws {
        for server in servers {
            try #require(
                waitForLog("server registered \(server.address)", timeout: timeout),
                "\(process.stderr.text)\n\(server.process.stderr.text)")
        }
    }

    deinit { process.stop(terminateFirst: true, grace: .seconds(2)) }
}

/// A simulated-device server with `devices` devices of `memory` each, registered with a pool
/// directory when `pool` is given.
final class PoolServer: Sendable {
    let process: ChildProcess
    let address: String
    /// HOST:PORT of /metrics, when `arguments` has `--metrics`.
    let metricsAddress: String?

    init(harness: Harness, memory: String, pool: String?, devices: Int = 1, arguments: [String] = []) throws {
        let registration = pool.map { ["--pool", $0] } ?? []
        process = try ChildProcess(
            harness.serverBinary,
            ["--listen", "127.0.0.1:0", "--device", "sim", "--sim-memory", memory] + registration + arguments,
            environment: Harness.baseEnvironment().merging(["XPU_SIM_DEVICES": "\(devices)"]) { $1 })
        address = try waitForAddress(process, prefix: "xpu-remote-server listening on ", what: "xpu-remote-server")
        // Printed before the listening line.
        metricsAddress = arguments.contains("--metrics")
            ? try waitForAddress(process, prefix: "xpu-remote-server metrics on http://", what: "xpu-remote-server").replacingOccurrences(of: "/metrics", with: "")
            : nil
    }

    /// Waits until the server's log (standard error) contains `text`.
    func waitForLog(_ text: String, timeout: Duration) -> Bool {
        process.waitForLog(containing: text, timeout: timeout)
    }

    deinit { process.stop(terminateFirst: true, grace: .seconds(2)) }
}
