import Synchronization

/// What connection admission counts, for /metrics: connections waiting for their Hello, those
/// closed because a cap was full, and those closed at the handshake deadline.
public final class AdmissionStatistics: Sendable {
    /// Accepted connections whose Hello has not arrived (`xpu_server_handshakes_pending`).
    let pending = Atomic<Int>(0)
    /// Closed at accept: the source already had `maxPendingPerSource` pending.
    let refusedPerSource = Atomic<UInt64>(0)
    /// Closed at accept: `maxPending` connections were pending.
    let refusedTotal = Atomic<UInt64>(0)
    /// Closed because the Hello (and TLS handshake) had not arrived by the deadline.
    let timedOut = Atomic<UInt64>(0)

    public init() {}
}
