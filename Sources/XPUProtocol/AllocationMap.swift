/// The device memory a session may touch: its allocations and the module variables it looked up.
/// Sorted by start address so a range check is a binary search. Both peers keep one: the server
/// to refuse ranges outside the session, the shim to validate fire-and-forget calls before it
/// sends them (so their argument errors come back at the call, as CUDA returns them).
public struct AllocationMap: Sendable {
    public struct Allocation: Hashable, Sendable {
        public var start: UInt64
        public var bytes: UInt64
        public var context: UInt64
        /// Module variables may be copied to and from, never freed.
        public var isGlobal: Bool

        public var end: UInt64 { start &+ bytes }

        public init(start: UInt64, bytes: UInt64, context: UInt64, isGlobal: Bool) {
            self.start = start
            self.bytes = bytes
            self.context = context
            self.isGlobal = isGlobal
        }
    }

    public private(set) var allocations: [Allocation] = []

    public init() {}

    /// The index of the last allocation starting at or below `address`.
    private func floorIndex(_ address: UInt64) -> Int? {
        var low = 0
        var high = allocations.count
        while low < high {
            let middle = (low + high) / 2
            if allocations[middle].start <= address { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? nil : low - 1
    }

    public mutating func insert(_ allocation: Allocation) {
        let index = (floorIndex(allocation.start) ?? -1) + 1
        if index > 0, allocations[index - 1].start == allocation.start {
            allocations[index - 1] = allocation  // a module variable looked up again
        } else {
            allocations.insert(allocation, at: index)
        }
    }

    /// True when [start, start+length) lies inside one allocation.
    public func contains(start: UInt64, length: UInt64) -> Bool {
        guard let index = floorIndex(start) else { return false }
        let allocation = allocations[index]
        let (end, overflow) = start.addingReportingOverflow(length)
        return !overflow && end <= allocation.end && start < allocation.end
    }

    /// The allocation that holds `address`, if any.
    public func allocation(containing address: UInt64) -> Allocation? {
        guard let index = floorIndex(address), address < allocations[index].end else { return nil }
        return allocations[index]
    }

    public func allocation(startingAt start: UInt64) -> Allocation? {
        guard let index = floorIndex(start), allocations[index].start == start else { return nil }
        return allocations[index]
    }

    public mutating func remove(startingAt start: UInt64) {
        guard let index = floorIndex(start), allocations[index].start == start else { return }
        allocations.remove(at: index)
    }

    public mutating func removeAll(ownedBy context: UInt64) {
        allocations.removeAll { $0.context == context }
    }
}
