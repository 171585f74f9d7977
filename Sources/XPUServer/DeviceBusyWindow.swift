/// Busy fraction of each device over a window that ends at each reading: device time added since
/// the previous reading over the wall time between them. Each reader keeps its own window (a
/// /metrics scrape, a pool heartbeat), so one does not shorten the other's.
struct DeviceBusyWindow: Sendable {
    private var previousTime: UInt64
    private var previousBusy: [Int32: UInt64] = [:]

    init(now: UInt64) { previousTime = now }

    /// The fraction of `devices` busy since the previous reading, each at most 1 (kernels of
    /// several sessions may overlap, so their sum can pass the wall time), given the devices'
    /// cumulative busy time `busy` (ns) at `now` (ns); starts the next window.
    mutating func read(busy: [Int32: UInt64], now: UInt64, devices: Range<Int32>) -> [Int32: Double] {
        let elapsed = Double(max(now &- previousTime, 1))
        var fractions: [Int32: Double] = [:]
        for device in devices {
            let total = busy[device] ?? 0
            fractions[device] = min(1, Double(total &- min(total, previousBusy[device] ?? 0)) / elapsed)
        }
        previousTime = now
        previousBusy = busy
        return fractions
    }
}
