#if canImport(Glibc)
import Glibc
#endif
import CXPUOpenCL
import XPUProtocol

/// A non-blocking read whose command waits for a user event not set yet: the application may set
/// that event after the read returns, from the same thread, so the read cannot wait for its data.
/// Its bytes are copied on the server, in the queue's order, into a scratch buffer of the session
/// (charged to the slice like any buffer); the read's event is that copy's. The data comes to the
/// application's memory at the next call that waits (`clWaitForEvents`, `clFinish`, a blocking
/// read, write or map) or asks an event's status, once the user events it waits for are set.
struct DeferredRead {
    var queue: CLObject
    var scratch: CLObject
    var size: Int
    var destination: UnsafeMutableRawPointer
    var userEvents: Set<UInt64>
}

extension ICDState {
    mutating func deferRead(
        _ queue: CLObject, _ buffer: CLObject, offset: Int, size: Int, into destination: UnsafeMutableRawPointer, after wait: WaitList,
        event: UnsafeMutablePointer<cl_event?>?
    ) throws(ICDError) {
        guard let context = queue.context else { throw ICDError(CL_INVALID_CONTEXT) }
        let reply = try exchange(CLCreateBufferRequest(context: context.remote, flags: UInt64(CL_MEM_READ_WRITE), size: UInt64(size), contents: []))
        guard let scratch = adopt(.buffer, remote: reply.buffer) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        scratch.context = context
        context.references += 1
        scratch.size = size
        do throws(ICDError) {
            try enqueue(queue, CL_COMMAND_READ_BUFFER, event, after: wait) { state, id throws(ICDError) in
                try state.post(
                    CLEnqueueCopyBufferRequest(
                        queue: queue.remote, source: buffer.remote, destination: scratch.remote, sourceOffset: UInt64(offset),
                        destinationOffset: 0, size: UInt64(size), waitList: wait.ids, event: id))
            }
        } catch {
            release(scratch)
            throw error
        }
        queue.references += 1
        deferredReads.append(
            DeferredRead(queue: queue, scratch: scratch, size: size, destination: destination, userEvents: queue.userEvents))
    }

    /// Brings the data of every deferred read whose user events are set to the application (a
    /// read of its scratch buffer, after the copy on the same queue).
    mutating func completeDeferredReads() throws(ICDError) {
        guard !deferredReads.isEmpty else { return }
        var waiting: [DeferredRead] = []
        for deferred in deferredReads {
            guard ICD.userEvents.pending(deferred.userEvents).isEmpty else {
                waiting.append(deferred)
                continue
            }
            try read(deferred.queue, deferred.scratch, offset: 0, size: deferred.size, into: deferred.destination, wait: [], event: 0)
            release(deferred.scratch)
            release(deferred.queue)
        }
        deferredReads = waiting
    }
}
