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

        init(_ directory: Directory, slice: String, count: UInt32 = 1, wait: Duration) {
            let thread = Thread { [self] in
                let result = directory.place(slice: slice, count: count, client: "test pid 1", wait: wait)
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

    static func directory(preempt: Bool, passingWindow: Duration = .seconds(30)) -> Directory {
        Directory(
            policy: .bestfit, heartbeatTimeout: .seconds(60), preempt: preempt, passingWindow: passingWindow,
            logger: Logger(label: "test"))
    }

    @Test func smallRequestsPassAWaitingOneOnlyWithinThePassingWindow() throws {
        let directory = Self.directory(preempt: false, passingWindow: .milliseconds(300))
        directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder]))
        let big = PendingPlacement(directory, slice: "mem=512MiB", wait: .seconds(60))
        #expect(big.result(within: .milliseconds(100)) == nil, "nothing fits yet: it waits")
        // Young, it lets a small request of its priority through.
        let (early, _) = directory.place(slice: "mem=128MiB", client: "small pid 2")
        #expect(early == CUDA_SUCCESS)
        // Past the window, what frees is its: a small request that would fit is held back.
        Thread.sleep(forTimeInterval: 0.4)
        let (late, reply) = directory.place(slice: "mem=64MiB", client: "small pid 3")
        #expect(late == CUDA_ERROR_OUT_OF_MEMORY)
        #expect(reply.reason.contains("waits ahead"), "\(reply.reason)")
        // The holder leaves: the big request takes the room.
        directory.record(Self.heartbeat(free: 1 << 30))
        let (status, placed) = try #require(big.result(within: .seconds(30)))
        #expect(status == CUDA_SUCCESS, "\(placed.reason)")
    }

    @Test func aRequestThatFitsNoDeviceHoldsNoOneBack() throws {
        let directory = Self.directory(preempt: false, passingWindow: .zero)
        directory.record(Self.heartbeat(free: 1 << 30))
        let huge = PendingPlacement(directory, slice: "mem=2GiB,priority=high", wait: .seconds(1))
        #expect(huge.result(within: .milliseconds(100)) == nil, "it waits, in case a larger server joins")
        // Neither lower priorities nor its own wait behind it.
        #expect(directory.place(slice: "mem=128MiB", client: "normal pid 2").0 == CUDA_SUCCESS)
        #expect(directory.place(slice: "mem=128MiB,priority=high", client: "high pid 3").0 == CUDA_SUCCESS)
        let (status, _) = try #require(huge.result(within: .seconds(30)))
        #expect(status == CUDA_ERROR_OUT_OF_MEMORY)
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

    @Test func aRequestOfTwoSlicesPreemptsOnTwoDevices() throws {
        let directory = Self.directory(preempt: true)
        // Two 1 GiB devices, each with a low slice of 768 MiB.
        let holders = [
            PoolSlice(session: 5, device: 0, memory: 768 << 20, computeMilli: 0, priority: 0, grant: "g0"),
            PoolSlice(session: 6, device: 1, memory: 768 << 20, computeMilli: 0, priority: 0, grant: "g1"),
        ]
        func heartbeat(free: UInt64, slices: [PoolSlice]) -> PoolHeartbeat {
            let device = PoolDevice(totalMemory: 1 << 30, freeMemory: free, freeComputeMilli: 1000, busyMilli: 0)
            return PoolHeartbeat(address: Self.server, labels: [], devices: [device, device], sessions: UInt32(slices.count), slices: slices)
        }
        directory.record(heartbeat(free: 256 << 20, slices: holders))
        let pending = PendingPlacement(directory, slice: "mem=512MiB,priority=high", count: 2, wait: .zero)
        var orders: [PoolPreemption] = []
        for _ in 0..<300 where orders.isEmpty {
            Thread.sleep(forTimeInterval: 0.01)
            orders = directory.record(heartbeat(free: 256 << 20, slices: holders)).preemptions
        }
        // Both devices' low slices: one device for each slice of the request.
        #expect(orders.map(\.session).sorted() == [5, 6])
        #expect(directory.preemptions == 2)
        directory.record(heartbeat(free: 1 << 30, slices: []))
        let (status, reply) = try #require(pending.result(within: .seconds(30)))
        #expect(status == CUDA_SUCCESS, "\(reply.reason)")
        #expect(Set(reply.placements.map(\.device)) == [0, 1], "\(reply.placements)")
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
