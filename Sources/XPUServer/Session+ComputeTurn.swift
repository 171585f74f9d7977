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

    /// What the connection provides for batching: the next frame if it is a fire-and-forget
    /// launch in the same context, already received in full (consumed when returned; read in
    /// place, valid until the connection next receives).
    typealias BufferedLaunchSource = (_ context: UInt64) -> LaunchKernelFrame?

    func launchInTurn(_ first: LaunchKernelFrame) throws(CallFailure) {
        var launched = 0
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
                        fail(&status, launchStatus, isFirst: taken == 0)
                    }
                } catch {
                    fail(&status, error.status, isFirst: taken == 0)
                }
                // Another kernel joins the turn only while the turn's expected device time fits.
                guard UInt64(launched + 1) * kernelEstimateNanoseconds <= Self.turnQuantumNanoseconds else { break }
                request = bufferedLaunch?(currentContext)
            }
            for stream in streams {
                let synchronized = table.cuStreamSynchronize(stream)
                if synchronized != CUDA_SUCCESS { fail(&status, synchronized, isFirst: true) }
            }
            if launched > 0 {
                // The mean of this turn's kernels (launch, execution and synchronization).
                kernelEstimateNanoseconds = max(1, (monotonicNanoseconds() - began) / UInt64(launched))
            }
            return status
        }
        if launched > 0 { _ = usage.launches.wrappingAdd(UInt64(launched), ordering: .relaxed) }
        try check(status)
    }

    /// Records a failure of the turn: the first frame's own outcome, or (for the launches it
    /// took from the buffer, whose frames have no reply) latched for the next reply, as an
    /// asynchronous launch's error is.
    private func fail(_ status: inout CUresult, _ failure: CUresult, isFirst: Bool) {
        if isFirst {
            if status == CUDA_SUCCESS { status = failure }
        } else if batchedLaunchFailure == nil {
            batchedLaunchFailure = failure
        }
    }
}
