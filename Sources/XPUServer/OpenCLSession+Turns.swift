import CXPUOpenCL

/// Kernels of an OpenCL session with a compute share take turns on the device through the
/// server's `ComputeScheduler`, the one CUDA sessions use, so that shares hold across both APIs'
/// tenants of a device. A kernel runs in its session's turn to completion and is charged its
/// device time as the platform's event profiling measures it (CL_PROFILING_COMMAND_START to
/// CL_PROFILING_COMMAND_END: the scheduled session's queues are made with
/// CL_QUEUE_PROFILING_ENABLE); when the platform gives no profile, the turn's wall time.
///
/// Waiting in the turn for a kernel that waits for a user event would wait for ever: only a later
/// call of the same client (clSetUserEventStatus) completes it, and the session serves one call
/// at a time. So while the session holds a user event that is not complete, its kernels are
/// enqueued as they come, outside the schedule and uncharged, as OpenCL's semantics require.
extension OpenCLSession {
    /// Enqueues a kernel (`body`) in the session's turn, waits for it to complete and charges its
    /// profiled device time; the client's event, if it asked for one, is the kernel's.
    func enqueueInTurn(_ turns: ComputeScheduler, event id: UInt64, _ body: (UnsafeMutablePointer<cl_event?>?) -> cl_int) throws(Failure) {
        try checkNewEvent(id)
        let status = turns.run(self.id) { () -> (cl_int, UInt64?) in
            var event: cl_event?
            let status = body(&event)
            guard status == CL_SUCCESS, let event else { return (status, nil) }
            // A kernel that fails completes with an error status: the client learns of it from
            // its own event or clFinish, as it would from a kernel it had not waited for.
            var events: [cl_event?] = [event]
            _ = library.clWaitForEvents!(1, &events)
            let measured = deviceNanoseconds(of: event)
            if id != 0 {
                objects[id] = Object(kind: .event, pointer: event)
            } else {
                _ = library.clReleaseEvent!(event)
            }
            return (status, measured)
        }
        try check(status)
    }

    /// The profiled device time of a completed command, or nil when the platform has none.
    func deviceNanoseconds(of event: cl_event) -> UInt64? {
        var start: cl_ulong = 0
        var end: cl_ulong = 0
        let size = MemoryLayout<cl_ulong>.size
        guard library.clGetEventProfilingInfo!(event, cl_profiling_info(CL_PROFILING_COMMAND_START), size, &start, nil) == CL_SUCCESS,
            library.clGetEventProfilingInfo!(event, cl_profiling_info(CL_PROFILING_COMMAND_END), size, &end, nil) == CL_SUCCESS,
            end > start
        else { return nil }
        return end - start
    }

    /// Whether a user event this session made is not complete yet (set to CL_COMPLETE or to an
    /// error status); the ones that are are let go.
    func holdsPendingUserEvent() -> Bool {
        pendingUserEvents.removeAll { event in
            var status: cl_int = CL_COMPLETE
            let asked = library.clGetEventInfo!(
                event, cl_event_info(CL_EVENT_COMMAND_EXECUTION_STATUS), MemoryLayout<cl_int>.size, &status, nil)
            guard asked != CL_SUCCESS || status <= CL_COMPLETE else { return false }
            _ = library.clReleaseEvent!(event)
            return true
        }
        return !pendingUserEvents.isEmpty
    }
}
