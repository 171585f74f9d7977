#if canImport(Glibc)
import Glibc
#endif
import CXPUOpenCL
import Logging
import XPUAdmission
import XPUProtocol
import XPUTransport

/// One OpenCL client's session: the objects it created on the platform, named by session-local
/// ids, its memory charged against its slice, and the replay of its calls (proto/opencl.api).
/// Used by its connection thread only, so it needs no lock.
///
/// An id the session does not own fails with the CL_INVALID_* code of the expected kind without
/// reaching the platform. A request sent fire-and-forget that fails latches its status, returned
/// instead of the next success (as CUDA sessions do). Everything the session holds is released
/// when it ends, however it ends.
///
/// A session with a compute share (`compute=`) has its kernels take turns on the device through
/// the server's `ComputeScheduler`, as CUDA sessions do (OpenCLSession+Turns.swift).
final class OpenCLSession {
    let id: UInt64
    let platform: OpenCLPlatform
    let usage: SessionUsage
    let logger: Logger
    /// The server's scheduler, for a session with a compute share (registered by its
    /// connection); nil for one without, whose kernels run as they come.
    let turns: ComputeScheduler?
    var library: xpu_opencl_library { platform.library }

    enum Kind: String {
        case context, queue, buffer, program, kernel, event

        var invalid: cl_int {
            switch self {
            case .context: CL_INVALID_CONTEXT
            case .queue: CL_INVALID_COMMAND_QUEUE
            case .buffer: CL_INVALID_MEM_OBJECT
            case .program: CL_INVALID_PROGRAM
            case .kernel: CL_INVALID_KERNEL
            case .event: CL_INVALID_EVENT
            }
        }
    }

    struct Object {
        var kind: Kind
        var pointer: OpaquePointer
        /// The context a queue, buffer or program was made in (its id).
        var context: UInt64 = 0
        /// Bytes a buffer is charged against the slice.
        var charge: UInt64 = 0
    }

    var objects: [UInt64: Object] = [:]
    private var nextID: UInt64
    /// A queue per context for writes that belong to no queue (a buffer's initial contents).
    var uploadQueues: [UInt64: OpaquePointer] = [:]
    var chargedBytes: UInt64 = 0
    var latched: cl_int = CL_SUCCESS
    /// The user events this session made that were not complete when last looked at, each held
    /// by a reference of the session's own (OpenCLSession+Turns.swift).
    var pendingUserEvents: [OpaquePointer] = []

    init(id: UInt64, platform: OpenCLPlatform, usage: SessionUsage, logger: Logger, turns: ComputeScheduler? = nil) {
        self.id = id
        self.platform = platform
        self.usage = usage
        self.logger = logger
        self.turns = turns
        nextID = (id & 0xFF_FFFF) << 32 | 0x1000
    }

    struct Failure: Error {
        var status: cl_int
        init(_ status: cl_int) { self.status = status }
    }

    func check(_ status: cl_int) throws(Failure) {
        guard status == CL_SUCCESS else { throw Failure(status) }
    }

    // MARK: Objects

    func adopt(_ kind: Kind, _ pointer: OpaquePointer?, context: UInt64 = 0, charge: UInt64 = 0) throws(Failure) -> UInt64 {
        guard let pointer else { throw Failure(CL_OUT_OF_HOST_MEMORY) }
        nextID += 1
        objects[nextID] = Object(kind: kind, pointer: pointer, context: context, charge: charge)
        return nextID
    }

    func object(_ id: UInt64, _ kind: Kind) throws(Failure) -> Object {
        guard let object = objects[id], object.kind == kind else { throw Failure(kind.invalid) }
        return object
    }

    func pointer(_ id: UInt64, _ kind: Kind) throws(Failure) -> OpaquePointer {
        try object(id, kind).pointer
    }

    /// A device the client names by its id (its index in the platform's list, plus one).
    func device(_ id: UInt64) throws(Failure) -> cl_device_id {
        guard id >= 1, id <= UInt64(platform.devices.count) else { throw Failure(CL_INVALID_DEVICE) }
        return platform.devices[Int(id - 1)]
    }

    /// Checks the id a client chose for a new event: the top bit set, this session's range, unused.
    func checkNewEvent(_ id: UInt64) throws(Failure) {
        guard id == 0 || (id >> 63 == 1 && (id >> 32) & 0xFF_FFFF == self.id & 0xFF_FFFF && objects[id] == nil)
        else { throw Failure(CL_INVALID_EVENT) }
    }

    /// Runs an enqueue that may create an event under the client's id.
    func enqueue(event id: UInt64, _ body: (UnsafeMutablePointer<cl_event?>?) -> cl_int) throws(Failure) {
        try checkNewEvent(id)
        guard id != 0 else { return try check(body(nil)) }
        var event: cl_event?
        try check(body(&event))
        guard let event else { return }
        objects[id] = Object(kind: .event, pointer: event)
    }

    func waitList(_ ids: [UInt64]) throws(Failure) -> [cl_event?] {
        var events: [cl_event?] = []
        for id in ids {
            guard let object = objects[id], object.kind == .event else { throw Failure(CL_INVALID_EVENT_WAIT_LIST) }
            events.append(object.pointer)
        }
        return events
    }

    /// Releases one object on the platform (a queue is finished first, so its commands complete).
    func releasePlatformObject(_ object: Object) {
        switch object.kind {
        case .context: _ = library.clReleaseContext!(object.pointer)
        case .queue:
            _ = library.clFinish!(object.pointer)
            _ = library.clReleaseCommandQueue!(object.pointer)
        case .buffer: _ = library.clReleaseMemObject!(object.pointer)
        case .program: _ = library.clReleaseProgram!(object.pointer)
        case .kernel: _ = library.clReleaseKernel!(object.pointer)
        case .event: _ = library.clReleaseEvent!(object.pointer)
        }
    }

    func forget(_ id: UInt64) throws(Failure) {
        guard let object = objects.removeValue(forKey: id) else { throw Failure(CL_INVALID_VALUE) }
        if object.kind == .buffer {
            chargedBytes -= object.charge
            usage.memoryBytes.store(chargedBytes, ordering: .relaxed)
        }
        if object.kind == .context, let queue = uploadQueues.removeValue(forKey: id) {
            _ = library.clFinish!(queue)
            _ = library.clReleaseCommandQueue!(queue)
        }
        releasePlatformObject(object)
    }

    /// Everything the session still holds, children before parents.
    func releaseEverything() {
        for queue in objects.values where queue.kind == .queue { _ = library.clFinish!(queue.pointer) }
        for queue in uploadQueues.values { _ = library.clFinish!(queue) }
        for kind in [Kind.event, .kernel, .program, .buffer, .queue] {
            for (id, object) in objects where object.kind == kind {
                releasePlatformObject(object)
                objects[id] = nil
            }
        }
        for queue in uploadQueues.values { _ = library.clReleaseCommandQueue!(queue) }
        uploadQueues = [:]
        for (_, object) in objects { releasePlatformObject(object) }
        objects = [:]
        for event in pendingUserEvents { _ = library.clReleaseEvent!(event) }
        pendingUserEvents = []
        chargedBytes = 0
        usage.memoryBytes.store(0, ordering: .relaxed)
    }

    // MARK: Serving

    /// Serves frames until the connection ends (the error says how).
    func serve(_ channel: FrameChannel) throws(FrameError) {
        while true {
            let (header, payload) = try channel.receive()
            let outcome: (cl_int, [UInt8])
            if let call = CallID(rawValue: header.call) {
                do throws(Failure) {
                    outcome = (CL_SUCCESS, try handle(call, payload))
                } catch {
                    outcome = (error.status, [])
                }
            } else {
                outcome = (CL_INVALID_OPERATION, [])
            }
            if header.flags.contains(.noReply) {
                if outcome.0 != CL_SUCCESS && latched == CL_SUCCESS { latched = outcome.0 }
                continue
            }
            var status = outcome.0
            var reply = outcome.1
            if status == CL_SUCCESS && latched != CL_SUCCESS {
                (status, reply, latched) = (latched, [], CL_SUCCESS)
            }
            if status != CL_SUCCESS { reply = [] }
            do {
                try channel.send(
                    FrameHeader(length: 0, call: header.call, flags: .reply, sequence: header.sequence, status: UInt32(bitPattern: status)),
                    payload: reply)
            } catch {
                throw .transport(error)
            }
        }
    }

    func decode<R: CallRequest>(_ type: R.Type, _ payload: [UInt8]) throws(Failure) -> R {
        do {
            return try R(decoding: payload)
        } catch {
            logger.warning("malformed OpenCL request", metadata: ["call": "\(R.call)", "reason": "\(error)"])
            throw Failure(CL_INVALID_VALUE)
        }
    }
}
