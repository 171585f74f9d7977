import CXPUDriver
import Glibc
import Synchronization

/// A stream: work runs in order on the stream's own worker thread, asynchronously to the host.
/// A work item may also wait for other streams' completions first (legacy-stream ordering).
final class Stream: @unchecked Sendable {
    struct Work {
        /// nil rather than empty: most work waits for nothing, and an empty array is one more
        /// reference counted on every launch.
        var dependencies: [Completion]?
        var task: Task
        /// Made only when someone will wait for this item: a copy or an event record, or a caller
        /// of `tail` while it is the last queued. Most launches have none (a completion per
        /// launch was a heap object and a clock read, made on one thread and freed on another).
        var completion: Completion?
    }

    /// What a work item does. Launches are kept inline: most work is launches, and a closure
    /// would be one more heap object per launch, made on the enqueueing thread and freed on the
    /// worker.
    enum Task {
        case launch(KernelRun)
        case run(() -> Void)

        func perform(on stream: Stream) {
            switch self {
            case .launch(let kernel): kernel.run(on: stream)
            case .run(let body): body()
            }
        }
    }

    /// The handle the application sees (0 for a context's legacy stream).
    let handle: UInt
    /// Created without CU_STREAM_NON_BLOCKING: ordered against the legacy stream.
    let blocking: Bool
    /// The owning context's handle, device and fault state (what its kernels run with).
    let contextHandle: UInt
    let device: Device
    let sticky: StickyError
    private let lock = ConditionLock()
    private var queue: [Work] = []
    /// The functions of the launches in `queue`, one entry per run of launches of the same
    /// function; it moves to the worker with the queue. Queued launches refer to their function
    /// without a reference count of their own (`KernelRun`): counted per launch, the function's
    /// count bounced between the enqueueing thread's core and the worker's on every launch.
    private var pins: [Function] = []
    /// The last entry of `pins` as an address, compared without loading (and counting) it.
    private var lastPin: UnsafeMutableRawPointer?
    /// The worker is running a batch it took from `queue`.
    private var running = false
    /// The completion of the running batch's last item, if it has one: `tail` while the batch
    /// runs. Otherwise `batchEnd`, made when `tail` is asked for then and signalled when the batch
    /// ends. Either way `tail` is done exactly when every item so far has run, and every item's
    /// own completion is signalled before the stream is idle, so that after a synchronize both
    /// `cuStreamQuery` and `cuEventQuery` of an event recorded on the stream say done.
    private var runningLast: Completion?
    private var batchEnd: Completion?
    private var stopping = false
    private var thread: pthread_t?
    /// Called by the worker with each batch it takes, before running it: tests hold a batch
    /// there to look at a stream whose queue is empty while its work has not run (nil otherwise).
    private var batchTaken: (@Sendable () -> Void)?

    init(handle: UInt, blocking: Bool, contextHandle: UInt, device: Device, sticky: StickyError) {
        self.handle = handle
        self.contextHandle = contextHandle
        self.device = device
        self.blocking = blocking
        self.sticky = sticky
    }

    /// Done when all work enqueued so far has finished (at once when the stream is idle).
    var tail: Completion {
        lock.withLock {
            if let last = queue.indices.last {
                if let completion = queue[last].completion { return completion }
                let completion = Completion()
                queue[last].completion = completion
                return completion
            }
            guard running else { return Completion.finished }
            if let runningLast { return runningLast }
            if let batchEnd { return batchEnd }
            let completion = Completion()
            batchEnd = completion
            return completion
        }
    }

    /// Appends work, to be signalled on `completion` (if any) when done; its task is skipped when
    /// the context is already broken by a fault. Inlined into its callers, so that a launch's
    /// work item is made once, in place.
    @inline(__always)
    func enqueue(after dependencies: [Completion]? = nil, _ task: Task, completion: Completion?) {
        lock.lock()
        if case .launch(let kernel) = task { pin(kernel) }
        startWorker()
        queue.append(Work(dependencies: dependencies, task: task, completion: completion))
        // The worker sleeps only on an empty queue.
        if queue.count == 1 { lock.broadcast() }
        lock.unlock()
    }

    /// Keeps the launch's function alive while the launch waits (lock held).
    @inline(__always)
    private func pin(_ run: KernelRun) {
        if run.unownedFunction.toOpaque() != lastPin {
            pins.append(run.function)
            lastPin = run.unownedFunction.toOpaque()
        }
    }

    /// Starts the worker with the stream's first work (lock held).
    @inline(__always)
    private func startWorker() {
        if thread == nil {
            thread = startThread(named: "xpusim-stream") { [self] in self.workerLoop() }
        }
    }

    /// Takes all queued work at once and runs it outside the lock, so the thread enqueueing and
    /// the worker meet on the lock once per batch instead of once per item (per item, the two
    /// fought over it and paid futex calls on every launch). The two arrays trade places and keep
    /// their capacity: no allocation once warm.
    private func workerLoop() {
        var batch: [Work] = []
        var batchPins: [Function] = []
        while true {
            lock.lock()
            while queue.isEmpty && !stopping { lock.wait() }
            if queue.isEmpty {
                lock.unlock()
                return
            }
            swap(&batch, &queue)
            swap(&batchPins, &pins)
            lastPin = nil
            running = true
            runningLast = batch.last?.completion
            let taken = batchTaken
            lock.unlock()
            taken?()
            for work in batch {
                if let dependencies = work.dependencies {
                    for d in dependencies { d.wait() }
                }
                if !sticky.isSet { work.task.perform(on: self) }
                work.completion?.signal()
            }
            let end: Completion? = lock.withLock {
                running = false
                runningLast = nil
                defer { batchEnd = nil }
                return batchEnd
            }
            end?.signal()
            batch.removeAll(keepingCapacity: true)
            batchPins.removeAll(keepingCapacity: true)
        }
    }

    /// Sets what the worker calls with each batch it takes, before running it.
    func onBatchTaken(_ hook: (@Sendable () -> Void)?) {
        lock.withLock { batchTaken = hook }
    }

    /// Finishes queued work and ends the worker thread.
    func shutdown() {
        let t: pthread_t? = lock.withLock {
            stopping = true
            lock.broadcast()
            return thread
        }
        if let t { pthread_join(t, nil) }
    }
}

/// Resolves a stream argument: 0, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD name the current
/// context's legacy stream (the per-thread stream is served by the legacy stream, which orders at
/// least as strictly); other values must be live streams.
func resolveStream(_ hStream: CUstream?) throws(Failure) -> (Context, Stream) {
    let handle = UInt(handle: hStream)
    let found = try driver.withLock { registry throws(Failure) -> (Context, Stream)? in
        guard registry.initialized else { throw Failure(CUDA_ERROR_NOT_INITIALIZED) }
        return registry.stream(handle)
    }
    return try checkedStream(found, handle: handle)
}

extension Registry {
    /// A stream argument's context and stream (the calling thread's current context and its
    /// legacy stream for 0, 1 and 2); nil when there is no such context or stream.
    func stream(_ handle: UInt) -> (Context, Stream)? {
        if handle <= 2 {
            guard let top = ContextStack.top, let context = contexts[top] else { return nil }
            return (context, context.legacy)
        }
        guard let stream = streams[handle], let owner = contexts[stream.contextHandle] else { return nil }
        return (owner, stream)
    }
}

/// What `Registry.stream` found, or the error CUDA gives: no current context for a default
/// stream, an unknown stream handle, or a context broken by a fault.
func checkedStream(_ found: (Context, Stream)?, handle: UInt) throws(Failure) -> (Context, Stream) {
    guard let found else { throw Failure(handle <= 2 ? CUDA_ERROR_INVALID_CONTEXT : CUDA_ERROR_INVALID_HANDLE) }
    try found.0.sticky.check()
    return found
}

@c @implementation public func cuStreamCreate(_ phStream: UnsafeMutablePointer<CUstream?>?, _ Flags: UInt32) -> CUresult {
    api { () throws(Failure) in
        let context = try currentContext()
        guard let phStream, Flags & ~CU_STREAM_NON_BLOCKING.rawValue == 0 else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let handle = driver.withLock { $0.mintHandle() }
        let stream = Stream(
            handle: handle, blocking: Flags & CU_STREAM_NON_BLOCKING.rawValue == 0, contextHandle: context.handle,
            device: context.device, sticky: context.sticky)
        context.members.withLock { $0.streams.append(stream) }
        driver.withLock { $0.streams[handle] = stream }
        phStream.pointee = handle.opaque
    }
}

@c @implementation public func cuStreamDestroy_v2(_ hStream: CUstream?) -> CUresult {
    api { () throws(Failure) in
        try initializedRegistry()
        let handle = UInt(handle: hStream)
        guard handle > 2, let stream = driver.withLock({ $0.streams.removeValue(forKey: handle) }) else {
            throw Failure(CUDA_ERROR_INVALID_HANDLE)
        }
        let owner = stream.contextHandle
        if let context = driver.withLock({ $0.contexts[owner] }) {
            context.members.withLock { $0.streams.removeAll { $0 === stream } }
        }
        // Work already queued still completes (as CUDA does); the worker exits afterwards.
        let t = startThread(named: "xpusim-drain") { stream.shutdown() }
        pthread_detach(t)
    }
}

func streamSynchronize(_ hStream: CUstream?) -> CUresult {
    synchronized(api { () throws(Failure) in
        let (context, stream) = try resolveStream(hStream)
        stream.tail.wait()
        DevicePrintfOutput.flush(context: context.handle)
        try context.sticky.check()
    })
}

func streamQuery(_ hStream: CUstream?) -> CUresult {
    api { () throws(Failure) in
        let (context, stream) = try resolveStream(hStream)
        try context.sticky.check()
        guard stream.tail.isDone else { throw Failure(CUDA_ERROR_NOT_READY) }
    }
}

@c @implementation public func cuStreamSynchronize(_ hStream: CUstream?) -> CUresult { streamSynchronize(hStream) }
@c @implementation public func cuStreamSynchronize_ptsz(_ hStream: CUstream?) -> CUresult { streamSynchronize(hStream) }
@c @implementation public func cuStreamQuery(_ hStream: CUstream?) -> CUresult { streamQuery(hStream) }
@c @implementation public func cuStreamQuery_ptsz(_ hStream: CUstream?) -> CUresult { streamQuery(hStream) }
