import CXPUDriver
import Foundation
import Logging
import Synchronization
import Testing
import XPUPool
import XPUProtocol

/// The directory's queue and preemption decisions, driven by heartbeats in-process: no server,
/// no client, no socket.
@Suite("Directory queue and preemption")
struct DirectoryQueueTests {
    static let server = "10.0.0.1:7070"

    /// A 1 GiB device with `free` bytes not granted, holding `slices`.
    static func heartbeat(free: UInt64, slices: [PoolSlice] = []) -> PoolHeartbeat {
        PoolHeartbeat(
            address: server, labels: [], devices: [PoolDevice(totalMemory: 1 << 30, freeMemory: free, freeComputeMilli: 1000, busyMilli: 0)],
            sessions: UInt32(slices.count), slices: slices)
    }

    static let lowHolder = PoolSlice(session: 5, device: 0, memory: 768 << 20, computeMilli: 0, priority: 0, grant: "g0")

    /// Runs `place` on a thread of its own (it blocks while it waits); the answer once it has one.
    final class PendingPlacement: Sendable {
        private let answer = Mutex<(CUresult, PoolPlaceReply)?>(nil)

        init(_ directory: Directory, slice: String, wait: Duration) {
            let thread = Thread { [self] in
                let result = directory.place(slice: slice, client: "test pid 1", wait: wait)
                answer.withLock { $0 = result }
            }
            thread.start()
        }

        func result(within timeout: Duration) -> (CUresult, PoolPlaceReply)? {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let result = answer.withLock({ $0 }) { return result }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return answer.withLock { $0 }
        }
    }

    static func directory(preempt: Bool) -> Directory {
        Directory(policy: .bestfit, heartbeatTimeout: .seconds(60), preempt: preempt, logger: Logger(label: "test"))
    }

    @Test func aWaitingRequestIsPlacedByTheHeartbeatThatFreesRoom() throws {
        let directory = Self.directory(preempt: false)
        directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder]))
        let pending = PendingPlacement(directory, slice: "mem=512MiB", wait: .seconds(60))
        #expect(pending.result(within: .milliseconds(300)) == nil, "nothing fits yet: it waits")
        directory.record(Self.heartbeat(free: 1 << 30))
        let (status, reply) = try #require(pending.result(within: .seconds(30)))
        #expect(status == CUDA_SUCCESS)
        #expect(reply.placements.first?.server == Self.server)
        #expect(reply.placements.first?.slice.hasPrefix("mem=512MiB,device=0,grant=g") == true)
    }

    @Test func aRequestThatWaitsTooLongFailsLikeOneThatDoesNotFit() throws {
        let directory = Self.directory(preempt: false)
        directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder]))
        let pending = PendingPlacement(directory, slice: "mem=512MiB,priority=high", wait: .milliseconds(200))
        let (status, reply) = try #require(pending.result(within: .seconds(30)))
        #expect(status == CUDA_ERROR_OUT_OF_MEMORY)
        #expect(reply.reason.contains("after waiting"), "\(reply.reason)")
        // Without --preempt nothing was ordered.
        #expect(directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder])).preemptions.isEmpty)
        #expect(directory.preemptions == 0)
    }

    @Test func highPriorityPreemptsTheLowSliceThroughTheServersNextHeartbeat() throws {
        let directory = Self.directory(preempt: true)
        directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder]))
        // Normal priority does not preempt, even with --preempt.
        let (normal, _) = directory.place(slice: "mem=512MiB", client: "normal pid 2")
        #expect(normal == CUDA_ERROR_OUT_OF_MEMORY)

        let pending = PendingPlacement(directory, slice: "mem=512MiB,priority=high", wait: .zero)
        var orders: [PoolPreemption] = []
        for _ in 0..<300 where orders.isEmpty {
            Thread.sleep(forTimeInterval: 0.01)
            orders = directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder])).preemptions
        }
        #expect(orders.map(\.session) == [5])
        #expect(orders.first?.reason.contains("preempted by the pool") == true)
        #expect(directory.preemptions == 1)
        // Ordered once: the next heartbeat, still listing the victim, orders nothing more.
        #expect(directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder])).preemptions.isEmpty)
        #expect(pending.result(within: .milliseconds(100)) == nil, "it waits for its victim, without asking to")

        // The server ended the session: the room is there, and the request takes it.
        directory.record(Self.heartbeat(free: 1 << 30))
        let (status, reply) = try #require(pending.result(within: .seconds(30)))
        #expect(status == CUDA_SUCCESS, "\(reply.reason)")
        #expect(reply.placements.first?.server == Self.server)
    }
}
