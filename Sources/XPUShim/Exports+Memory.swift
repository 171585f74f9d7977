#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPURuntimeSupport
import CXPUShimSupport
import XPUProtocol
import XPUTransport

// Host memory from cuMemAllocHost stays on the client: no server reads it directly, so
// page-locking it here would buy nothing. The shim remembers it for cuPointerGetAttribute.

@c @implementation public func cuMemAllocHost_v2(_ pp: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ bytesize: Int) -> CUresult {
    guard let pp, bytesize > 0 else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireContext() { return refusal }
    var memory: UnsafeMutableRawPointer?
    guard posix_memalign(&memory, 4096, bytesize) == 0, let memory else { return CUDA_ERROR_OUT_OF_MEMORY }
    HostMemory.withAllocations { $0[UInt(bitPattern: memory)] = bytesize }
    pp.pointee = memory
    return CUDA_SUCCESS
}

@c @implementation public func cuMemFreeHost(_ p: UnsafeMutableRawPointer?) -> CUresult {
    if let refusal = requireContext() { return refusal }
    // Mapped host memory (cuMemHostAlloc with DEVICEMAP) has a device side to free too.
    let mapped = xpu_coherent_free_host(p)
    if mapped != CUDA_ERROR_NOT_FOUND { return mapped }
    let known = HostMemory.withAllocations { $0.removeValue(forKey: UInt(bitPattern: p)) != nil }
    guard known else { return CUDA_ERROR_INVALID_VALUE }
    free(p)
    return CUDA_SUCCESS
}

/// Host allocations of this process (cuMemAllocHost): base address → size. Guarded by the registry lock.
enum HostMemory {
    nonisolated(unsafe) private static var allocations: [UInt: Int] = [:]

    static func withAllocations<T>(_ body: (inout [UInt: Int]) -> T) -> T {
        xpu_registry_lock()
        defer { xpu_registry_unlock() }
        return body(&allocations)
    }
}

// Copies move in chunks of ProtocolLimits.copyChunkBytes. Host-to-device chunks but the last are
// fire-and-forget, so a large copy streams without a round trip per chunk; device-to-host chunk
// requests are all sent before the first reply is read. Asynchronous copies complete on the server
// before it serves the next call that is not an upload chunk (proto/PROTOCOL.md, "Bulk data"),
// which is stronger ordering than CUDA requires and always correct. A copy goes to the server
// whose allocations hold the device address (Target).

@c @implementation public func cuMemcpyHtoD_v2(_ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int) -> CUresult {
    Copies.toDevice(dstDevice, srcHost, ByteCount, stream: 0, asynchronous: false, on: Target(pointer: dstDevice))
}

@c @implementation public func cuMemcpyHtoD_v2_ptds(_ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int) -> CUresult {
    Copies.toDevice(dstDevice, srcHost, ByteCount, stream: 0, asynchronous: false, on: Target(pointer: dstDevice))
}

@c @implementation public func cuMemcpyHtoDAsync_v2(
    _ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int, _ hStream: CUstream?
) -> CUresult {
    Copies.toDevice(dstDevice, srcHost, ByteCount, stream: Shim.id(hStream), asynchronous: true, on: Target(pointer: dstDevice))
}

@c @implementation public func cuMemcpyHtoDAsync_v2_ptsz(
    _ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int, _ hStream: CUstream?
) -> CUresult {
    Copies.toDevice(dstDevice, srcHost, ByteCount, stream: Shim.id(hStream), asynchronous: true, on: Target(pointer: dstDevice))
}

@c @implementation public func cuMemcpyDtoH_v2(_ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int) -> CUresult {
    Copies.toHost(dstHost, srcDevice, ByteCount, stream: 0, asynchronous: false, on: Target(pointer: srcDevice))
}

@c @implementation public func cuMemcpyDtoH_v2_ptds(_ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int) -> CUresult {
    Copies.toHost(dstHost, srcDevice, ByteCount, stream: 0, asynchronous: false, on: Target(pointer: srcDevice))
}

@c @implementation public func cuMemcpyDtoHAsync_v2(
    _ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int, _ hStream: CUstream?
) -> CUresult {
    Copies.toHost(dstHost, srcDevice, ByteCount, stream: Shim.id(hStream), asynchronous: true, on: Target(pointer: srcDevice))
}

@c @implementation public func cuMemcpyDtoHAsync_v2_ptsz(
    _ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int, _ hStream: CUstream?
) -> CUresult {
    Copies.toHost(dstHost, srcDevice, ByteCount, stream: Shim.id(hStream), asynchronous: true, on: Target(pointer: srcDevice))
}

/// Copies between the application's memory and one server's device memory (`stream` is the
/// application's id).
enum Copies {
    static func toDevice(
        _ destination: CUdeviceptr, _ source: UnsafeRawPointer?, _ count: Int, stream: UInt64, asynchronous: Bool, on target: Target
    ) -> CUresult {
        // Managed and mapped memory (coherent.c): the device sees the host's writes before the
        // copy, and the host sees the device's state after a synchronous one.
        xpu_coherent_push()
        defer { if !asynchronous { xpu_coherent_pull() } }
        guard count > 0 else { return requireInitialized() ?? CUDA_SUCCESS }
        guard let source else { return CUDA_ERROR_INVALID_VALUE }
        // An asynchronous copy is fire-and-forget: its argument errors are found here.
        let fireAndForget = asynchronous && !Lane.strict
        let chunk = ProtocolLimits.copyChunkBytes
        let (context, wireStream) = (Lanes.wire(target.context), Lanes.wire(stream))
        return target.locked { lane throws(ShimFailure) in
            if fireAndForget {
                if let refusal = target.requireContext() { return refusal }
                if let refusal = lane.checkRange(destination, count: UInt64(count), elementSize: 1) { return refusal }
                if let refusal = lane.checkHandle(.stream, stream) { return refusal }
            }
            let channel = try lane.channel()
            try lane.flush()
            var offset = 0
            while offset < count {
                let length = min(chunk, count - offset)
                let last = offset + length == count
                lane.sequence &+= 1
                let flags: FrameFlags = fireAndForget || !last ? .noReply : []
                let data = UnsafeRawBufferPointer(start: source + offset, count: length)
                // Compressed when it pays; otherwise the data goes from the application's memory
                // to the socket, copied by no one else.
                var prefix: [UInt8]
                var body = data
                if let packed = compressedChunk(data, lane: lane) {
                    prefix = MemcpyHtoDRequest.framePrefix(
                        sequence: lane.sequence, flags: flags.union(.compressed), context: context,
                        destination: destination &+ UInt64(offset), remainingBytes: UInt64(count - offset), stream: wireStream,
                        asynchronous: asynchronous, dataCount: packed.count, rawCount: length)
                    body = packed
                } else {
                    prefix = MemcpyHtoDRequest.framePrefix(
                        sequence: lane.sequence, flags: flags, context: context,
                        destination: destination &+ UInt64(offset), remainingBytes: UInt64(count - offset), stream: wireStream,
                        asynchronous: asynchronous, dataCount: length)
                }
                let sendStart = monotonicNanoseconds()
                let sent: Result<Void, TransportError> = prefix.withUnsafeBytes { prefix in
                    Result { () throws(TransportError) in try channel.transport.send(parts: [prefix, body]) }
                }
                lane.uploadGovernor.recordSend(
                    bytes: body.count, nanoseconds: monotonicNanoseconds() - sendStart, delivery: channel.transport.deliveryRate())
                if case .failure(let error) = sent { throw ShimFailure.lost(lane, "connection to the server lost: \(error)") }
                offset += length
            }
            if fireAndForget { return CUDA_SUCCESS }
            return try lane.awaitReply(lane.sequence).0
        }
    }

    /// The chunk LZ4-compressed into the lane's scratch, when the session negotiated compression and
    /// the data shrinks enough to pay; nil to send it raw. Lock held.
    private static func compressedChunk(_ data: UnsafeRawBufferPointer, lane: Lane) -> UnsafeRawBufferPointer? {
        guard lane.compression, let codec = LZ4Codec.shared,
            let count = lane.uploadGovernor.compress(
                data, codec: codec, into: lane.compressionScratch, sampleScratch: lane.sampleScratch)
        else { return nil }
        return UnsafeRawBufferPointer(rebasing: lane.compressionScratch[0..<count])
    }

    static func toHost(
        _ destination: UnsafeMutableRawPointer?, _ source: CUdeviceptr, _ count: Int, stream: UInt64, asynchronous: Bool, on target: Target
    ) -> CUresult {
        xpu_coherent_push()
        defer { if !asynchronous { xpu_coherent_pull() } }
        guard count > 0 else { return requireInitialized() ?? CUDA_SUCCESS }
        guard let destination else { return CUDA_ERROR_INVALID_VALUE }
        let chunk = ProtocolLimits.copyChunkBytes
        let (context, wireStream) = (Lanes.wire(target.context), Lanes.wire(stream))
        return target.locked { lane throws(ShimFailure) in
            let channel = try lane.channel()
            // Every chunk is requested before the first reply is read (pipelined).
            var sequences: [UInt32] = []
            var offset = 0
            while offset < count {
                let length = min(chunk, count - offset)
                lane.sequence &+= 1
                sequences.append(lane.sequence)
                let request = MemcpyDtoHRequest(
                    source: source &+ UInt64(offset), count: UInt64(length), remainingBytes: UInt64(count - offset),
                    stream: wireStream, asynchronous: asynchronous ? 1 : 0)
                // `compressed` on this request lets the server compress the reply where it pays.
                lane.pending.appendFrame(
                    FrameHeader(
                        length: 0, call: CallID.memcpyDtoH.rawValue, flags: lane.compression ? .compressed : [],
                        sequence: lane.sequence, context: context)
                ) { writer in request.encode(into: &writer) }
                offset += length
            }
            try lane.flush()
            // Each reply's data lands directly in the application's buffer.
            var status = CUDA_SUCCESS
            offset = 0
            for sequence in sequences {
                let length = min(chunk, count - offset)
                let target = UnsafeMutableRawBufferPointer(start: destination + offset, count: length)
                let chunkStatus = try lane.awaitBulkReply(sequence, into: target, channel: channel)
                if status == CUDA_SUCCESS { status = chunkStatus }
                offset += length
            }
            return status
        }
    }
}

@c @implementation public func cuPointerGetAttribute(
    _ data: UnsafeMutableRawPointer?, _ attribute: CUpointer_attribute, _ ptr: CUdeviceptr
) -> CUresult {
    guard let data else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireInitialized() { return refusal }
    // Managed and mapped memory answer what they know; the rest is asked of the device side.
    var translated = ptr
    let coherent = xpu_coherent_pointer_attribute(data, attribute, ptr, &translated)
    if coherent != CUDA_ERROR_NOT_FOUND { return coherent }
    let ptr = translated
    // Host allocations of this process are answered here.
    let host: (base: UInt, size: Int)? = HostMemory.withAllocations { allocations in
        allocations.first { base, size in UInt(ptr) >= base && UInt(ptr) < base + UInt(size) }.map { ($0.key, $0.value) }
    }
    if let host {
        switch attribute {
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: data.storeBytes(of: UInt32(CU_MEMORYTYPE_HOST.rawValue), as: UInt32.self)
        case CU_POINTER_ATTRIBUTE_HOST_POINTER: data.storeBytes(of: UInt64(ptr), as: UInt64.self)
        case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: data.storeBytes(of: UInt64(host.base), as: UInt64.self)
        case CU_POINTER_ATTRIBUTE_RANGE_SIZE: data.storeBytes(of: UInt64(host.size), as: UInt64.self)
        default: return CUDA_ERROR_NOT_SUPPORTED
        }
        return CUDA_SUCCESS
    }
    guard let size = PointerAttributeSize.of(attribute) else { return CUDA_ERROR_NOT_SUPPORTED }
    let target = Target(pointer: ptr)
    return Shim.perform(PointerGetAttributeRequest(attribute: UInt32(attribute.rawValue), pointer: ptr), on: target) { lane, reply in
        // Devices and contexts are named as the application knows them.
        var value = reply.value
        if attribute == CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL { value = UInt64(UInt32(bitPattern: lane.clientDevice(Int32(truncatingIfNeeded: value)))) }
        if attribute == CU_POINTER_ATTRIBUTE_CONTEXT { value = lane.tagged(value) }
        if size == 4 {
            data.storeBytes(of: UInt32(truncatingIfNeeded: value), as: UInt32.self)
        } else {
            data.storeBytes(of: value, as: UInt64.self)
        }
    }
}

/// The bytes `cuPointerGetAttribute` writes for each attribute the shim forwards.
enum PointerAttributeSize {
    static func of(_ attribute: CUpointer_attribute) -> Int? {
        switch attribute {
        // Booleans fill an unsigned int, as the runtime reads them.
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_IS_MANAGED,
            CU_POINTER_ATTRIBUTE_MAPPED:
            4
        case CU_POINTER_ATTRIBUTE_CONTEXT, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, CU_POINTER_ATTRIBUTE_HOST_POINTER,
            CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, CU_POINTER_ATTRIBUTE_RANGE_SIZE:
            8
        default: nil
        }
    }
}

/// CUDA_ERROR_NOT_INITIALIZED before cuInit, else nil while any server's session is up; when none
/// is, the first lane's failure (CUDA_ERROR_DEVICE_UNAVAILABLE for a vanished server). With several
/// servers, losing one does not uninitialize the driver: the calls routed to it fail on their own.
func requireInitialized() -> CUresult? {
    guard !Lanes.all.isEmpty else { return CUDA_ERROR_NOT_INITIALIZED }
    var first: CUresult?
    for lane in Lanes.all {
        guard let refusal = lane.locked({ $0.refusal() }) else { return nil }
        first = first ?? refusal
    }
    return first
}

/// As `requireInitialized` for the current context's lane, and CUDA_ERROR_INVALID_CONTEXT when the
/// thread has no current context.
func requireContext() -> CUresult? {
    Target.current.requireContext()
}

/// cuPointerGetAttributes, answered by the shim with no round trip: it knows every allocation of
/// every session (device memory by lane, host memory from cuMemAllocHost), and a pointer none
/// holds is no error here, every attribute getting its default (pointer_attributes.c).
@c @implementation public func cuPointerGetAttributes(
    _ numAttributes: UInt32, _ attributes: UnsafeMutablePointer<CUpointer_attribute>?,
    _ data: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ ptr: CUdeviceptr
) -> CUresult {
    if let refusal = requireInitialized() { return refusal }
    if var facts = PointerFacts.of(ptr) { return xpu_pointer_attributes(numAttributes, attributes, data, ptr, &facts) }
    return xpu_pointer_attributes(numAttributes, attributes, data, ptr, nil)
}

enum PointerFacts {
    /// The allocation that holds `pointer`, as the application names its context and device:
    /// host memory of this process first, then device memory (the current context's lane first,
    /// as Target finds it); nil for memory CUDA does not know.
    static func of(_ pointer: CUdeviceptr) -> xpu_pointer_facts? {
        let host: (base: UInt, size: Int)? = HostMemory.withAllocations { allocations in
            allocations.first { base, size in UInt(pointer) >= base && UInt(pointer) < base + UInt(size) }.map { ($0.key, $0.value) }
        }
        if let host {
            // Host memory is mapped into every context; it is reported in the current one.
            let context = xpu_context_current()
            let device = Lanes.lane(of: context)?.locked { $0.contextDevices[context] } ?? 0
            return xpu_pointer_facts(
                is_host: 1, base: UInt64(host.base), size: UInt64(host.size), context: OpaquePointer(bitPattern: UInt(context)),
                device_ordinal: device)
        }
        guard let lane = Target(pointer: pointer).lane else { return nil }
        return lane.locked { lane -> xpu_pointer_facts? in
            guard let allocation = lane.memory.allocation(containing: pointer) else { return nil }
            return xpu_pointer_facts(
                is_host: 0, base: allocation.start, size: allocation.bytes, context: OpaquePointer(bitPattern: UInt(allocation.context)),
                device_ordinal: lane.contextDevices[allocation.context] ?? 0)
        }
    }
}
