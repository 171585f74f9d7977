#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPUShimSupport
import XPUProtocol
import XPUTransport

/// What the exports (generated and hand-written) share: one round trip, handle conversion, and
/// the client-side effects of calls that change the shim's own state.
enum Shim {
    /// Sends `request`, waits for its reply, and on success hands the decoded reply to `onSuccess`
    /// (outside the lane lock, so it may take the lock itself).
    static func perform<R: CallRequest>(_ request: R, _ onSuccess: (R.Reply) -> Void) -> CUresult {
        let outcome: (CUresult, [UInt8])
        do {
            outcome = try Lane.shared.locked { lane throws(ShimFailure) in
                _ = try lane.channel()
                return try lane.exchange([(R.call, request.encoded, false)])[0]
            }
        } catch {
            return error.status
        }
        guard outcome.0 == CUDA_SUCCESS else { return outcome.0 }
        do {
            onSuccess(try R.Reply(decoding: outcome.1))
            return CUDA_SUCCESS
        } catch {
            return Lane.shared.locked { lane in ShimFailure.lost(lane, "malformed reply to \(R.call): \(error)").status }
        }
    }

    /// A handle as it travels: the session-local id the server minted (0 for NULL).
    static func wire(_ handle: OpaquePointer?) -> UInt64 {
        UInt64(UInt(bitPattern: handle))
    }

    static func store(uuid: [UInt8], to destination: UnsafeMutablePointer<CUuuid>) {
        withUnsafeMutableBytes(of: &destination.pointee) { bytes in
            for index in 0..<min(bytes.count, uuid.count) { bytes[index] = uuid[index] }
        }
    }

    /// Copies a string into a C buffer of `capacity` bytes, always NUL-terminated (as the driver).
    static func store(string: String, to destination: UnsafeMutablePointer<CChar>, capacity: Int32) {
        guard capacity > 0 else { return }
        let utf8 = Array(string.utf8.prefix(Int(capacity) - 1))
        for (index, byte) in utf8.enumerated() { destination[index] = CChar(bitPattern: byte) }
        destination[utf8.count] = 0
    }

    // Hooks of remote calls that also change client-side state (`hook` in proto/cuda-driver.api).

    /// cuCtxCreate makes the new context current on the calling thread.
    static func completedCuCtxCreate_v2(_ request: CuCtxCreate_v2Request, _ reply: CuCtxCreate_v2Reply) {
        Lane.shared.locked { lane in lane.liveContexts.insert(reply.pctx) }
        _ = xpu_context_push(reply.pctx)
    }

    static func completedCuCtxDestroy_v2(_ request: CuCtxDestroy_v2Request, _ reply: CuCtxDestroy_v2Reply) {
        Lane.shared.locked { lane in lane.liveContexts.remove(request.ctx) }
        xpu_context_forget(request.ctx)
    }

    static func completedCuModuleUnload(_ request: CuModuleUnloadRequest, _ reply: CuModuleUnloadReply) {
        Lane.shared.locked { lane in
            for function in lane.moduleKernels.removeValue(forKey: request.hmod) ?? [] {
                if let kernel = lane.kernels.removeValue(forKey: function) { free(kernel.name) }
            }
        }
    }
}

/// Every driver entry point the shim does not serve yet calls this (generated unsupported.c).
/// It answers CUDA_ERROR_NOT_SUPPORTED and logs each name once.
@c(xpu_shim_unsupported) public func xpuShimUnsupported(_ name: UnsafePointer<CChar>?) -> Int32 {
    let symbol = name.map { String(cString: $0) } ?? "?"
    let first = Lane.shared.locked { _ in UnsupportedCalls.seen.insert(symbol).inserted }
    if first { ShimLog.log(.warn, "\(symbol) is not supported by xpu-remote yet: returning CUDA_ERROR_NOT_SUPPORTED") }
    return Int32(CUDA_ERROR_NOT_SUPPORTED.rawValue)
}

enum UnsupportedCalls {
    /// Guarded by the lane lock.
    nonisolated(unsafe) static var seen = Set<String>()
}
