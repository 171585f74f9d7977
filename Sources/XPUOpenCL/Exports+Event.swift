#if canImport(Glibc)
import Glibc
#endif
import CXPUOpenCL
import XPUProtocol

// Events: named by the client (so an enqueue that returns one needs no reply), created by the
// server when the command arrives. Their status and profiling times are asked of the server.

@c @implementation public func clWaitForEvents(_ num_events: cl_uint, _ event_list: UnsafePointer<cl_event?>?) -> cl_int {
    ICD.blocking { state throws(ICDError) in
        try state.waitList(num_events, event_list).userEvents
    } _: { state throws(ICDError) in
        guard num_events > 0, event_list != nil else { throw ICDError(CL_INVALID_VALUE) }
        var ids: [UInt64] = []
        for handle in handleList(num_events, event_list) { ids.append(try state.require(handle, .event).remote) }
        _ = try state.exchange(CLWaitForEventsRequest(events: ids))
    }
}

@c @implementation public func clGetEventInfo(
    _ event: cl_event?, _ param_name: cl_event_info, _ param_value_size: Int, _ param_value: UnsafeMutableRawPointer?,
    _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let event = try state.require(event, .event)
        let bytes: [UInt8]
        switch Int32(param_name) {
        case CL_EVENT_COMMAND_QUEUE: bytes = Info.bytes(of: UInt(bitPattern: event.queue?.handle))
        case CL_EVENT_CONTEXT: bytes = Info.handles([event.context!])
        case CL_EVENT_COMMAND_TYPE: bytes = Info.bytes(of: event.commandType)
        case CL_EVENT_REFERENCE_COUNT: bytes = Info.bytes(of: event.references)
        default:
            // A deferred read's data is in place before its event may say it is complete.
            if Int32(param_name) == CL_EVENT_COMMAND_EXECUTION_STATUS { try state.completeDeferredReads() }
            bytes = try Info.remote(&state, .event, event, param_name)
        }
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

@c @implementation public func clGetEventProfilingInfo(
    _ event: cl_event?, _ param_name: cl_profiling_info, _ param_value_size: Int, _ param_value: UnsafeMutableRawPointer?,
    _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let event = try state.require(event, .event)
        let bytes = try Info.remote(&state, .eventProfiling, event, param_name)
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

@c @implementation public func clRetainEvent(_ event: cl_event?) -> cl_int {
    ICD.call { state throws(ICDError) in try state.require(event, .event).references += 1 }
}

@c @implementation public func clReleaseEvent(_ event: cl_event?) -> cl_int {
    ICD.call { state throws(ICDError) in state.release(try state.require(event, .event)) }
}

@c @implementation public func clCreateUserEvent(_ context: cl_context?, _ errcode_ret: UnsafeMutablePointer<cl_int>?) -> cl_event? {
    ICD.create(errcode_ret) { state throws(ICDError) in
        let context = try state.require(context, .context)
        let id = try state.connected().mintEvent()
        _ = try state.exchange(CLCreateUserEventRequest(context: context.remote, event: id))
        guard let event = state.adopt(.event, remote: id) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        event.context = context
        context.references += 1
        event.commandType = cl_uint(CL_COMMAND_USER)
        event.userEvents = [id]
        ICD.userEvents.created(id)
        return event
    }
}

@c @implementation public func clSetUserEventStatus(_ event: cl_event?, _ execution_status: cl_int) -> cl_int {
    ICD.call { state throws(ICDError) in
        let event = try state.require(event, .event)
        guard event.commandType == cl_uint(CL_COMMAND_USER) else { throw ICDError(CL_INVALID_EVENT) }
        _ = try state.exchange(CLSetUserEventStatusRequest(event: event.remote, status: execution_status))
        ICD.userEvents.set(event.remote)
    }
}

func marker(
    _ command_queue: cl_command_queue?, barrier: Bool, _ count: cl_uint, _ list: UnsafePointer<cl_event?>?,
    _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let queue = try state.require(command_queue, .queue)
        let wait = try state.waitList(count, list)
        try state.enqueue(queue, barrier ? CL_COMMAND_BARRIER : CL_COMMAND_MARKER, event, after: wait) { state, id throws(ICDError) in
            try state.post(CLEnqueueMarkerRequest(queue: queue.remote, barrier: barrier ? 1 : 0, waitList: wait.ids, event: id))
        }
    }
}

@c @implementation public func clEnqueueMarkerWithWaitList(
    _ command_queue: cl_command_queue?, _ num_events_in_wait_list: cl_uint, _ event_wait_list: UnsafePointer<cl_event?>?,
    _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    marker(command_queue, barrier: false, num_events_in_wait_list, event_wait_list, event)
}

@c @implementation public func clEnqueueBarrierWithWaitList(
    _ command_queue: cl_command_queue?, _ num_events_in_wait_list: cl_uint, _ event_wait_list: UnsafePointer<cl_event?>?,
    _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    marker(command_queue, barrier: true, num_events_in_wait_list, event_wait_list, event)
}

/// Each callback runs on a thread of its own once the event's command has ended (a callback for
/// CL_SUBMITTED or CL_RUNNING too: an ended command has passed both), with the status OpenCL
/// gives it: the state it was registered for, or the error that ended the command. The event
/// is retained until then.
@c @implementation public func clSetEventCallback(
    _ event: cl_event?, _ command_exec_callback_type: cl_int,
    _ pfn_notify: (@convention(c) (cl_event?, cl_int, UnsafeMutableRawPointer?) -> Void)?, _ user_data: UnsafeMutableRawPointer?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let object = try state.require(event, .event)
        guard let pfn_notify, [CL_SUBMITTED, CL_RUNNING, CL_COMPLETE].contains(command_exec_callback_type) else {
            throw ICDError(CL_INVALID_VALUE)
        }
        object.references += 1
        let callback = EventCallback(event: object.opaque, type: command_exec_callback_type, notify: pfn_notify, userData: user_data)
        guard callback.start() else {
            object.references -= 1
            throw ICDError(CL_OUT_OF_HOST_MEMORY)
        }
    }
}

/// One clSetEventCallback registration and the thread that waits for its event.
final class EventCallback {
    let event: cl_event
    let type: cl_int
    let notify: @convention(c) (cl_event?, cl_int, UnsafeMutableRawPointer?) -> Void
    let userData: UnsafeMutableRawPointer?

    init(
        event: cl_event, type: cl_int, notify: @escaping @convention(c) (cl_event?, cl_int, UnsafeMutableRawPointer?) -> Void,
        userData: UnsafeMutableRawPointer?
    ) {
        self.event = event
        self.type = type
        self.notify = notify
        self.userData = userData
    }

    /// Starts the waiting thread; false when none could be made.
    func start() -> Bool {
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { argument in
                Unmanaged<EventCallback>.fromOpaque(argument!).takeRetainedValue().run()
                return nil
            }, Unmanaged.passRetained(self).toOpaque())
        guard started == 0 else {
            Unmanaged.passUnretained(self).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    private func run() {
        // The waits of the API itself: the user events first (without the lock), then the server.
        var waited: cl_event? = event
        let waitStatus = clWaitForEvents(1, &waited)
        var status: cl_int = CL_COMPLETE
        let infoStatus = clGetEventInfo(event, cl_event_info(CL_EVENT_COMMAND_EXECUTION_STATUS), MemoryLayout<cl_int>.size, &status, nil)
        if infoStatus != CL_SUCCESS { status = waitStatus == CL_SUCCESS ? infoStatus : waitStatus }
        notify(event, status < 0 ? status : type, userData)
        _ = clReleaseEvent(event)
    }
}
