import CXPUDriver
import Synchronization

/// An event: a marker recorded into a stream; it completes when the stream reaches it.
final class Event: Sendable {
    let handle: UInt
    let contextHandle: UInt
    let timing: Bool
    /// The completion of the latest record (nil: never recorded).
    let recorded = Mutex<Completion?>(nil)

    init(handle: UInt, contextHandle: UInt, timing: Bool) {
        self.handle = handle
        self.contextHandle = contextHandle
        self.timing = timing
    }
}

func lookupEvent(_ hEvent: CUevent?) throws(Failure) -> Event {
    let handle = UInt(handle: hEvent)
    let event = try driver.withLock { registry throws(Failure) -> Event? in
        guard registry.initialized else { throw Failure(CUDA_ERROR_NOT_INITIALIZED) }
        return registry.events[handle]
    }
    guard let event else { throw Failure(CUDA_ERROR_INVALID_HANDLE) }
    return event
}

@c @implementation public func cuEventCreate(_ phEvent: UnsafeMutablePointer<CUevent?>?, _ Flags: UInt32) -> CUresult {
    api { () throws(Failure) in
        let context = try currentContext()
        let known = CU_EVENT_BLOCKING_SYNC.rawValue | CU_EVENT_DISABLE_TIMING.rawValue | CU_EVENT_INTERPROCESS.rawValue
        guard let phEvent, Flags & ~known == 0 else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        // Interprocess events must disable timing.
        if Flags & CU_EVENT_INTERPROCESS.rawValue != 0, Flags & CU_EVENT_DISABLE_TIMING.rawValue == 0 {
            throw Failure(CUDA_ERROR_INVALID_VALUE)
        }
        let event = driver.withLock { registry in
            let e = Event(handle: registry.mintHandle(), contextHandle: context.handle, timing: Flags & CU_EVENT_DISABLE_TIMING.rawValue == 0)
            registry.events[e.handle] = e
            return e
        }
        context.members.withLock { $0.events.append(event.handle) }
        phEvent.pointee = event.handle.opaque
    }
}

func eventRecord(_ hEvent: CUevent?, _ hStream: CUstream?) -> CUresult {
    api { () throws(Failure) in
        let event = try lookupEvent(hEvent)
        let (context, stream) = try resolveStream(hStream)
        guard context.handle == event.contextHandle else { throw Failure(CUDA_ERROR_INVALID_HANDLE) }
        // The event's time is when the stream reaches it (its completion's timestamp).
        let completion = context.enqueue(on: stream) {}
        event.recorded.withLock { $0 = completion }
    }
}

@c @implementation public func cuEventRecord(_ hEvent: CUevent?, _ hStream: CUstream?) -> CUresult { eventRecord(hEvent, hStream) }
@c @implementation public func cuEventRecord_ptsz(_ hEvent: CUevent?, _ hStream: CUstream?) -> CUresult { eventRecord(hEvent, hStream) }

@c @implementation public func cuEventSynchronize(_ hEvent: CUevent?) -> CUresult {
    synchronized(api { () throws(Failure) in
        let event = try lookupEvent(hEvent)
        event.recorded.withLock { $0 }?.wait()
        DevicePrintfOutput.flush(context: event.contextHandle)
        if let context = driver.withLock({ $0.contexts[event.contextHandle] }) { try context.sticky.check() }
    })
}

@c @implementation public func cuEventQuery(_ hEvent: CUevent?) -> CUresult {
    api { () throws(Failure) in
        let event = try lookupEvent(hEvent)
        if let context = driver.withLock({ $0.contexts[event.contextHandle] }) { try context.sticky.check() }
        guard event.recorded.withLock({ $0 })?.isDone ?? true else { throw Failure(CUDA_ERROR_NOT_READY) }
    }
}

func eventElapsedTime(_ pMilliseconds: UnsafeMutablePointer<Float>?, _ hStart: CUevent?, _ hEnd: CUevent?) -> CUresult {
    api { () throws(Failure) in
        guard let pMilliseconds else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let start = try lookupEvent(hStart)
        let end = try lookupEvent(hEnd)
        guard start.timing, end.timing else { throw Failure(CUDA_ERROR_INVALID_HANDLE) }
        guard let a = start.recorded.withLock({ $0 }), let b = end.recorded.withLock({ $0 }) else {
            throw Failure(CUDA_ERROR_INVALID_HANDLE)
        }
        guard a.isDone, b.isDone else { throw Failure(CUDA_ERROR_NOT_READY) }
        pMilliseconds.pointee = Float(Double(Int64(bitPattern: b.timestamp &- a.timestamp)) / 1e6)
    }
}

@c @implementation public func cuEventElapsedTime(_ pMilliseconds: UnsafeMutablePointer<Float>?, _ hStart: CUevent?, _ hEnd: CUevent?) -> CUresult {
    eventElapsedTime(pMilliseconds, hStart, hEnd)
}

@c @implementation public func cuEventElapsedTime_v2(_ pMilliseconds: UnsafeMutablePointer<Float>?, _ hStart: CUevent?, _ hEnd: CUevent?) -> CUresult {
    eventElapsedTime(pMilliseconds, hStart, hEnd)
}

@c @implementation public func cuEventDestroy_v2(_ hEvent: CUevent?) -> CUresult {
    api { () throws(Failure) in
        try initializedRegistry()
        let handle = UInt(handle: hEvent)
        guard let event = driver.withLock({ $0.events.removeValue(forKey: handle) }) else { throw Failure(CUDA_ERROR_INVALID_HANDLE) }
        if let context = driver.withLock({ $0.contexts[event.contextHandle] }) {
            context.members.withLock { $0.events.removeAll { $0 == handle } }
        }
    }
}
