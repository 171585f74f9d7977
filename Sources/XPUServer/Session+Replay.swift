import CXPUDriver
import XPUProtocol
import XPUTransport

/// The session's side of serving a frame: the connection hands it each request, the session
/// replays it and returns the outcome; the connection then replies, or latches a
/// fire-and-forget call's failure.
extension Session {
    /// Gets the session ready for a request of `call` in `context` (the frame header's): finishes
    /// uploads left running unless more chunks of a copy come, and makes the context current.
    @inline(__always)
    func begin(_ call: CallID, context: UInt64) {
        // Uploads left running while more chunks came finish before anything else is served.
        if call != .memcpyHtoD && uploads.hasPending { uploads.drain() }
        selectContext(context)
    }

    /// Replays a call whose request arrived whole (`flags` are its frame's) and returns what it
    /// produced. A slice answers some calls itself (Session+Slice.swift); the generated dispatch
    /// replays the calls proto/cuda-driver.api describes, and the calls marked `custom` there are
    /// written by hand (Session+Custom.swift).
    func replay(_ call: CallID, flags: FrameFlags, _ payload: [UInt8]) throws(ProtocolError) -> CallOutcome {
        var reader = WireReader(payload)
        let outcome: CallOutcome
        if let sliced = try dispatchSliced(call, reader) {
            outcome = sliced
        } else if let generated = try dispatchRemote(call, &reader) {
            outcome = generated
        } else {
            outcome = try dispatchCustom(call, flags: flags, &reader)
        }
        // After these the driver's current context on this thread is no longer the one the
        // session last selected.
        if call == .cuCtxCreate_v2 || call == .cuCtxDestroy_v2 { currentContext = .max }
        return outcome
    }

    /// Records how long a reply's bulk data took to send, which decides whether compressing the
    /// next device-to-host chunks pays.
    func replied(bulkBytes: Int, nanoseconds: UInt64, delivery: @autoclosure () -> DeliveryRate?) {
        downloadGovernor.recordSend(bytes: bulkBytes, nanoseconds: nanoseconds, delivery: delivery())
    }
}
