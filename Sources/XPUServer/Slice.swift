import CXPUDriver

/// What a session was granted on one device: a memory quota (and, as slices grow, a compute share
/// and a priority). Without `XPU_SLICE` a session has no slice and sees the whole device.
struct Slice: Hashable, Sendable {
    var device: Int32
    /// Bytes the session may hold on `device`; nil for no quota (only `compute=`/`priority=` asked).
    var memoryQuota: UInt64?
    var computePercent: Double?
    var priority: SlicePriority
    /// The share is a ceiling too (`mode=capped`), not only a floor.
    var capped: Bool
    /// The pool directory's token for this placement, if it came through a pool.
    var grant: String?

    init(_ request: SliceRequest) {
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
    static func charge(_ bytes: UInt64) -> UInt64 {
        (bytes &+ 511) & ~511
    }
}

/// Refusal of a slice at the handshake: the status `cuInit` returns and the reason it is given.
struct SliceRefusal: Error {
    var status: CUresult
    var reason: String
}
