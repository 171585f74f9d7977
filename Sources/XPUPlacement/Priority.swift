/// How much a request matters relative to others.
///
/// Extension point for preemption: the live directory (`xpu-pool`) keeps the placed slices of
/// each server. When `Placer.place` returns `nil` for a request whose priority is above
/// `.normal`, the directory may look for lower-priority slices whose removal makes the request
/// fit, evict them (their sessions receive a documented error), and call `place` again on the
/// updated cluster. The placement policies themselves stay priority-blind, so that a
/// preemption rule can change without touching them. The trace replay (`xpu-bench pool-sim`)
/// has no departures and never preempts, as in the FGD simulator.
public struct Priority: Hashable, Comparable, Sendable {
    public var rawValue: Int

    public init(_ rawValue: Int) { self.rawValue = rawValue }

    /// Best effort: fills idle capacity, first to be preempted.
    public static let bestEffort = Priority(0)
    public static let normal = Priority(1)
    /// Latency-sensitive: may preempt lower priorities where the pool allows it.
    public static let high = Priority(2)

    /// The trace's `qos` column: `BE` is best effort, `LS` and `Guaranteed` are high,
    /// anything else (`Burstable`, empty) is normal.
    public init(qos: Substring) {
        switch qos {
        case "BE": self = .bestEffort
        case "LS", "Guaranteed": self = .high
        default: self = .normal
        }
    }

    public static func < (lhs: Priority, rhs: Priority) -> Bool { lhs.rawValue < rhs.rawValue }
}
