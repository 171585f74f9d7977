/// How much a request matters relative to others.
///
/// The placement policies themselves are priority-blind: priority orders the live directory's
/// queue (`PlacementQueue`) and decides who may preempt whom (`Preemption`), so either rule can
/// change without touching the policies. The trace replay (`xpu-bench pool-sim`) has no
/// departures and never preempts, as in the FGD simulator.
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
