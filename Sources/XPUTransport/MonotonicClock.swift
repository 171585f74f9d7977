import CXPUClock

/// Nanoseconds on the monotonic clock (`xpu_monotonic_nanoseconds`, the one definition, which
/// libxpusim.so calls as well).
@inlinable
public func monotonicNanoseconds() -> UInt64 { xpu_monotonic_nanoseconds() }
