import XPUAdmission
/// Where a session's kernels take their turn on the device: the server's `ComputeScheduler`
/// when the session runs on a thread of the server, the parent server's scheduler over the
/// control channel when it runs in a tenant process (`TenantControl`), so that compute shares
/// stay one global schedule whatever the process model.
protocol ComputeTurns: AnyObject, Sendable {
    /// Enters a session with a compute share into the schedule.
    func register(_ session: UInt64, slice: Slice)
    /// Runs `kernel` (launch and wait for completion) in the session's turn and charges its
    /// device time. Returns what `kernel` returns.
    func run<T>(_ session: UInt64, _ kernel: () -> T) -> T
    /// Device time charged to the session so far, its kernels' queueing delay, and the turns
    /// that began only after a scheduler wait timed out.
    func usage(_ session: UInt64) -> (deviceNanoseconds: UInt64, waitNanoseconds: UInt64, stalls: Int)
}

extension ComputeScheduler: ComputeTurns {}
