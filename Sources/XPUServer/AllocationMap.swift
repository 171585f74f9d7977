/// The device memory a session may touch: its allocations and the module variables it looked up.
/// Sorted by start address so a range check is a binary search.
struct AllocationMap {
    struct Allocation {
        var start: UInt64
        var bytes: UInt64
        var context: UInt64
        /// Module variables may be copied to and from, never freed.
        var isGlobal: Bool

        var end: UInt64 { start &+ bytes }
    }

    private(set) var allocations: [Allocation] = []

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

    mutating func insert(_ allocation: Allocation) {
        let index = (floorIndex(allocation.start) ?? -1) + 1
        if index > 0, allocations[index - 1].start == allocation.start {
            allocations[index - 1] = allocation  // a module variable looked up again
        } else {
            allocations.insert(allocation, at: index)
        }
    }

    /// True when [start, start+length) lies inside one allocation.
    func contains(start: UInt64, length: UInt64) -> Bool {
        guard let index = floorIndex(start) else { return false }
        let allocation = allocations[index]
        let (end, overflow) = start.addingReportingOverflow(length)
        return !overflow && end <= allocation.end && start < allocation.end
    }

    func allocation(startingAt start: UInt64) -> Allocation? {
        guard let index = floorIndex(start), allocations[index].start == start else { return nil }
        return allocations[index]
    }

    mutating func remove(startingAt start: UInt64) {
        guard let index = floorIndex(start), allocations[index].start == start else { return }
        allocations.remove(at: index)
    }

    mutating func removeAll(ownedBy context: UInt64) {
        allocations.removeAll { $0.context == context }
    }
}
