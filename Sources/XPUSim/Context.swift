import CXPUDriver
import CXPURuntimeSupport
import Synchronization

/// A context: streams, events, modules and allocations of one device, plus a sticky fault.
final class Context: @unchecked Sendable {
    let handle: UInt
    let device: Device
    let isPrimary: Bool
    let flags: UInt32
    let sticky = StickyError()
    let legacy: Stream

    struct Members {
        var streams: [Stream] = []
        var events: [UInt] = []
        var modules: [UInt] = []
    }
    let members = Mutex(Members())

    init(handle: UInt, device: Device, isPrimary: Bool, flags: UInt32) {
        self.handle = handle
        self.device = device
        self.isPrimary = isPrimary
        self.flags = flags
        self.legacy = Stream(handle: 0, blocking: true, contextHandle: handle, device: device, sticky: sticky)
    }

    /// Enqueues work on a stream of this context with CUDA's legacy-stream ordering: work on the
    /// legacy stream waits for all earlier work on blocking streams, and work on a blocking stream
    /// waits for earlier legacy-stream work.
    func enqueue(on stream: Stream, _ body: @escaping () -> Void) -> Completion {
        let completion = Completion()
        enqueue(on: stream, .run(body), completion: completion)
        return completion
    }

    /// Enqueues a task with the same ordering; `completion` is signalled when it is done (nil
    /// when nobody waits for this task alone, as for most launches).
    @inline(__always)
    func enqueue(on stream: Stream, _ task: Stream.Task, completion: Completion?) {
        members.withLock { members in
            stream.enqueue(after: dependencies(of: stream, members), task, completion: completion)
        }
    }

    /// What work enqueued on `stream` now must wait for (members lock held): only unfinished
    /// work, and most launches have none (nil, no array).
    private func dependencies(of stream: Stream, _ members: borrowing Members) -> [Completion]? {
        var dependencies: [Completion]?
        func add(_ tail: Completion) {
            if tail.isDone { return }
            if dependencies == nil { dependencies = [tail] } else { dependencies!.append(tail) }
        }
        if stream === legacy {
            for s in members.streams where s.blocking { add(s.tail) }
        } else if stream.blocking {
            add(legacy.tail)
        }
        return dependencies
    }

    /// Waits for all work of every stream of this context.
    func synchronize() {
        let streams = members.withLock { $0.streams }
        legacy.tail.wait()
        for s in streams { s.tail.wait() }
    }

    /// Ends the context: waits for its work, then releases streams, events, modules and memory.
    func teardown() {
        synchronize()
        DevicePrintfOutput.discard(context: handle)
        let m = members.withLock { m in
            let copy = m
            m = Members()
            return copy
        }
        for s in m.streams { s.shutdown() }
        legacy.shutdown()
        driver.withLock { registry in
            for s in m.streams { registry.streams[s.handle] = nil }
            for e in m.events { registry.events[e] = nil }
            for h in m.modules {
                if let module = registry.modules.removeValue(forKey: h) {
                    for f in module.functions { registry.functions[f.handle] = nil }
                }
            }
            for (address, host) in registry.hostAllocations where host.context == handle { registry.hostAllocations[address] = nil }
        }
        device.memory.freeAll(context: handle)
    }
}

func createContext(_ pctx: UnsafeMutablePointer<CUcontext?>?, _ flags: UInt32, _ dev: CUdevice) -> CUresult {
    api { () throws(Failure) in
        guard let pctx else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        guard flags & ~CU_CTX_FLAGS_MASK.rawValue == 0 else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let context = try driver.withLock { registry throws(Failure) -> Context in
            let device = try registry.device(dev)
            let context = Context(handle: registry.mintHandle(), device: device, isPrimary: false, flags: flags)
            registry.contexts[context.handle] = context
            return context
        }
        ContextStack.push(context.handle)
        pctx.pointee = context.handle.opaque
    }
}

@c @implementation public func cuCtxCreate_v2(_ pctx: UnsafeMutablePointer<CUcontext?>?, _ flags: UInt32, _ dev: CUdevice) -> CUresult {
    createContext(pctx, flags, dev)
}

@c @implementation public func cuCtxCreate_v4(_ pctx: UnsafeMutablePointer<CUcontext?>?, _ ctxCreateParams: UnsafeMutablePointer<CUctxCreateParams>?, _ flags: UInt32, _ dev: CUdevice) -> CUresult {
    if let p = ctxCreateParams?.pointee {
        if p.execAffinityParams != nil || p.numExecAffinityParams != 0 || p.cigParams != nil { return CUDA_ERROR_NOT_SUPPORTED }
    }
    return createContext(pctx, flags, dev)
}

@c @implementation public func cuCtxDestroy_v2(_ ctx: CUcontext?) -> CUresult {
    api { () throws(Failure) in
        let handle = UInt(handle: ctx)
        try driver.withLock { registry throws(Failure) in
            guard registry.initialized else { throw Failure(CUDA_ERROR_NOT_INITIALIZED) }
            guard registry.contexts[handle].map({ !$0.isPrimary }) == true else { throw Failure(CUDA_ERROR_INVALID_CONTEXT) }
        }
        // The runtime's context-local storage destructors run while the context still works.
        xpu_runtime_context_destroying(ctx)
        let context = try driver.withLock { registry throws(Failure) -> Context in
            guard let context = registry.contexts[handle], !context.isPrimary else { throw Failure(CUDA_ERROR_INVALID_CONTEXT) }
            registry.contexts[handle] = nil
            return context
        }
        ContextStack.remove(handle)
        context.teardown()
    }
}

@c @implementation public func cuCtxPushCurrent_v2(_ ctx: CUcontext?) -> CUresult {
    api { () throws(Failure) in
        let context = try lookupContext(ctx)
        ContextStack.push(context.handle)
    }
}

@c @implementation public func cuCtxPopCurrent_v2(_ pctx: UnsafeMutablePointer<CUcontext?>?) -> CUresult {
    api { () throws(Failure) in
        try initializedRegistry()
        guard let handle = ContextStack.pop() else { throw Failure(CUDA_ERROR_INVALID_CONTEXT) }
        pctx?.pointee = handle.opaque
    }
}

@c @implementation public func cuCtxSetCurrent(_ ctx: CUcontext?) -> CUresult {
    api { () throws(Failure) in
        if ctx == nil {
            try initializedRegistry()
            ContextStack.setTop(0)
            return
        }
        let context = try lookupContext(ctx)
        ContextStack.setTop(context.handle)
    }
}

@c @implementation public func cuCtxGetCurrent(_ pctx: UnsafeMutablePointer<CUcontext?>?) -> CUresult {
    api { () throws(Failure) in
        try initializedRegistry()
        guard let pctx else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        // A destroyed context left on the stack reads as none.
        let handle = ContextStack.top ?? 0
        let live = driver.withLock { $0.contexts[handle] != nil }
        pctx.pointee = live ? handle.opaque : nil
    }
}

@c @implementation public func cuCtxGetDevice(_ device: UnsafeMutablePointer<CUdevice>?) -> CUresult {
    api { () throws(Failure) in
        let context = try currentContext()
        guard let device else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        device.pointee = context.device.ordinal
    }
}

@c @implementation public func cuCtxSynchronize() -> CUresult {
    synchronized(api { () throws(Failure) in
        let context = try currentContext(allowBroken: true)
        context.synchronize()
        DevicePrintfOutput.flush(context: context.handle)
        try context.sticky.check()
    })
}

// MARK: Primary contexts

@c @implementation public func cuDevicePrimaryCtxRetain(_ pctx: UnsafeMutablePointer<CUcontext?>?, _ dev: CUdevice) -> CUresult {
    api { () throws(Failure) in
        guard let pctx else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let device = try lookupDevice(dev)
        let context = device.primary.withLock { state in
            if state.context == nil {
                let context = Context(handle: state.handle, device: device, isPrimary: true, flags: state.flags)
                state.context = context
                driver.withLock { $0.contexts[context.handle] = context }
            }
            state.references += 1
            return state.context!
        }
        pctx.pointee = context.handle.opaque
    }
}

@c @implementation public func cuDevicePrimaryCtxRelease_v2(_ dev: CUdevice) -> CUresult {
    api { () throws(Failure) in
        let device = try lookupDevice(dev)
        if let last = device.primary.withLock({ $0.references == 1 ? $0.context : nil }) {
            xpu_runtime_context_destroying(last.handle.opaque)
        }
        let released = try device.primary.withLock { state throws(Failure) -> Context? in
            guard state.references > 0, let context = state.context else { throw Failure(CUDA_ERROR_INVALID_CONTEXT) }
            state.references -= 1
            guard state.references == 0 else { return nil }
            state.context = nil
            driver.withLock { _ = $0.contexts.removeValue(forKey: context.handle) }
            return context
        }
        released?.teardown()
    }
}

@c @implementation public func cuDevicePrimaryCtxSetFlags_v2(_ dev: CUdevice, _ flags: UInt32) -> CUresult {
    api { () throws(Failure) in
        let device = try lookupDevice(dev)
        guard flags & ~CU_CTX_FLAGS_MASK.rawValue == 0 else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        device.primary.withLock { $0.flags = flags }
    }
}

@c @implementation public func cuDevicePrimaryCtxGetState(_ dev: CUdevice, _ flags: UnsafeMutablePointer<UInt32>?, _ active: UnsafeMutablePointer<Int32>?) -> CUresult {
    api { () throws(Failure) in
        guard let flags, let active else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let device = try lookupDevice(dev)
        device.primary.withLock { state in
            flags.pointee = state.flags
            active.pointee = state.context != nil ? 1 : 0
        }
    }
}

@c @implementation public func cuDevicePrimaryCtxReset_v2(_ dev: CUdevice) -> CUresult {
    api { () throws(Failure) in
        let device = try lookupDevice(dev)
        if let current = device.primary.withLock({ $0.context }) { xpu_runtime_context_destroying(current.handle.opaque) }
        let old = device.primary.withLock { state -> Context? in
            let old = state.context
            state.context = nil
            state.references = 0
            state.flags = 0
            if let old { driver.withLock { _ = $0.contexts.removeValue(forKey: old.handle) } }
            return old
        }
        old?.teardown()
    }
}
