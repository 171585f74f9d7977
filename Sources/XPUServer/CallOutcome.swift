import CXPUDriver
import XPUProtocol

/// What a replayed call produced: its status and, on success, the encoded reply.
struct CallOutcome {
    var status: CUresult
    var payload: [UInt8]
    /// Bulk data sent after `payload` straight from where it lies (a device-to-host chunk: device
    /// memory or a session buffer, valid until the session handles its next frame).
    var bulk = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Flags for the reply frame (`.compressed` when `bulk` is LZ4 data).
    var flags: FrameFlags = []
    /// A host-to-device chunk with more of its copy to come: the connection reads the next
    /// frame's header without read-ahead, so that chunk's data goes straight to device memory.
    var bulkFollows = false

    static func failure(_ status: CUresult) -> CallOutcome { CallOutcome(status: status, payload: []) }
}

/// What serving a launch frame produced: the launch's own status, and the first failure among
/// the launches a compute turn took from the buffer with it (their frames have no reply; the
/// connection returns it with the next reply).
struct LaunchOutcome {
    var status: CUresult
    var deferredFailure: CUresult?
}

/// A call that stops with a driver status: a failed check (foreign handle, range outside the
/// session's memory) or the driver's own error.
struct CallFailure: Error {
    var status: CUresult
    init(_ status: CUresult) { self.status = status }
}

/// Throws unless the driver reported success.
@inline(__always)
func check(_ status: CUresult) throws(CallFailure) {
    guard status == CUDA_SUCCESS else { throw CallFailure(status) }
}

/// Runs a call body and encodes its reply, or reports the status it stopped with.
func perform<Reply: WireMessage>(_ body: () throws(CallFailure) -> Reply) -> CallOutcome {
    do {
        return CallOutcome(status: CUDA_SUCCESS, payload: try body().encoded)
    } catch {
        return .failure(error.status)
    }
}

/// Room for a string the driver writes: what the client asked for, within the protocol's limit.
func outputCapacity(_ requested: Int32) -> Int {
    max(1, min(Int(requested), ProtocolLimits.maximumStringBytes))
}

/// The NUL-terminated text in a C character buffer the driver filled.
func string(fromCBuffer buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
