#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import XPUProtocol

// Device-to-device copies. When both ends live on one server, that server copies (the request
// of proto/cuda-driver.api). When they live on two servers, no server can reach the other's
// memory, so the shim stages the bytes through its own: a device-to-host copy from the source's
// server, then a host-to-device copy to the destination's, chunk by chunk. Such a copy costs two
// network transfers and completes before the call returns, even the asynchronous form (stronger
// ordering than CUDA asks for, and always correct). The ends are found by `Target(pointer:)`:
// when two servers use the same address, the current context's server is taken for both.

@c @implementation public func cuMemcpyDtoD_v2(_ dstDevice: CUdeviceptr, _ srcDevice: CUdeviceptr, _ ByteCount: Int) -> CUresult {
    let destination = Target(pointer: dstDevice)
    let source = Target(pointer: srcDevice)
    guard let lane = destination.lane, source.lane !== lane else {
        let request = CuMemcpyDtoD_v2Request(dstDevice: dstDevice, srcDevice: srcDevice, ByteCount: UInt64(UInt(bitPattern: ByteCount)))
        return Shim.perform(request, on: destination) { _, _ in }
    }
    return stagedCopy(to: dstDevice, on: destination, from: srcDevice, on: source, count: ByteCount)
}

@c @implementation public func cuMemcpyDtoDAsync_v2(
    _ dstDevice: CUdeviceptr, _ srcDevice: CUdeviceptr, _ ByteCount: Int, _ hStream: CUstream?
) -> CUresult {
    let destination = Target(pointer: dstDevice)
    let source = Target(pointer: srcDevice)
    let count = UInt64(truncatingIfNeeded: ByteCount)
    guard let lane = destination.lane, source.lane !== lane else {
        // One server: fire-and-forget, checked here as the server would check it.
        return destination.locked { lane in
            if let refusal = destination.requireContext() { return refusal }
            if let refusal = lane.checkRange(dstDevice, count: count, elementSize: 1) { return refusal }
            if let refusal = lane.checkRange(srcDevice, count: count, elementSize: 1) { return refusal }
            if let refusal = lane.checkHandle(.stream, hStream) { return refusal }
            let request = CuMemcpyDtoDAsync_v2Request(
                dstDevice: dstDevice, srcDevice: srcDevice, ByteCount: UInt64(UInt(bitPattern: ByteCount)), hStream: Shim.wire(hStream))
            return Shim.post(request, on: lane, context: destination.context)
        }
    }
    guard isStream(hStream, ofEither: destination, source) else { return CUDA_ERROR_INVALID_HANDLE }
    return stagedCopy(to: dstDevice, on: destination, from: srcDevice, on: source, count: ByteCount)
}

/// Whether `stream` is a default stream or one of the two ends' servers' streams: the stream a
/// copy between them may name.
func isStream(_ stream: CUstream?, ofEither first: Target, _ second: Target) -> Bool {
    let id = Shim.id(stream)
    return id <= 2 || [first, second].contains { end in end.lane?.locked { $0.checkHandle(.stream, id) } == nil }
}

/// Copies `count` bytes between two servers through a staging buffer of the shim's.
func stagedCopy(
    to destination: CUdeviceptr, on destinationTarget: Target, from source: CUdeviceptr, on sourceTarget: Target, count: Int
) -> CUresult {
    if let refusal = destinationTarget.requireContext() { return refusal }
    guard count > 0 else { return CUDA_SUCCESS }
    guard !source.addingReportingOverflow(UInt64(count)).overflow, !destination.addingReportingOverflow(UInt64(count)).overflow
    else { return CUDA_ERROR_INVALID_VALUE }
    let chunk = min(count, ProtocolLimits.copyChunkBytes * 4)
    let staging = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
    defer { staging.deallocate() }
    var offset = 0
    while offset < count {
        let part = min(chunk, count - offset)
        let read = Copies.toHost(staging, source &+ UInt64(offset), part, stream: 0, asynchronous: false, on: sourceTarget)
        guard read == CUDA_SUCCESS else { return read }
        let written = Copies.toDevice(destination &+ UInt64(offset), staging, part, stream: 0, asynchronous: false, on: destinationTarget)
        guard written == CUDA_SUCCESS else { return written }
        offset += part
    }
    return CUDA_SUCCESS
}
