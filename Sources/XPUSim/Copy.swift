import CXPUDriver
import Glibc

/// Host pointers captured by queued copies (the application keeps them valid, as CUDA requires).
struct HostPointer: @unchecked Sendable {
    var raw: UnsafeMutableRawPointer
}

enum CopyKind { case hostToDevice, deviceToHost, deviceToDevice }

/// Validates and enqueues a copy; when `synchronous`, waits for it and reports the context's fault.
func copy(
    _ kind: CopyKind, dst: UInt64, src: UInt64, count: Int, stream hStream: CUstream?, synchronous: Bool
) -> CUresult {
    beforeDeviceWork()
    let status = api { () throws(Failure) in
        let (context, stream) = try resolveStream(hStream)
        guard count > 0 else { return }
        let target: HostPointer
        let source: HostPointer
        var keep: [DeviceRange] = []
        switch kind {
        case .hostToDevice:
            guard let s = UnsafeMutableRawPointer(bitPattern: UInt(src)) else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
            let d = try deviceRange(CUdeviceptr(dst), count, in: context)
            keep.append(d)
            (target, source) = (HostPointer(raw: d.pointer), HostPointer(raw: s))
        case .deviceToHost:
            guard let d = UnsafeMutableRawPointer(bitPattern: UInt(dst)) else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
            let s = try deviceRange(CUdeviceptr(src), count, in: context)
            keep.append(s)
            (target, source) = (HostPointer(raw: d), HostPointer(raw: s.pointer))
        case .deviceToDevice:
            let d = try deviceRange(CUdeviceptr(dst), count, in: context)
            let s = try deviceRange(CUdeviceptr(src), count, in: context)
            keep += [d, s]
            (target, source) = (HostPointer(raw: d.pointer), HostPointer(raw: s.pointer))
        }
        let completion = context.enqueue(on: stream) {
            withExtendedLifetime(keep) { _ = memmove(target.raw, source.raw, count) }
        }
        if synchronous {
            completion.wait()
            DevicePrintfOutput.flush(context: context.handle)
            try context.sticky.check()
        }
    }
    return synchronous ? synchronized(status) : status
}

func memset(dst: UInt64, value: UInt32, elementSize: Int, count: Int, stream hStream: CUstream?, synchronous: Bool) -> CUresult {
    beforeDeviceWork()
    let status = api { () throws(Failure) in
        let (context, stream) = try resolveStream(hStream)
        guard count > 0 else { return }
        if elementSize == 4, dst % 4 != 0 { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let range = try deviceRange(CUdeviceptr(dst), count * elementSize, in: context)
        let completion = context.enqueue(on: stream) {
            if elementSize == 1 {
                _ = Glibc.memset(range.pointer, Int32(value & 0xFF), count)
            } else {
                range.pointer.withMemoryRebound(to: UInt32.self, capacity: count) { p in
                    p.update(repeating: value, count: count)
                }
            }
        }
        if synchronous {
            completion.wait()
            try context.sticky.check()
        }
    }
    return synchronous ? synchronized(status) : status
}

@c @implementation public func cuMemcpyHtoD_v2(_ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int) -> CUresult {
    copy(.hostToDevice, dst: UInt64(dstDevice), src: UInt64(UInt(bitPattern: srcHost)), count: ByteCount, stream: nil, synchronous: true)
}
@c @implementation public func cuMemcpyHtoD_v2_ptds(_ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int) -> CUresult {
    copy(.hostToDevice, dst: UInt64(dstDevice), src: UInt64(UInt(bitPattern: srcHost)), count: ByteCount, stream: nil, synchronous: true)
}
@c @implementation public func cuMemcpyDtoH_v2(_ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int) -> CUresult {
    copy(.deviceToHost, dst: UInt64(UInt(bitPattern: dstHost)), src: UInt64(srcDevice), count: ByteCount, stream: nil, synchronous: true)
}
@c @implementation public func cuMemcpyDtoH_v2_ptds(_ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int) -> CUresult {
    copy(.deviceToHost, dst: UInt64(UInt(bitPattern: dstHost)), src: UInt64(srcDevice), count: ByteCount, stream: nil, synchronous: true)
}
@c @implementation public func cuMemcpyDtoD_v2(_ dstDevice: CUdeviceptr, _ srcDevice: CUdeviceptr, _ ByteCount: Int) -> CUresult {
    copy(.deviceToDevice, dst: UInt64(dstDevice), src: UInt64(srcDevice), count: ByteCount, stream: nil, synchronous: true)
}
@c @implementation public func cuMemcpyDtoD_v2_ptds(_ dstDevice: CUdeviceptr, _ srcDevice: CUdeviceptr, _ ByteCount: Int) -> CUresult {
    copy(.deviceToDevice, dst: UInt64(dstDevice), src: UInt64(srcDevice), count: ByteCount, stream: nil, synchronous: true)
}
@c @implementation public func cuMemcpyHtoDAsync_v2(_ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int, _ hStream: CUstream?) -> CUresult {
    copy(.hostToDevice, dst: UInt64(dstDevice), src: UInt64(UInt(bitPattern: srcHost)), count: ByteCount, stream: hStream, synchronous: false)
}
@c @implementation public func cuMemcpyHtoDAsync_v2_ptsz(_ dstDevice: CUdeviceptr, _ srcHost: UnsafeRawPointer?, _ ByteCount: Int, _ hStream: CUstream?) -> CUresult {
    copy(.hostToDevice, dst: UInt64(dstDevice), src: UInt64(UInt(bitPattern: srcHost)), count: ByteCount, stream: hStream, synchronous: false)
}
@c @implementation public func cuMemcpyDtoHAsync_v2(_ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int, _ hStream: CUstream?) -> CUresult {
    copy(.deviceToHost, dst: UInt64(UInt(bitPattern: dstHost)), src: UInt64(srcDevice), count: ByteCount, stream: hStream, synchronous: false)
}
@c @implementation public func cuMemcpyDtoHAsync_v2_ptsz(_ dstHost: UnsafeMutableRawPointer?, _ srcDevice: CUdeviceptr, _ ByteCount: Int, _ hStream: CUstream?) -> CUresult {
    copy(.deviceToHost, dst: UInt64(UInt(bitPattern: dstHost)), src: UInt64(srcDevice), count: ByteCount, stream: hStream, synchronous: false)
}
@c @implementation public func cuMemcpyDtoDAsync_v2(_ dstDevice: CUdeviceptr, _ srcDevice: CUdeviceptr, _ ByteCount: Int, _ hStream: CUstream?) -> CUresult {
    copy(.deviceToDevice, dst: UInt64(dstDevice), src: UInt64(srcDevice), count: ByteCount, stream: hStream, synchronous: false)
}
@c @implementation public func cuMemcpyDtoDAsync_v2_ptsz(_ dstDevice: CUdeviceptr, _ srcDevice: CUdeviceptr, _ ByteCount: Int, _ hStream: CUstream?) -> CUresult {
    copy(.deviceToDevice, dst: UInt64(dstDevice), src: UInt64(srcDevice), count: ByteCount, stream: hStream, synchronous: false)
}

@c @implementation public func cuMemsetD8_v2(_ dstDevice: CUdeviceptr, _ uc: UInt8, _ N: Int) -> CUresult {
    memset(dst: UInt64(dstDevice), value: UInt32(uc), elementSize: 1, count: N, stream: nil, synchronous: true)
}
@c @implementation public func cuMemsetD8_v2_ptds(_ dstDevice: CUdeviceptr, _ uc: UInt8, _ N: Int) -> CUresult {
    memset(dst: UInt64(dstDevice), value: UInt32(uc), elementSize: 1, count: N, stream: nil, synchronous: true)
}
@c @implementation public func cuMemsetD32_v2(_ dstDevice: CUdeviceptr, _ ui: UInt32, _ N: Int) -> CUresult {
    memset(dst: UInt64(dstDevice), value: ui, elementSize: 4, count: N, stream: nil, synchronous: true)
}
@c @implementation public func cuMemsetD32_v2_ptds(_ dstDevice: CUdeviceptr, _ ui: UInt32, _ N: Int) -> CUresult {
    memset(dst: UInt64(dstDevice), value: ui, elementSize: 4, count: N, stream: nil, synchronous: true)
}
@c @implementation public func cuMemsetD8Async(_ dstDevice: CUdeviceptr, _ uc: UInt8, _ N: Int, _ hStream: CUstream?) -> CUresult {
    memset(dst: UInt64(dstDevice), value: UInt32(uc), elementSize: 1, count: N, stream: hStream, synchronous: false)
}
@c @implementation public func cuMemsetD8Async_ptsz(_ dstDevice: CUdeviceptr, _ uc: UInt8, _ N: Int, _ hStream: CUstream?) -> CUresult {
    memset(dst: UInt64(dstDevice), value: UInt32(uc), elementSize: 1, count: N, stream: hStream, synchronous: false)
}
@c @implementation public func cuMemsetD32Async(_ dstDevice: CUdeviceptr, _ ui: UInt32, _ N: Int, _ hStream: CUstream?) -> CUresult {
    memset(dst: UInt64(dstDevice), value: ui, elementSize: 4, count: N, stream: hStream, synchronous: false)
}
@c @implementation public func cuMemsetD32Async_ptsz(_ dstDevice: CUdeviceptr, _ ui: UInt32, _ N: Int, _ hStream: CUstream?) -> CUresult {
    memset(dst: UInt64(dstDevice), value: ui, elementSize: 4, count: N, stream: hStream, synchronous: false)
}
