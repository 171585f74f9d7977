import CXPUDriver
import CXPURuntimeSupport
import Glibc
import Synchronization
import XPUPTX

/// Device memory is charged in units of `DeviceMemory.granularity` bytes (512 B): every allocation
/// is rounded up to it, device addresses are aligned to it, and cuMemGetInfo reports the rounded
/// total. That is finer than a real GPU's 2 MiB pages, so small quotas stay exact and testable.
final class Allocation: @unchecked Sendable {
    let base: UInt64
    let size: Int
    let charged: Int
    let pointer: UnsafeMutableRawPointer
    /// Handle of the context that owns it (freed with the context); 0 for none.
    let context: UInt

    init(base: UInt64, size: Int, charged: Int, pointer: UnsafeMutableRawPointer, context: UInt) {
        self.base = base
        self.size = size
        self.charged = charged
        self.pointer = pointer
        self.context = context
    }

    deinit { free(pointer) }
}

/// The memory of one device, shared by all its contexts. Each context has its own address space
/// as CUDA documents it ("CUdeviceptr values from different contexts reference different memory
/// locations"): a kernel sees only the memory of the context it runs in, so a kernel given another
/// context's pointer faults instead of touching it. Copies find any allocation of the device
/// (the remote server checks a session's ranges before it calls them).
final class DeviceMemory: Sendable {
    static let granularity = 512
    let capacity: Int
    /// Start of this device's device-address range (devices do not overlap, as with UVA).
    let addressBase: UInt64
    let addressLimit: UInt64

    struct State {
        var used = 0
        var allocations: [UInt64: Allocation] = [:]
        /// Every allocation of the device, for copies.
        var map = PTXMemoryMap()
        /// The allocations of each context, as its kernels see them; a launch takes a copy.
        var views: [UInt: PTXMemoryMap] = [:]

        mutating func remove(_ allocation: Allocation) {
            allocations[allocation.base] = nil
            used -= allocation.charged
            map.remove(base: allocation.base)
            views[allocation.context]?.remove(base: allocation.base)
        }
    }

    let state = Mutex(State())

    init(ordinal: Int32, capacity: Int) {
        self.capacity = capacity
        self.addressBase = 0x7F00_0000_0000 &- UInt64(ordinal) &* 0x0100_0000_0000 &* 4
        self.addressLimit = addressBase + 0x0100_0000_0000 * 4
    }

    static func charge(_ size: Int) -> Int { (size + granularity - 1) / granularity * granularity }

    var used: Int { state.withLock { $0.used } }

    func allocate(_ size: Int, context: UInt) throws(Failure) -> Allocation {
        guard size > 0 else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let charged = DeviceMemory.charge(size)
        return try state.withLock { state throws(Failure) -> Allocation in
            guard charged <= capacity - state.used else { throw Failure(CUDA_ERROR_OUT_OF_MEMORY) }
            // First fit in the device's address range, so addresses are reused as on a GPU.
            var cursor = addressBase
            for region in state.map.regions {
                if region.base >= cursor, region.base - cursor >= UInt64(charged) { break }
                cursor = max(cursor, region.base + UInt64(DeviceMemory.charge(region.size)))
            }
            guard cursor + UInt64(charged) <= addressLimit else { throw Failure(CUDA_ERROR_OUT_OF_MEMORY) }
            guard let pointer = calloc(1, charged) else { throw Failure(CUDA_ERROR_OUT_OF_MEMORY) }
            let allocation = Allocation(base: cursor, size: size, charged: charged, pointer: pointer, context: context)
            state.used += charged
            state.allocations[cursor] = allocation
            // Copies reach the bytes asked for; kernels reach the whole charged granule, as on a
            // GPU, where a kernel that reads a little past the end of a small array does not fault.
            state.map.insert(PTXMemoryRegion(base: cursor, size: size, pointer: pointer, owner: allocation))
            let granule = PTXMemoryRegion(base: cursor, size: charged, pointer: pointer, owner: allocation)
            state.views[context, default: PTXMemoryMap()].insert(granule)
            return allocation
        }
    }

    /// Frees the allocation that starts at `base`.
    func free(_ base: UInt64) throws(Failure) {
        try state.withLock { state throws(Failure) in
            guard let allocation = state.allocations[base] else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
            state.remove(allocation)
        }
    }

    /// Frees every allocation owned by a context.
    func freeAll(context: UInt) {
        state.withLock { state in
            for allocation in state.allocations.values where allocation.context == context { state.remove(allocation) }
            state.views[context] = nil
        }
    }

    /// The live allocation that contains `address ..< address + count`, if any.
    func find(_ address: UInt64, count: Int) -> Allocation? {
        state.withLock { state in
            guard let i = state.map.index(containing: address) else { return nil }
            let region = state.map.regions[i]
            guard address - region.base + UInt64(count) <= UInt64(region.size) else { return nil }
            return region.owner as? Allocation
        }
    }

    /// The memory a kernel of `context` may touch, as it is now.
    func view(of context: UInt) -> PTXMemoryMap { state.withLock { $0.views[context] ?? PTXMemoryMap() } }
}

/// Page-locked host memory from cuMemAllocHost (page-aligned host memory, tracked by address).
final class HostAllocation: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let size: Int
    let context: UInt

    init(pointer: UnsafeMutableRawPointer, size: Int, context: UInt) {
        self.pointer = pointer
        self.size = size
        self.context = context
    }

    deinit { free(pointer) }
}

/// A device range checked to lie inside one live allocation; keeps the allocation alive.
struct DeviceRange: @unchecked Sendable {
    var allocation: Allocation
    var pointer: UnsafeMutableRawPointer
}

func deviceRange(_ address: CUdeviceptr, _ count: Int, in context: Context) throws(Failure) -> DeviceRange {
    guard let a = context.device.memory.find(UInt64(address), count: count) else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
    return DeviceRange(allocation: a, pointer: a.pointer + Int(UInt64(address) - a.base))
}

@c @implementation public func cuMemGetInfo_v2(_ free: UnsafeMutablePointer<Int>?, _ total: UnsafeMutablePointer<Int>?) -> CUresult {
    api { () throws(Failure) in
        let context = try currentContext()
        let memory = context.device.memory
        guard let free, let total else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        total.pointee = memory.capacity
        free.pointee = memory.capacity - memory.used
    }
}

@c @implementation public func cuMemAlloc_v2(_ dptr: UnsafeMutablePointer<CUdeviceptr>?, _ bytesize: Int) -> CUresult {
    api { () throws(Failure) in
        let context = try currentContext()
        guard let dptr else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let allocation = try context.device.memory.allocate(bytesize, context: context.handle)
        dptr.pointee = CUdeviceptr(allocation.base)
    }
}

@c @implementation public func cuMemFree_v2(_ dptr: CUdeviceptr) -> CUresult {
    api { () throws(Failure) in
        let context = try currentContext()
        try context.device.memory.free(UInt64(dptr))
        xpu_coherent_device_freed(dptr)
    }
}

@c @implementation public func cuMemAllocHost_v2(_ pp: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ bytesize: Int) -> CUresult {
    api { () throws(Failure) in
        let context = try currentContext()
        guard let pp, bytesize > 0 else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 4096, bytesize) == 0, let pointer else { throw Failure(CUDA_ERROR_OUT_OF_MEMORY) }
        let allocation = HostAllocation(pointer: pointer, size: bytesize, context: context.handle)
        driver.withLock { $0.hostAllocations[UInt(bitPattern: pointer)] = allocation }
        pp.pointee = pointer
    }
}

@c @implementation public func cuMemFreeHost(_ p: UnsafeMutableRawPointer?) -> CUresult {
    // Mapped host memory (cuMemHostAlloc with DEVICEMAP) has a device side to free too.
    let mapped = xpu_coherent_free_host(p)
    if mapped != CUDA_ERROR_NOT_FOUND { return mapped }
    return api { () throws(Failure) in
        _ = try currentContext()
        let removed = driver.withLock { $0.hostAllocations.removeValue(forKey: UInt(bitPattern: p)) }
        guard removed != nil else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
    }
}

/// The allocation that holds `address`: device memory of any context, or host memory from
/// cuMemAllocHost; nil for memory CUDA does not know.
private func pointerFacts(_ address: UInt64) -> xpu_pointer_facts? {
    let (devices, hosts) = driver.withLock { ($0.devices, Array($0.hostAllocations.values)) }
    if let (d, a) = devices.lazy.compactMap({ d in d.memory.find(address, count: 0).map { (d, $0) } }).first {
        return xpu_pointer_facts(
            is_host: 0, base: a.base, size: UInt64(a.size), context: a.context.opaque, device_ordinal: d.ordinal)
    }
    let host = hosts.first { h in
        let start = UInt64(UInt(bitPattern: h.pointer))
        return address >= start && address < start + UInt64(h.size)
    }
    guard let host else { return nil }
    // Host memory is mapped into the context that allocated it, on that context's device.
    let ordinal = driver.withLock { $0.contexts[host.context]?.device.ordinal } ?? 0
    return xpu_pointer_facts(
        is_host: 1, base: UInt64(UInt(bitPattern: host.pointer)), size: UInt64(host.size), context: host.context.opaque,
        device_ordinal: ordinal)
}

@c @implementation public func cuPointerGetAttribute(_ data: UnsafeMutableRawPointer?, _ attribute: CUpointer_attribute, _ ptr: CUdeviceptr) -> CUresult {
    api { () throws(Failure) in
        try initializedRegistry()
        guard let data else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        // Managed and mapped memory answer what they know; the rest is asked of the device side.
        var translated = ptr
        let coherent = xpu_coherent_pointer_attribute(data, attribute, ptr, &translated)
        guard coherent == CUDA_ERROR_NOT_FOUND else {
            if coherent == CUDA_SUCCESS { return }
            throw Failure(coherent)
        }
        let ptr = translated
        let address = UInt64(ptr)
        guard let facts = pointerFacts(address) else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let (base, size, context, ordinal, isHost) = (facts.base, Int(facts.size), UInt(handle: facts.context), facts.device_ordinal, facts.is_host != 0)
        switch attribute {
        case CU_POINTER_ATTRIBUTE_CONTEXT: data.storeBytes(of: context.opaque, as: OpaquePointer?.self)
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
            data.storeBytes(of: (isHost ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE).rawValue, as: UInt32.self)
        case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: data.storeBytes(of: ptr, as: CUdeviceptr.self)
        case CU_POINTER_ATTRIBUTE_HOST_POINTER:
            guard isHost else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
            data.storeBytes(of: UnsafeMutableRawPointer(bitPattern: UInt(address)), as: UnsafeMutableRawPointer?.self)
        // Booleans fill an unsigned int, as the runtime reads them (pointer_attributes.c).
        case CU_POINTER_ATTRIBUTE_IS_MANAGED: data.storeBytes(of: 0, as: UInt32.self)
        case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: data.storeBytes(of: ordinal, as: Int32.self)
        case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: data.storeBytes(of: CUdeviceptr(base), as: CUdeviceptr.self)
        case CU_POINTER_ATTRIBUTE_RANGE_SIZE: data.storeBytes(of: size, as: Int.self)
        case CU_POINTER_ATTRIBUTE_MAPPED: data.storeBytes(of: 1, as: UInt32.self)
        default: throw Failure(CUDA_ERROR_INVALID_VALUE)
        }
    }
}

@c @implementation public func cuPointerGetAttributes(
    _ numAttributes: UInt32, _ attributes: UnsafeMutablePointer<CUpointer_attribute>?, _ data: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ ptr: CUdeviceptr
) -> CUresult {
    api { () throws(Failure) in
        try initializedRegistry()
        // Memory CUDA does not know is no error here: every attribute gets its default.
        let status =
            if var facts = pointerFacts(UInt64(ptr)) {
                xpu_pointer_attributes(numAttributes, attributes, data, ptr, &facts)
            } else {
                xpu_pointer_attributes(numAttributes, attributes, data, ptr, nil)
            }
        guard status == CUDA_SUCCESS else { throw Failure(status) }
    }
}
