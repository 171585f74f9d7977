#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPUShimSupport
import XPUProtocol
import XPUTransport

// Host memory from cuMemAllocHost stays on the client: the server never reads it directly, so
// page-locking it here would buy nothing. The shim remembers it for cuPointerGetAttribute.

@c @implementation public func cuMemAllocHost_v2(_ pp: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ bytesize: Int) -> CUresult {
    guard let pp, bytesize > 0 else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireContext() { return refusal }
    var memory: UnsafeMutableRawPointer?
    guard posix_memalign(&memory, 4096, bytesize) == 0, let memory else { return CUDA_ERROR_OUT_OF_MEMORY }
    Lane.shared.locked { lane in lane.hostAllocations[UInt(bitPattern: memory)] = bytesize }
    pp.pointee = memory
    return CUDA_SUCCESS
}

@c @implementation public func cuMemFreeHost(_ p: UnsafeMutableRawPointer?) -> CUresult {
    if let refusal = requireContext() { return refusal }
    let known = Lane.shared.locked { lane in lane.hostAllocations.removeValue(forKey: UInt(bitPattern: p)) != nil }
    guard known else { return CUDA_ERROR_INVALID_VALUE }
    free(p)
    return CUDA_SUCCESS
}

// Copies move in chunks of ProtocolLimits.copyChunkBytes. Host-to-device chunks but the last are
// fire-and-forget, so a large copy streams without a round trip per chunk; device-to-host chunk
// requests are all sent before the first reply is read. Asynchronous copies complete before the
// reply in protocol version 1 (the server synchronizes the stream), which is stronger ordering
// than CUDA requires and always correct.

@c @implementation public func cuMemcpyHtoD_v2(_ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int) -> CUresult {
    copyToDevice(dstDevice, srcHost, ByteCount, stream: 0, asynchronous: false)
}

@c @implementation public func cuMemcpyHtoD_v2_ptds(_ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int) -> CUresult {
    copyToDevice(dstDevice, srcHost, ByteCount, stream: 0, asynchronous: false)
}

@c @implementation public func cuMemcpyHtoDAsync_v2(
    _ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int, _ hStream: CUstream?
) -> CUresult {
    copyToDevice(dstDevice, srcHost, ByteCount, stream: Shim.wire(hStream), asynchronous: true)
}

@c @implementation public func cuMemcpyHtoDAsync_v2_ptsz(
    _ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int, _ hStream: CUstream?
) -> CUresult {
    copyToDevice(dstDevice, srcHost, ByteCount, stream: Shim.wire(hStream), asynchronous: true)
}

@c @implementation public func cuMemcpyDtoH_v2(_ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int) -> CUresult {
    copyToHost(dstHost, srcDevice, ByteCount, stream: 0, asynchronous: false)
}

@c @implementation public func cuMemcpyDtoH_v2_ptds(_ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int) -> CUresult {
    copyToHost(dstHost, srcDevice, ByteCount, stream: 0, asynchronous: false)
}

@c @implementation public func cuMemcpyDtoHAsync_v2(
    _ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int, _ hStream: CUstream?
) -> CUresult {
    copyToHost(dstHost, srcDevice, ByteCount, stream: Shim.wire(hStream), asynchronous: true)
}

@c @implementation public func cuMemcpyDtoHAsync_v2_ptsz(
    _ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int, _ hStream: CUstream?
) -> CUresult {
    copyToHost(dstHost, srcDevice, ByteCount, stream: Shim.wire(hStream), asynchronous: true)
}

private func copyToDevice(
    _ destination: CUdeviceptr, _ source: UnsafeRawPointer?, _ count: Int, stream: UInt64, asynchronous: Bool
) -> CUresult {
    guard count > 0 else { return requireInitialized() ?? CUDA_SUCCESS }
    guard let source else { return CUDA_ERROR_INVALID_VALUE }
    // An asynchronous copy is fire-and-forget: its argument errors are found here.
    let fireAndForget = asynchronous && !Lane.strict
    let chunk = ProtocolLimits.copyChunkBytes
    do {
        return try Lane.shared.locked { lane throws(ShimFailure) in
            if fireAndForget {
                if let refusal = Shim.requireContext() { return refusal }
                if let refusal = Shim.checkRange(destination, count: UInt64(count), elementSize: 1) { return refusal }
                if let refusal = Shim.checkHandle(.stream, stream) { return refusal }
            }
            let channel = try lane.channel()
            try lane.flush()
            let context = xpu_context_current()
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
                        destination: destination &+ UInt64(offset), remainingBytes: UInt64(count - offset), stream: stream,
                        asynchronous: asynchronous, dataCount: packed.count, rawCount: length)
                    body = packed
                } else {
                    prefix = MemcpyHtoDRequest.framePrefix(
                        sequence: lane.sequence, flags: flags, context: context,
                        destination: destination &+ UInt64(offset), remainingBytes: UInt64(count - offset), stream: stream,
                        asynchronous: asynchronous, dataCount: length)
                }
                let sendStart = monotonicNanoseconds()
                let sent: Result<Void, TransportError> = prefix.withUnsafeBytes { prefix in
                    Result { () throws(TransportError) in try channel.transport.send(parts: [prefix, body]) }
                }
                lane.uploadGovernor.recordSend(bytes: body.count, nanoseconds: monotonicNanoseconds() - sendStart)
                if case .failure(let error) = sent { throw ShimFailure.lost(lane, "connection to the server lost: \(error)") }
                offset += length
            }
            if fireAndForget { return CUDA_SUCCESS }
            return try lane.awaitReply(lane.sequence).0
        }
    } catch {
        return error.status
    }
}

/// The chunk LZ4-compressed into the lane's scratch, when the session negotiated compression and
/// the data shrinks enough to pay; nil to send it raw. Lock held.
private func compressedChunk(_ data: UnsafeRawBufferPointer, lane: Lane) -> UnsafeRawBufferPointer? {
    guard lane.compression, let codec = LZ4Codec.shared,
        lane.uploadGovernor.shouldCompress(data, codec: codec, scratch: lane.sampleScratch)
    else { return nil }
    let limit = Int(Double(data.count) * CompressionGovernor.worthwhileRatio)
    guard let count = codec.compress(data, into: lane.compressionScratch, limit: limit) else { return nil }
    return UnsafeRawBufferPointer(rebasing: lane.compressionScratch[0..<count])
}

private func copyToHost(
    _ destination: UnsafeMutableRawPointer?, _ source: CUdeviceptr, _ count: Int, stream: UInt64, asynchronous: Bool
) -> CUresult {
    guard count > 0 else { return requireInitialized() ?? CUDA_SUCCESS }
    guard let destination else { return CUDA_ERROR_INVALID_VALUE }
    let chunk = ProtocolLimits.copyChunkBytes
    do {
        return try Lane.shared.locked { lane throws(ShimFailure) in
            let channel = try lane.channel()
            // Every chunk is requested before the first reply is read (pipelined).
            var sequences: [UInt32] = []
            var offset = 0
            let context = xpu_context_current()
            while offset < count {
                let length = min(chunk, count - offset)
                lane.sequence &+= 1
                sequences.append(lane.sequence)
                let request = MemcpyDtoHRequest(
                    source: source &+ UInt64(offset), count: UInt64(length), remainingBytes: UInt64(count - offset),
                    stream: stream, asynchronous: asynchronous ? 1 : 0)
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
    } catch {
        return error.status
    }
}

@c @implementation public func cuPointerGetAttribute(
    _ data: UnsafeMutableRawPointer?, _ attribute: CUpointer_attribute, _ ptr: CUdeviceptr
) -> CUresult {
    guard let data else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireInitialized() { return refusal }
    // Host allocations of this process are answered here.
    let host: (base: UInt, size: Int)? = Lane.shared.locked { lane in
        lane.hostAllocations.first { base, size in UInt(ptr) >= base && UInt(ptr) < base + UInt(size) }
            .map { ($0.key, $0.value) }
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
    return Shim.perform(PointerGetAttributeRequest(attribute: UInt32(attribute.rawValue), pointer: ptr)) { reply in
        if size == 4 {
            data.storeBytes(of: UInt32(truncatingIfNeeded: reply.value), as: UInt32.self)
        } else {
            data.storeBytes(of: reply.value, as: UInt64.self)
        }
    }
}

/// The bytes `cuPointerGetAttribute` writes for each attribute the shim forwards.
enum PointerAttributeSize {
    static func of(_ attribute: CUpointer_attribute) -> Int? {
        switch attribute {
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: 4
        case CU_POINTER_ATTRIBUTE_CONTEXT, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, CU_POINTER_ATTRIBUTE_HOST_POINTER,
            CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, CU_POINTER_ATTRIBUTE_RANGE_SIZE:
            8
        default: nil
        }
    }
}

/// CUDA_ERROR_NOT_INITIALIZED before cuInit, else nil.
func requireInitialized() -> CUresult? {
    Lane.shared.locked { lane in lane.refusal() }
}

/// As `requireInitialized`, and CUDA_ERROR_INVALID_CONTEXT when the thread has no current context.
func requireContext() -> CUresult? {
    if let refusal = requireInitialized() { return refusal }
    return xpu_context_current() == 0 ? CUDA_ERROR_INVALID_CONTEXT : nil
}
