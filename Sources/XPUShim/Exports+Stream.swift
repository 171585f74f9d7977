import CXPUDriver
import CXPUShimSupport
import XPUProtocol

// Streams and events get handles minted by the shim, so creating one needs no round trip: the
// server creates the driver object under the client's id when the request arrives. Arguments
// are checked here as the driver checks them. They belong to the current context's server.

@c @implementation public func cuStreamCreate(_ phStream: UnsafeMutablePointer<CUstream?>?, _ Flags: UInt32) -> CUresult {
    guard let phStream, Flags & ~CU_STREAM_NON_BLOCKING.rawValue == 0 else { return CUDA_ERROR_INVALID_VALUE }
    let target = Target.current
    return target.locked { lane in
        if let refusal = target.requireContext() { return refusal }
        let context = xpu_context_current()
        let id = lane.mintHandle()
        let status = Shim.post(StreamCreateRequest(stream: Lanes.wire(id), flags: Flags), on: lane, context: context)
        guard status == CUDA_SUCCESS else { return status }
        lane.handles.insert(.stream, id, context: context)
        phStream.pointee = CUstream(bitPattern: UInt(id))
        return CUDA_SUCCESS
    }
}

@c @implementation public func cuEventCreate(_ phEvent: UnsafeMutablePointer<CUevent?>?, _ Flags: UInt32) -> CUresult {
    let known = CU_EVENT_BLOCKING_SYNC.rawValue | CU_EVENT_DISABLE_TIMING.rawValue | CU_EVENT_INTERPROCESS.rawValue
    guard let phEvent, Flags & ~known == 0 else { return CUDA_ERROR_INVALID_VALUE }
    // Interprocess events must disable timing.
    if Flags & CU_EVENT_INTERPROCESS.rawValue != 0, Flags & CU_EVENT_DISABLE_TIMING.rawValue == 0 {
        return CUDA_ERROR_INVALID_VALUE
    }
    let target = Target.current
    return target.locked { lane in
        if let refusal = target.requireContext() { return refusal }
        let context = xpu_context_current()
        let id = lane.mintHandle()
        let status = Shim.post(EventCreateRequest(event: Lanes.wire(id), flags: Flags), on: lane, context: context)
        guard status == CUDA_SUCCESS else { return status }
        lane.handles.insert(.event, id, context: context)
        phEvent.pointee = CUevent(bitPattern: UInt(id))
        return CUDA_SUCCESS
    }
}
