import CXPUDriver
import Foundation
import Logging
import Testing
import XPUPool
import XPUProtocol

/// The directory's sweeper on the test's clock: it sleeps until the next heartbeat or
/// reservation can lapse (with nothing registered, until something is) and drops what lapsed
/// then; it never wakes on a period.
@Suite("Directory sweeper")
struct DirectorySweeperTests {
    static func heartbeat(_ address: String) -> PoolHeartbeat {
        PoolHeartbeat(
            address: address, labels: [],
            devices: [PoolDevice(totalMemory: 1 << 30, freeMemory: 1 << 30, freeComputeMilli: 1000, busyMilli: 0)], sessions: 0,
            slices: [])
    }

    /// The sweeper on a thread of its own; `stop` ends it and waits for it.
    final class Sweeper: Sendable {
        private let directory: Directory
        private let done = DispatchSemaphore(value: 0)

        init(_ directory: Directory, _ clock: ManualDirectoryClock) {
            self.directory = directory
            let mark = clock.progressCount
            let done = done
            Thread {
                directory.sweepUntilStopped()
                done.signal()
            }.start()
            clock.waitForProgress(after: mark)
        }

        func stop() -> Bool {
            directory.stopSweeping()
            return done.wait(timeout: .now() + 60) == .success
        }
    }

    /// Runs `change` and returns once the sweeper has swept and gone back to sleep.
    static func afterSweeping(_ clock: ManualDirectoryClock, _ change: () -> Void) {
        let mark = clock.progressCount
        change()
        clock.waitForProgress(after: mark)
    }

    @Test func sleepsUntilTheNextLapseAndDropsEachSilentServerThen() throws {
        let clock = ManualDirectoryClock()
        let directory = Directory(policy: .bestfit, heartbeatTimeout: .seconds(60), clock: clock, logger: Logger(label: "test"))
        let sweeper = Sweeper(directory, clock)
        // Nothing registered: it sleeps until something is, with no deadline.
        #expect(clock.manual.waitDeadlines == [nil])

        Self.afterSweeping(clock) { directory.record(Self.heartbeat("a:1")) }
        Self.afterSweeping(clock) { clock.advance(by: .seconds(30)) }
        Self.afterSweeping(clock) { directory.record(Self.heartbeat("b:1")) }
        // Each sleep lasts until a's heartbeat lapses, the first instant past 60 s.
        let aLapses = UInt64(60_000_000_001)
        #expect(clock.manual.waitDeadlines == [nil, aLapses, aLapses, aLapses])

        Self.afterSweeping(clock) { clock.advance(by: .seconds(30)) }
        #expect(directory.servers == ["a:1", "b:1"], "60 s without a heartbeat is the timeout, not past it")
        Self.afterSweeping(clock) { clock.advance(by: .nanoseconds(1)) }
        #expect(directory.servers == ["b:1"])
        #expect(clock.manual.waitDeadlines.last == 90_000_000_001, "then until b's heartbeat lapses")

        Self.afterSweeping(clock) { clock.advance(by: .seconds(30)) }
        #expect(directory.servers.isEmpty)
        #expect(clock.manual.waitDeadlines.last == .some(nil), "nothing left: it sleeps until something registers")
        #expect(sweeper.stop())
    }

    @Test func aReservationNobodyClaimsIsSweptWhenItLapses() throws {
        let clock = ManualDirectoryClock()
        let directory = Directory(
            policy: .bestfit, heartbeatTimeout: .seconds(60), reservationLifetime: .seconds(10), clock: clock, logger: Logger(label: "test"))
        let sweeper = Sweeper(directory, clock)
        Self.afterSweeping(clock) { directory.record(Self.heartbeat("a:1")) }
        // Placed, but its client never reaches the server: the reservation holds the room until
        // it lapses, which is sooner than the server's heartbeat would.
        Self.afterSweeping(clock) {
            #expect(directory.place(slice: "mem=768MiB", client: "vanishing pid 2").0 == CUDA_SUCCESS)
        }
        #expect(clock.manual.waitDeadlines.last == 10_000_000_001)
        Self.afterSweeping(clock) { clock.advance(by: .seconds(10)) }
        #expect(clock.manual.waitDeadlines.last == 10_000_000_001, "10 s is the lifetime, not past it")
        Self.afterSweeping(clock) { clock.advance(by: .nanoseconds(1)) }
        // Swept: what it sleeps for now is the server's heartbeat.
        #expect(clock.manual.waitDeadlines.last == 60_000_000_001)
        #expect(sweeper.stop())
    }
}
