import CXPUDriver

/// What a session was granted on one device: a memory quota (and, as slices grow, a compute share
/// and a priority). Without `XPU_SLICE` a session has no slice and sees the whole device.
public struct Slice: Hashable, Sendable {
    public var device: Int32
    /// Bytes the session may hold on `device`; nil for no quota (only `compute=`/`priority=` asked).
    public var memoryQuota: UInt64?
    public var computePercent: Double?
    public var priority: SlicePriority
    /// The share is a ceiling too (`mode=capped`), not only a floor.
    public var capped: Bool
    /// The pool directory's token for this placement, if it came through a pool.
    public var grant: String?

    public init(_ request: SliceRequest) {
        grant = request.grant
        device = request.device ?? 0
        memoryQuota = request.memoryBytes
        computePercent = request.computePercent
        priority = request.priority ?? .normal
        capped = request.capped
    }

    /// How allocations are charged: rounded up to 512 bytes, the simulated device's granularity.
    /// (A real driver rounds to larger pages; contexts, modules and the server's staging buffers
    /// are not charged to the slice — documented in docs/slices-and-isolation.md.)
    public static func charge(_ bytes: UInt64) -> UInt64 {
        (bytes &+ 511) & ~511
    }
}

/// Refusal of a slice at the handshake: the status `cuInit` returns and the reason it is given.
public struct SliceRefusal: Error {
    public var status: CUresult
    public var reason: String

    public init(status: CUresult, reason: String) {
        self.status = status
        self.reason = reason
    }
}
