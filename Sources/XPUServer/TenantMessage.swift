import XPUTransport

/// What the server and one of its tenant processes (`--tenant-processes`) tell each other over
/// their control channel, a Unix socket pair private to the two: the session handed over, the
/// session's turns on the device, and its usage for /metrics. Not part of the client protocol.
enum TenantMessage: Hashable, Sendable {
    /// Server → tenant process, first and once: the admitted session to serve.
    case handOff(SessionHandOff)
    /// Tenant process → server: a kernel of the session waits for its turn.
    case turnRequest
    /// Server → tenant process: the device is the session's; run the kernel.
    case turnGranted
    /// Tenant process → server: the kernel ended; it took `deviceNanoseconds`.
    case turnDone(deviceNanoseconds: UInt64)
    /// Tenant process → server: the session's usage now (sent when it changed, at most every
    /// `TenantControl.reportInterval`, and once more at the end).
    case usage(TenantUsageReport)
    /// Tenant process → server: the session is closing; what did the scheduler charge it?
    case scheduleQuery
    /// Server → tenant process: the answer to `scheduleQuery`.
    case schedule(deviceNanoseconds: UInt64, waitNanoseconds: UInt64, stalls: UInt64)
}

/// Everything a tenant process needs to continue a session exactly where the server's handshake
/// left it: the Welcome is not sent yet, so the tenant process sends it once it can serve.
struct SessionHandOff: Hashable, Sendable {
    var session: UInt64
    /// The client's program name and pid, from its Hello.
    var client: String
    var clientCUDAVersion: Int32
    /// The slice request as admitted (the Hello's `XPU_SLICE`; empty: no slice).
    var slice: String
    /// The tenant's name in the policy, when the server authenticates.
    var tenant: String?
    /// The features agreed on (`Features`), sent in the Welcome.
    var features: UInt32
    /// The server reports /metrics: measure the session's device time and report its usage.
    var metered: Bool
    /// Bytes the server read from the client past the Hello (none from a client that waits for
    /// the Welcome, as the shim does); the tenant process reads them first.
    var buffered: [UInt8]
    /// For a shared-memory session: where the server left the rings (the memfd comes with the
    /// socket, as `TenantWorker.memoryDescriptor`); nil for a connected socket.
    var sharedMemory: SharedMemoryTransport.Position? = nil
}

/// A session's usage as /metrics shows it (`SessionUsage`), reported by its tenant process.
struct TenantUsageReport: Hashable, Sendable {
    var memoryBytes: UInt64
    var launches: UInt64
    /// Device time of the session's kernels per device (ns), for sessions without a compute share.
    var deviceTime: [Int32: UInt64]
}
