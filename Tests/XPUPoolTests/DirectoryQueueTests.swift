import CXPUDriver
import Foundation
import Logging
import Synchronization
import Testing
import XPUPool
import XPUProtocol

/// The directory's queue and preemption decisions, driven by heartbeats in-process: no server,
/// no client, no socket, and time moved by the test (`ManualDirectoryClock`), never slept.
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

    /// Runs `place` on a thread of its own (it blocks while it waits). Made once the request
    /// waits asleep in the queue, or has its answer.
    final class PendingPlacement: Sendable {
        private let answer = Mutex<(CUresult, PoolPlaceReply)?>(nil)
        private let answered = DispatchSemaphore(value: 0)
        private let clock: ManualDirectoryClock

        init(_ directory: Directory, _ clock: ManualDirectoryClock, slice: String, count: UInt32 = 1, wait: Duration) {
            self.clock = clock
            let mark = clock.progressCount
            let thread = Thread { [self] in
                let result = directory.place(slice: slice, count: count, client: "test pid 1", wait: wait)
                answer.withLock { $0 = result }
                answered.signal()
                clock.mark()
            }
            thread.start()
            clock.waitForProgress(after: mark)
        }

        /// Whether the request has its answer.
        var isAnswered: Bool { answer.withLock { $0 } != nil }

        /// Runs `change` (something that wakes the waiting request) and returns once the request
        /// has looked at the queue again and gone back to sleep, or has its answer.
        func afterLooking(_ change: () -> Void) {
            let mark = clock.progressCount
            change()
            clock.waitForProgress(after: mark)
        }

        /// The answer, once there is one (nil if none came within a minute: the test failed).
        func result() -> (CUresult, PoolPlaceReply)? {
            _ = answered.wait(timeout: .now() + 60)
            return answer.withLock { $0 }
        }
    }

    static func directory(preempt: Bool, passingWindow: Duration = .seconds(30), clock: ManualDirectoryClock) -> Directory {
        Directory(
            policy: .bestfit, heartbeatTimeout: .seconds(60), preempt: preempt, passingWindow: passingWindow, clock: clock,
            logger: Logger(label: "test"))
    }

    @Test func smallRequestsPassAWaitingOneOnlyWithinThePassingWindow() throws {
        let clock = ManualDirectoryClock()
        let directory = Self.directory(preempt: false, passingWindow: .milliseconds(300), clock: clock)
        directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder]))
        let big = PendingPlacement(directory, clock, slice: "mem=512MiB", wait: .seconds(60))
        #expect(!big.isAnswered && directory.waitingRequests == 1, "nothing fits yet: it waits")
        // Young, it lets a small request of its priority through.
        let (early, _) = directory.place(slice: "mem=128MiB", client: "small pid 2")
        #expect(early == CUDA_SUCCESS)
        // Just inside the window it still does.
        big.afterLooking { clock.advance(by: .milliseconds(299)) }
        #expect(directory.place(slice: "mem=32MiB", client: "small pid 3").0 == CUDA_SUCCESS)
        // Past the window, what frees is its: a small request that would fit is held back.
        big.afterLooking { clock.advance(by: .milliseconds(1)) }
        let (late, reply) = directory.place(slice: "mem=32MiB", client: "small pid 4")
        #expect(late == CUDA_ERROR_OUT_OF_MEMORY)
        #expect(reply.reason.contains("waits ahead"), "\(reply.reason)")
        // The holder leaves: the big request takes the room.
        directory.record(Self.heartbeat(free: 1 << 30))
        let (status, placed) = try #require(big.result())
        #expect(status == CUDA_SUCCESS, "\(placed.reason)")
    }

    @Test func aRequestThatFitsNoDeviceHoldsNoOneBack() throws {
        let clock = ManualDirectoryClock()
        let directory = Self.directory(preempt: false, passingWindow: .zero, clock: clock)
        directory.record(Self.heartbeat(free: 1 << 30))
        let huge = PendingPlacement(directory, clock, slice: "mem=2GiB,priority=high", wait: .seconds(1))
        #expect(!huge.isAnswered, "it waits, in case a larger server joins")
        // Neither lower priorities nor its own wait behind it.
        #expect(directory.place(slice: "mem=128MiB", client: "normal pid 2").0 == CUDA_SUCCESS)
        #expect(directory.place(slice: "mem=128MiB,priority=high", client: "high pid 3").0 == CUDA_SUCCESS)
        // Its second ends, and it fails as a request that does not fit does.
        huge.afterLooking { clock.advance(by: .milliseconds(999)) }
        #expect(!huge.isAnswered)
        clock.advance(by: .milliseconds(1))
        let (status, _) = try #require(huge.result())
        #expect(status == CUDA_ERROR_OUT_OF_MEMORY)
    }

    @Test func aWaitingRequestIsPlacedByTheHeartbeatThatFreesRoom() throws {
        let clock = ManualDirectoryClock()
        let directory = Self.directory(preempt: false, clock: clock)
        directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder]))
        let pending = PendingPlacement(directory, clock, slice: "mem=512MiB", wait: .seconds(60))
        #expect(!pending.isAnswered, "nothing fits yet: it waits")
        // A heartbeat that frees nothing wakes it, and it waits on.
        pending.afterLooking { directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder])) }
        #expect(!pending.isAnswered)
        directory.record(Self.heartbeat(free: 1 << 30))
        let (status, reply) = try #require(pending.result())
        #expect(status == CUDA_SUCCESS)
        #expect(reply.placements.first?.server == Self.server)
        #expect(reply.placements.first?.slice.hasPrefix("mem=512MiB,device=0,grant=g") == true)
    }

    @Test func aServerIsDroppedWhenItsHeartbeatsStopForTheTimeoutNotBefore() throws {
        let clock = ManualDirectoryClock()
        let directory = Self.directory(preempt: false, clock: clock)
        directory.record(Self.heartbeat(free: 1 << 30))
        clock.advance(by: .seconds(60))
        #expect(directory.sweep().isEmpty, "60 s without a heartbeat is the timeout, not past it")
        #expect(directory.servers == [Self.server])
        clock.advance(by: .milliseconds(1))
        #expect(directory.sweep() == [Self.server])
        #expect(directory.servers.isEmpty)
    }

    @Test func aReservationNobodyClaimsLapsesAndItsRoomGoesToAWaitingRequest() throws {
        let clock = ManualDirectoryClock()
        let directory = Self.directory(preempt: false, clock: clock)
        directory.record(Self.heartbeat(free: 1 << 30))
        // Placed, but its client never reaches the server: the reservation holds the room.
        #expect(directory.place(slice: "mem=768MiB", client: "vanishing pid 2").0 == CUDA_SUCCESS)
        let pending = PendingPlacement(directory, clock, slice: "mem=512MiB", wait: .seconds(60))
        #expect(!pending.isAnswered, "the reservation holds the room")
        // The default lifetime is 10 s: a sweep just before keeps it, one after frees its room.
        pending.afterLooking { clock.advance(by: .seconds(10)) }
        directory.sweep()
        #expect(!pending.isAnswered)
        clock.advance(by: .milliseconds(1))
        directory.sweep()
        let (status, reply) = try #require(pending.result())
        #expect(status == CUDA_SUCCESS, "\(reply.reason)")
    }

    @Test func aRequestThatWaitsTooLongFailsLikeOneThatDoesNotFit() throws {
        let clock = ManualDirectoryClock()
        let directory = Self.directory(preempt: false, clock: clock)
        directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder]))
        let pending = PendingPlacement(directory, clock, slice: "mem=512MiB,priority=high", wait: .milliseconds(200))
        clock.advance(by: .milliseconds(200))
        let (status, reply) = try #require(pending.result())
        #expect(status == CUDA_ERROR_OUT_OF_MEMORY)
        #expect(reply.reason.contains("after waiting"), "\(reply.reason)")
        // Without --preempt nothing was ordered.
        #expect(directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder])).preemptions.isEmpty)
        #expect(directory.preemptions == 0)
    }

    @Test func aRequestOfTwoSlicesPreemptsOnTwoDevices() throws {
        let clock = ManualDirectoryClock()
        let directory = Self.directory(preempt: true, clock: clock)
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
        // It ordered its preemptions when it joined the queue; they ride on the next heartbeat.
        let pending = PendingPlacement(directory, clock, slice: "mem=512MiB,priority=high", count: 2, wait: .zero)
        let orders = directory.record(heartbeat(free: 256 << 20, slices: holders)).preemptions
        // Both devices' low slices: one device for each slice of the request.
        #expect(orders.map(\.session).sorted() == [5, 6])
        #expect(directory.preemptions == 2)
        directory.record(heartbeat(free: 1 << 30, slices: []))
        let (status, reply) = try #require(pending.result())
        #expect(status == CUDA_SUCCESS, "\(reply.reason)")
        #expect(Set(reply.placements.map(\.device)) == [0, 1], "\(reply.placements)")
    }

    @Test func highPriorityPreemptsTheLowSliceThroughTheServersNextHeartbeat() throws {
        let clock = ManualDirectoryClock()
        let directory = Self.directory(preempt: true, clock: clock)
        directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder]))
        // Normal priority does not preempt, even with --preempt.
        let (normal, _) = directory.place(slice: "mem=512MiB", client: "normal pid 2")
        #expect(normal == CUDA_ERROR_OUT_OF_MEMORY)

        let pending = PendingPlacement(directory, clock, slice: "mem=512MiB,priority=high", wait: .zero)
        let orders = directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder])).preemptions
        #expect(orders.map(\.session) == [5])
        #expect(orders.first?.reason.contains("preempted by the pool") == true)
        #expect(directory.preemptions == 1)
        // Ordered once: the next heartbeat, still listing the victim, orders nothing more.
        pending.afterLooking {
            #expect(directory.record(Self.heartbeat(free: 256 << 20, slices: [Self.lowHolder])).preemptions.isEmpty)
        }
        #expect(!pending.isAnswered, "it waits for its victim, without asking to")

        // The server ended the session: the room is there, and the request takes it.
        directory.record(Self.heartbeat(free: 1 << 30))
        let (status, reply) = try #require(pending.result())
        #expect(status == CUDA_SUCCESS, "\(reply.reason)")
        #expect(reply.placements.first?.server == Self.server)
    }
}
