import XPUAdmission

/// What every session of one server process shares about its devices: the ledger of what
/// admission granted on each device, and the scheduler that gives sliced sessions their compute
/// turns. One per server (one driver, one set of devices), made by whoever starts the server and
/// handed to the parts that admit, schedule, report or announce sessions.
public final class ServerDevices: Sendable {
    /// Slices and tenancies granted on each device (admission at the handshake, release at the end).
    public let ledger: DeviceLedger
    /// Compute turns of the sessions whose slice has a compute share.
    let scheduler: ComputeScheduler

    public init() {
        ledger = DeviceLedger()
        scheduler = ComputeScheduler()
    }
}
