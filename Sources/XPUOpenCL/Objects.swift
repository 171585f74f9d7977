#if canImport(Glibc)
import Glibc
#endif
import CXPUOpenCL
import CXPUOpenCLICD
import Synchronization
import XPUProtocol

/// What an OpenCL handle of this library stands for. The value is stored in the C object
/// (`xpu_cl_object.kind`).
enum ObjectKind: UInt32 {
    case platform = 1, device, context, queue, buffer, program, kernel, event

    /// The status a call returns for a handle that is not a live object of this kind.
    var invalid: cl_int {
        switch self {
        case .platform: CL_INVALID_PLATFORM
        case .device: CL_INVALID_DEVICE
        case .context: CL_INVALID_CONTEXT
        case .queue: CL_INVALID_COMMAND_QUEUE
        case .buffer: CL_INVALID_MEM_OBJECT
        case .program: CL_INVALID_PROGRAM
        case .kernel: CL_INVALID_KERNEL
        case .event: CL_INVALID_EVENT
        }
    }
}

/// The client's record of one OpenCL object: its handle (the C object the application holds),
/// the server's id, its reference count, and what OpenCL lets the application ask about it that
/// the client answers itself (its parents, creation arguments, mappings).
final class CLObject {
    let kind: ObjectKind
    let handle: UnsafeMutablePointer<xpu_cl_object>
    var references: UInt32 = 1
    var remote: UInt64 { handle.pointee.remote }

    /// The context of a queue, buffer, program, kernel or event; the device of a queue.
    var context: CLObject?
    var device: CLObject?
    /// The program of a kernel; the queue of an event (nil for user events); the buffer a
    /// sub-buffer is part of.
    var program: CLObject?
    var queue: CLObject?
    var buffer: CLObject?
    /// A context's or program's devices.
    var devices: [CLObject] = []
    /// Info answers kept by the client: a platform's and device's (from the server, once), a
    /// context's properties, a queue's properties, a program's source.
    var facts: [cl_uint: [UInt8]] = [:]
    /// A buffer's creation flags, size and host pointer (CL_MEM_USE_HOST_PTR).
    var flags: UInt64 = 0
    var size: Int = 0
    /// A sub-buffer's origin in its buffer.
    var offset: Int = 0
    var hostPointer: UnsafeMutableRawPointer?
    /// A buffer's mapped regions by the pointer handed out.
    var mappings: [UnsafeMutableRawPointer: Mapping] = [:]
    /// A kernel's name and argument count; an event's command type.
    var name = ""
    var arguments: cl_uint = 0
    /// The kernel's arguments that clSetKernelArg has set: an enqueue before every one is set
    /// fails at once with CL_INVALID_KERNEL_ARGS, as on the platform, rather than as a deferred
    /// error at an unrelated later call.
    var argumentsSet: Set<cl_uint> = []
    /// Whether a program's last build allows work-groups that do not divide the global size: an
    /// OpenCL 2.0+ program (-cl-std=CL2.x or CL3.x) without -cl-uniform-work-group-size.
    var nonUniformWorkGroups = false
    var commandType: cl_uint = 0
    /// The user events not set yet (server ids) that an event's command waits for, directly or
    /// through earlier commands; for a queue, those its enqueued commands wait for (a later
    /// command of the queue, or clFinish, waits for them too). Pruned as they are set.
    var userEvents: Set<UInt64> = []

    struct Mapping {
        var offset: Int
        var size: Int
        var writes: Bool
        /// Memory this library allocated for the mapping (nil when it is the host pointer's).
        var allocated: Bool
    }

    init?(kind: ObjectKind, remote: UInt64) {
        guard let handle = xpu_cl_object_new(kind.rawValue, remote) else { return nil }
        self.kind = kind
        self.handle = handle
    }

    var address: UInt { UInt(bitPattern: handle) }
    var opaque: OpaquePointer { OpaquePointer(handle) }
}

/// Everything the library keeps, behind one lock: the session and every live object by handle
/// address (so a stale or foreign handle is recognized without reading through it).
struct ICDState {
    var session: ICDSession?
    /// Why the session could not open (every call then fails the same way, logged once).
    var failure: String?
    var platform: CLObject?
    var objects: [UInt: CLObject] = [:]
    var unsupportedSeen: Set<String> = []
    /// Non-blocking reads held back by user events not set yet (DeferredReads.swift).
    var deferredReads: [DeferredRead] = []

    /// The live object of `kind` that `handle` names, or nil.
    func object(_ handle: OpaquePointer?, _ kind: ObjectKind) -> CLObject? {
        guard let handle, let object = objects[UInt(bitPattern: handle)], object.kind == kind else { return nil }
        return object
    }

    func require(_ handle: OpaquePointer?, _ kind: ObjectKind) throws(ICDError) -> CLObject {
        guard let object = object(handle, kind) else { throw ICDError(kind.invalid) }
        return object
    }

    /// The open session (opening it on first use), or the failure every call returns.
    mutating func connected() throws(ICDError) -> ICDSession {
        if let session { return session }
        if failure != nil { throw ICDError(CL_PLATFORM_NOT_FOUND_KHR) }
        do {
            let opened = try ICDSession.open()
            session = opened
            return opened
        } catch {
            failure = error.description
            ICDLog.log(.error, error.description)
            throw ICDError(CL_PLATFORM_NOT_FOUND_KHR)
        }
    }

    /// A round trip; a lost connection is logged once and ends the session for good.
    mutating func exchange<R: CallRequest>(_ request: R) throws(ICDError) -> R.Reply {
        let session = try connected()
        do {
            return try session.exchange(request)
        } catch {
            lose(error)
            throw error
        }
    }

    mutating func post<R: CallRequest>(_ request: R) throws(ICDError) {
        let session = try connected()
        do {
            try session.post(request)
        } catch {
            lose(error)
            throw error
        }
    }

    private mutating func lose(_ error: ICDError) {
        guard let reason = error.lostReason else { return }
        ICDLog.log(.error, reason)
        failure = reason
        session = nil
    }

    /// Records a new object; nil when memory is short.
    mutating func adopt(_ kind: ObjectKind, remote: UInt64) -> CLObject? {
        guard let object = CLObject(kind: kind, remote: remote) else { return nil }
        objects[object.address] = object
        return object
    }

    /// Drops one reference; at zero the object is forgotten, the server told (its parents
    /// released in turn, as OpenCL keeps parents alive while children live).
    mutating func release(_ object: CLObject) {
        object.references -= 1
        guard object.references == 0 else { return }
        objects[object.address] = nil
        if object.kind != .platform, object.kind != .device {
            // Fire-and-forget: a failure would only be a stale id, which the server ignores.
            try? post(CLReleaseRequest(object: object.remote))
        }
        for pointer in object.mappings.filter({ $0.value.allocated }).keys { free(pointer) }
        xpu_cl_object_free(object.handle)
        for parent in [object.program, object.queue, object.buffer, object.context].compactMap({ $0 }) { release(parent) }
    }
}

enum ICD {
    static let state = Mutex(ICDState())
    static let userEvents = UserEvents()

    /// Runs `body` under the lock and turns its error into the call's status.
    static func call(_ body: (inout ICDState) throws(ICDError) -> Void) -> cl_int {
        state.withLock { state in
            do throws(ICDError) {
                try body(&state)
                return CL_SUCCESS
            } catch {
                return error.status
            }
        }
    }

    /// For calls that block until commands complete: first waits, without the lock, for the user
    /// events those commands depend on (`dependencies`, under the lock; its errors are left to
    /// `body`, which checks everything again), then runs `body` under the lock (UserEvents says why).
    static func blocking(
        dependencies: (borrowing ICDState) throws(ICDError) -> Set<UInt64>, _ body: (inout ICDState) throws(ICDError) -> Void
    ) -> cl_int {
        let pending = state.withLock { state in (try? dependencies(state)) ?? [] }
        userEvents.wait(for: pending)
        return call { state throws(ICDError) in
            try state.completeDeferredReads()
            try body(&state)
        }
    }

    /// For calls that return an object and set `errcode_ret`.
    static func create(
        _ errorCode: UnsafeMutablePointer<cl_int>?, _ body: (inout ICDState) throws(ICDError) -> CLObject
    ) -> OpaquePointer? {
        state.withLock { state in
            do throws(ICDError) {
                let object = try body(&state)
                errorCode?.pointee = CL_SUCCESS
                return object.opaque
            } catch {
                errorCode?.pointee = error.status
                return nil
            }
        }
    }
}
