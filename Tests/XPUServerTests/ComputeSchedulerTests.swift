import Foundation
import Testing
import XPUAdmission

@testable import XPUServer

/// The compute scheduler on its own, with kernels that are busy loops of a few tens of
/// microseconds on threads of this process: the rules in `ComputeScheduler` without a device, a
/// server or a client (ComputeShareTests checks them end to end).
@Suite("Compute scheduler", .serialized)
struct ComputeSchedulerTests {
    /// Runs one thread per tenant, each launching kernels back to back until `seconds` pass;
    /// returns each tenant's device time.
    private static func saturate(_ slices: [SliceRequest], seconds: Double) -> [UInt64] {
        let scheduler = ComputeScheduler()
        let sessions = slices.indices.map { UInt64($0 + 1) }
        for (session, request) in zip(sessions, slices) { scheduler.register(session, slice: Slice(request)) }
        let deadline = Date().addingTimeInterval(seconds)
        let group = DispatchGroup()
        for session in sessions {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while Date() < deadline {
                    scheduler.run(session) {
                        let start = DispatchTime.now().uptimeNanoseconds
                        let length = UInt64.random(in: 20_000...60_000)
                        while DispatchTime.now().uptimeNanoseconds - start < length {}
                    }
                }
            }
        }
        group.wait()
        return sessions.map { scheduler.usage($0).deviceNanoseconds }
    }

    @Test("guaranteed shares divide a saturated device in proportion to the shares")
    func proportionalShares() {
        let device = Self.saturate(
            [SliceRequest(computePercent: 30), SliceRequest(computePercent: 30), SliceRequest(computePercent: 40)],
            seconds: 1.5)
        let total = Double(device.reduce(0, +))
        let fractions = device.map { Double($0) / total }
        #expect(total > 0)
        // Stride scheduling charges each tenant device time / share: 0.3, 0.3, 0.4 of the total.
        for (fraction, share) in zip(fractions, [0.3, 0.3, 0.4]) {
            #expect(abs(fraction - share) < 0.03, "fractions \(fractions)")
        }
    }

    @Test("low-priority work runs only when nothing of a higher priority waits")
    func strictPriorities() {
        let device = Self.saturate(
            [
                SliceRequest(computePercent: 10, priority: .high), SliceRequest(computePercent: 45, priority: .normal),
                SliceRequest(computePercent: 45, priority: .low),
            ],
            seconds: 1)
        let total = Double(device.reduce(0, +))
        let fractions = device.map { Double($0) / total }
        // By shares the normal tenant would get 4.5 times the high one's time and as much as the
        // low one; by priority, the high tenant takes the device whenever it waits, and the low
        // one gets only what is left when neither other waits (their threads' pauses between
        // kernels on a busy machine). On a loaded machine the high tenant may leave both others
        // next to nothing, too little to compare: the low one's share is then only bounded.
        #expect(fractions[0] > fractions[1], "fractions \(fractions)")
        #expect(fractions[2] < max(fractions[1] / 2, 0.02), "fractions \(fractions)")
    }
}
