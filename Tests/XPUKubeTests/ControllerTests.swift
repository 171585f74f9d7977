import Foundation
import Testing
import XPUKube
import XPUKubeDriver
import XPUPool
import XPUProtocol
import XPUTiming
import XPUTransport

/// A directory clock that stands still until the test moves it, and whose waits end only when
/// they are woken: a heartbeat goes stale, and a watch's wait ends, only when the test says.
final class StoppedDirectoryClock: DirectoryClock, @unchecked Sendable {
    private let lock = NSLock()
    private let start = ContinuousClock.now
    /// Guarded by `lock`.
    private var offset: Duration = .zero

    var now: ContinuousClock.Instant { lock.withLock { start + offset } }

    func wait(on condition: MonotonicCondition, until deadline: ContinuousClock.Instant) -> Bool {
        condition.wait()
        return now < deadline
    }

    func advance(by duration: Duration) { lock.withLock { offset += duration } }
}

/// The ResourceSlice controller against a real pool directory on loopback and the fake API
/// server: it reacts to the directory's long poll and to the API's watch. Every wait is for an
/// event (a slice written, a watch answered), never for time.
// The limit is generous: the controller and the fake API server run on Swift concurrency's
// pool, which has one thread per core and is shared with every suite running at the same time
// (on two cores, blocking end-to-end tests can hold both threads for minutes).
@Suite("xpu-kube controller follows the pool and the API", .serialized, .timeLimit(.minutes(5)))
struct ControllerTests {
    func heartbeat(_ address: String, devices: Int, labels: [String] = []) -> PoolHeartbeat {
        PoolHeartbeat(
            address: address, labels: labels,
            devices: Array(repeating: .init(totalMemory: 16 << 30, freeMemory: 16 << 30, freeComputeMilli: 1000), count: devices), sessions: 0)
    }

    static func devices(_ slices: [String: ResourceSliceObject]) -> Set<String> {
        Set(slices.values.flatMap { $0.spec.devices.map(\.name) })
    }

    @Test func serversJoiningAndLeavingThePoolUpdateTheSlices() async throws {
        let scratch = try Scratch()
        let clock = StoppedDirectoryClock()
        let directory = Directory(policy: .bestfit, heartbeatTimeout: .seconds(3), clock: clock, logger: quiet)
        let server = try DirectoryServer(listen: Endpoint(host: "127.0.0.1", port: 0), directory: directory, logger: quiet)
        let pool = Task { try await server.run() }
        defer { pool.cancel() }
        let fake = FakeAPIServer()
        try await fake.serve { url in
            let client = try apiClient(url, scratch: scratch)
            let controller = ResourceSliceController(
                publication: .init(driver: "xpu-remote.io", poolName: "xpu-remote", nodeLabels: []),
                poolAddress: "127.0.0.1:\(server.endpoint.port)", pollWait: .seconds(60), retryInterval: .seconds(60), api: client, logger: quiet)
            let running = Task { try await controller.run() }

            // The empty pool is published as one slice without devices.
            await fake.waitForSlices { $0["xpu-remote-0"] != nil }
            #expect(Self.devices(fake.slices).isEmpty)

            directory.record(heartbeat("10.0.0.5:7070", devices: 2))
            await fake.waitForSlices { Self.devices($0) == ["10-0-0-5-7070-d0", "10-0-0-5-7070-d1"] }

            directory.record(heartbeat("10.0.0.6:7070", devices: 1))
            await fake.waitForSlices { Self.devices($0) == ["10-0-0-5-7070-d0", "10-0-0-5-7070-d1", "10-0-0-6-7070-d0"] }

            // A heartbeat that changes only free capacity is no change of the inventory.
            let generation = directory.inventoryGeneration
            var busy = heartbeat("10.0.0.6:7070", devices: 1)
            busy.devices[0].freeMemory = 1 << 30
            directory.record(busy)
            #expect(directory.inventoryGeneration == generation)

            // 10.0.0.5 falls silent: 4 s later it is stale (timeout 3 s), 10.0.0.6 is not.
            clock.advance(by: .seconds(2))
            directory.record(heartbeat("10.0.0.6:7070", devices: 1))
            clock.advance(by: .seconds(2))
            directory.sweep()  // (the directory's own sweeper may have been first)
            #expect(directory.servers == ["10.0.0.6:7070"])
            await fake.waitForSlices { Self.devices($0) == ["10-0-0-6-7070-d0"] }
            let slice = try #require(fake.slices["xpu-remote-0"])
            #expect(slice.spec.pool.generation >= 4)

            // A slice deleted by someone else is written back, from the API's watch.
            fake.deleteSlice("xpu-remote-0")
            await fake.waitForSlices { Self.devices($0) == ["10-0-0-6-7070-d0"] }

            running.cancel()
            try await running.value
            try await client.shutdown()
        }
    }

    @Test func theWatchAnswersAtOnceForANewWatcherAndWhenTheInventoryChanges() async throws {
        let clock = StoppedDirectoryClock()
        let directory = Directory(policy: .bestfit, clock: clock, logger: quiet)
        let server = try DirectoryServer(listen: Endpoint(host: "127.0.0.1", port: 0), directory: directory, logger: quiet)
        let pool = Task { try await server.run() }
        defer { pool.cancel() }
        let address = "127.0.0.1:\(server.endpoint.port)"
        directory.record(heartbeat("10.0.0.5:7070", devices: 1, labels: ["zone=a"]))

        let first = try await PoolInventoryClient.watch(at: address, known: 0, wait: .seconds(60))
        #expect(first.generation == directory.inventoryGeneration)
        #expect(first.inventory == PoolInventory(servers: [.init(address: "10.0.0.5:7070", labels: ["zone=a"], deviceMemory: [16 << 30])]))

        // A watch that knows the generation waits; a change of labels answers it.
        async let next = PoolInventoryClient.watch(at: address, known: first.generation, wait: .seconds(60))
        directory.record(heartbeat("10.0.0.5:7070", devices: 1, labels: ["zone=b"]))
        let changed = try await next
        #expect(changed.generation != first.generation)
        #expect(changed.inventory.servers.first?.labels == ["zone=b"])

        // A watch cancelled while it waits returns at once (its connection is closed).
        let waiting = Task { try await PoolInventoryClient.watch(at: address, known: changed.generation, wait: .seconds(60)) }
        waiting.cancel()
        await #expect(throws: KubeError.self) { try await waiting.value }
    }

    @Test func watchMessagesRoundTrip() throws {
        let request = PoolWatchRequest(known: 1 << 40, waitMilliseconds: 30_000)
        #expect(try PoolWatchRequest(decoding: request.encoded) == request)
        let reply = PoolWatchReply(
            generation: 7, inventory: .init(servers: [.init(address: "a:1", labels: ["x"], devices: [.init(totalMemory: 1, freeMemory: 1, freeComputeMilli: 1)])]))
        #expect(try PoolWatchReply(decoding: reply.encoded) == reply)
        for cut in 0..<reply.encoded.count { #expect(throws: ProtocolError.self) { try PoolWatchReply(decoding: Array(reply.encoded.prefix(cut))) } }
        #expect(throws: ProtocolError.self) { try PoolWatchRequest(decoding: Array(request.encoded.prefix(11))) }
    }
}
