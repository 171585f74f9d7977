import Synchronization

/// The printf FIFO of one context: what kernels print, held until the host synchronizes (CUDA
/// writes it out at the next synchronizing call). A record that does not fit in what is left of
/// the capacity is dropped whole, as CUDA drops output once its FIFO is full; the capacity is
/// `CU_LIMIT_PRINTF_FIFO_SIZE` (1 MiB unless the program sets it).
public final class DeviceOutput: Sendable {
    public static let defaultCapacity = 1 << 20

    struct State {
        var bytes: [UInt8] = []
        var capacity = DeviceOutput.defaultCapacity
        var dropped = 0
    }

    let state = Mutex(State())

    public init() {}

    /// The FIFO's size in bytes.
    public var capacity: Int {
        get { state.withLock { $0.capacity } }
        set { state.withLock { $0.capacity = newValue } }
    }

    /// Adds one printf's output; false (and nothing added) when it does not fit.
    @discardableResult
    public func append(_ record: [UInt8]) -> Bool {
        state.withLock { s in
            guard s.bytes.count + record.count <= s.capacity else {
                s.dropped += 1
                return false
            }
            s.bytes += record
            return true
        }
    }

    /// Everything printed since the last drain, and how many records were dropped; empties the FIFO.
    public func drain() -> (bytes: [UInt8], dropped: Int) {
        state.withLock { s in
            defer {
                s.bytes = []
                s.dropped = 0
            }
            return (s.bytes, s.dropped)
        }
    }
}
