import CXPUDriver
import XPUProtocol
import XPUTransport

/// Launches of a session with a compute share run in its turn on the device, to completion, so
/// that the scheduler charges exactly their device time. One kernel per turn costs a device
/// synchronization and a scheduling decision per launch, which made short kernels ten times
/// slower than unsliced ones (bench/slicing); so a turn also takes the launches the client has
/// already sent behind the first one (fire-and-forget frames waiting in the connection's buffer),
/// as many as fit in `turnQuantumNanoseconds` of device time by the session's own recent kernels,
/// and synchronizes once. Long kernels take one turn each, so neighbours and higher priorities
/// wait behind at most one of them.
extension Session {
    /// Device time one turn may be expected to take (a turn is never cut short: kernels are
    /// not preempted).
    static let turnQuantumNanoseconds: UInt64 = 1_000_000

    /// Runs `first`, and the launches in the same context that `following` holds while they fit
    /// the turn, in one turn. Throws the first frame's failure; returns the first failure among
    /// the others (their frames have no reply: the connection latches it for the next reply, as
    /// an asynchronous launch's error is).
    func launchInTurn(_ first: LaunchKernelFrame, following: BufferedLaunches) throws(CallFailure) -> CUresult? {
        var launched = 0
        var deferred: CUresult?
        let status = turns.run(id) { () -> CUresult in
            let began = monotonicNanoseconds()
            var streams: [CUstream?] = []
            var status = CUDA_SUCCESS
            var request: LaunchKernelFrame? = first
            var taken = 0
            while let next = request {
                defer { taken += 1 }
                do throws(CallFailure) {
                    let (launchStatus, stream) = try enqueue(next)
                    if launchStatus == CUDA_SUCCESS {
                        launched += 1
                        if !streams.contains(where: { $0 == stream }) { streams.append(stream) }
                    } else {
                        fail(&status, &deferred, launchStatus, isFirst: taken == 0)
                    }
                } catch {
                    fail(&status, &deferred, error.status, isFirst: taken == 0)
                }
                // Another kernel joins the turn only while the turn's expected device time fits.
                guard UInt64(launched + 1) * kernelEstimateNanoseconds <= Self.turnQuantumNanoseconds else { break }
                let context = currentContext
                request = following.next(accepting: { resolvedContext($0) == context })
            }
            for stream in streams {
                let synchronized = table.cuStreamSynchronize(stream)
                if synchronized != CUDA_SUCCESS { fail(&status, &deferred, synchronized, isFirst: true) }
            }
            if launched > 0 {
                // The mean of this turn's kernels (launch, execution and synchronization).
                kernelEstimateNanoseconds = max(1, (monotonicNanoseconds() - began) / UInt64(launched))
            }
            return status
        }
        if launched > 0 { _ = usage.launches.wrappingAdd(UInt64(launched), ordering: .relaxed) }
        try check(status)
        return deferred
    }

    /// Records a failure of the turn: the first frame's own outcome, or (for the launches it
    /// took from the buffer, whose frames have no reply) the first deferred one.
    private func fail(_ status: inout CUresult, _ deferred: inout CUresult?, _ failure: CUresult, isFirst: Bool) {
        if isFirst {
            if status == CUDA_SUCCESS { status = failure }
        } else if deferred == nil {
            deferred = failure
        }
    }
}
