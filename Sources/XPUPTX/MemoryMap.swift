/// One range of global memory visible to kernels: device addresses `base ..< base + size`, backed by
/// host memory at `pointer`. `owner` keeps the backing alive while a launch uses it.
public struct PTXMemoryRegion: @unchecked Sendable {
    public var base: UInt64
    public var size: Int
    public var pointer: UnsafeMutableRawPointer
    public var owner: AnyObject?

    public init(base: UInt64, size: Int, pointer: UnsafeMutableRawPointer, owner: AnyObject? = nil) {
        self.base = base
        self.size = size
        self.pointer = pointer
        self.owner = owner
    }
}

/// The global memory a launch may touch: non-overlapping regions sorted by address. Every global
/// access is translated here with a bounds check; an address outside every region is a fault.
public struct PTXMemoryMap: Sendable {
    public private(set) var regions: [PTXMemoryRegion]

    public init(regions: [PTXMemoryRegion] = []) {
        self.regions = regions.sorted { $0.base < $1.base }
    }

    public mutating func insert(_ region: PTXMemoryRegion) {
        var lo = 0
        var hi = regions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if regions[mid].base < region.base { lo = mid + 1 } else { hi = mid }
        }
        regions.insert(region, at: lo)
    }

    public mutating func remove(base: UInt64) {
        if let i = index(containing: base), regions[i].base == base { regions.remove(at: i) }
    }

    /// The index of the region that contains `address`, if any.
    public func index(containing address: UInt64) -> Int? {
        var lo = 0
        var hi = regions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if regions[mid].base <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let r = regions[lo - 1]
        return address - r.base < UInt64(r.size) ? lo - 1 : nil
    }

    /// Host memory for `size` bytes at `address`, or nil if the range is not inside one region.
    public func translate(_ address: UInt64, size: Int) -> UnsafeMutableRawPointer? {
        guard let i = index(containing: address) else { return nil }
        let r = regions[i]
        let offset = address - r.base
        guard offset + UInt64(size) <= UInt64(r.size) else { return nil }
        return r.pointer + Int(offset)
    }
}

/// A fault raised by a kernel. The device turns it into a sticky context error.
public struct PTXFault: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case illegalAddress, misalignedAddress, illegalInstruction, trap
        /// A device-side `assert` failed (`__assertfail`).
        case assertion
    }
    public var kind: Kind
    public var address: UInt64
    public var line: Int
    public var kernel: String

    public var description: String {
        "\(kind) at 0x\(String(address, radix: 16)) in \(kernel) (PTX line \(line))"
    }
}
