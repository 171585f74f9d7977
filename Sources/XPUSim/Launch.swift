import CXPUDriver
import Glibc
import XPUPTX

/// Runs the blocks of launches on a fixed set of threads: the stream worker that owns a launch plus
/// helpers shared by all launches, at most min(simulated SMs, host cores) at a time.
final class BlockScheduler: @unchecked Sendable {
    final class Job {
        let launch: PTXLaunch
        let total: Int
        var next = 0
        var finished = 0
        var fault: PTXFault?
        init(_ launch: PTXLaunch) {
            self.launch = launch
            self.total = launch.blockCount
        }
    }

    static let shared: BlockScheduler = {
        let sms = driver.withLock { $0.configuration.smCount }
        let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return BlockScheduler(helpers: max(0, min(sms, cores) - 1))
    }()

    private let lock = ConditionLock()
    private var jobs: [Job] = []

    init(helpers: Int) {
        for _ in 0..<helpers {
            let t = startThread(named: "xpusim-blocks") { [self] in self.helperLoop() }
            pthread_detach(t)
        }
    }

    /// Runs every block; returns the first fault (later blocks are skipped after a fault).
    func run(_ launch: PTXLaunch) -> PTXFault? {
        // One block needs no helper: waking one (and putting it back to sleep) would cost more
        // than an empty kernel's whole run, and most launches of small kernels are one block.
        if launch.blockCount == 1 { return launch.runBlock(0) }
        let job = Job(launch)
        guard job.total > 0 else { return nil }
        lock.withLock {
            jobs.append(job)
            lock.broadcast()
        }
        lock.lock()
        while job.next < job.total {
            runOne(job)
        }
        while job.finished < job.total { lock.wait() }
        jobs.removeAll { $0 === job }
        lock.unlock()
        return job.fault
    }

    /// Claims and runs one block of `job`; the lock is held on entry and on return.
    private func runOne(_ job: Job) {
        let index = job.next
        job.next += 1
        lock.unlock()
        let fault = job.launch.runBlock(index)
        lock.lock()
        job.finished += 1
        if let fault, job.fault == nil {
            job.fault = fault
            job.finished += job.total - job.next
            job.next = job.total
        }
        if job.finished == job.total { lock.broadcast() }
    }

    private func helperLoop() {
        lock.lock()
        while true {
            if let job = jobs.first(where: { $0.next < $0.total }) {
                runOne(job)
            } else {
                lock.wait()
            }
        }
    }
}

/// A launch's function, context and stream, looked up under one hold of the registry lock: the
/// function must belong to the stream's context (the current one for the default streams), which
/// must not be broken by a fault. A thread that launches the same function on the same stream
/// again (the usual case) reuses its last answer while no context, stream or function has come or
/// gone (`launchTableChanges`): no lock, no hashing.
///
/// The answer is the thread's memo, unretained: the thread's context stack box holds it until the
/// thread's next launch that misses it.
private func launchTarget(_ f: CUfunction?, _ hStream: CUstream?) throws(Failure) -> Unmanaged<LaunchTarget> {
    let functionHandle = UInt(handle: f)
    let streamHandle = UInt(handle: hStream)
    // Read before the lookup: a change that lands during it makes the memo stale at once.
    let changes = launchTableChanges.load(ordering: .acquiring)
    let hit = ContextStack.withBox { thread -> (Unmanaged<LaunchTarget>, CUresult?)? in
        guard let memo = thread.lastLaunch, memo.functionHandle == functionHandle, memo.streamHandle == streamHandle,
            memo.top == thread.handles.last, memo.changes == changes
        else { return nil }
        return (Unmanaged.passUnretained(memo), memo.sticky._withUnsafeGuaranteedRef { $0.fault })
    }
    if let (memo, fault) = hit {
        if let fault { throw Failure(fault) }
        return memo
    }
    let top = ContextStack.top
    let (function, target) = try driver.withLock { registry throws(Failure) in
        guard registry.initialized else { throw Failure(CUDA_ERROR_NOT_INITIALIZED) }
        return (registry.functions[functionHandle], registry.stream(streamHandle))
    }
    guard let function else { throw Failure(CUDA_ERROR_INVALID_HANDLE) }
    let (context, stream) = try checkedStream(target, handle: streamHandle)
    guard function.contextHandle == context.handle else { throw Failure(CUDA_ERROR_INVALID_HANDLE) }
    let memo = LaunchTarget(
        function: function, context: context, stream: stream, streamHandle: streamHandle, top: top, changes: changes)
    ContextStack.box.lastLaunch = memo
    return Unmanaged.passUnretained(memo)
}

/// A thread's last launch target, what it was looked up with, and what a launch checks and
/// marshals, copied out of the kernel. A launch that hits the memo reads only this object, which
/// no other thread touches: reading (and reference-counting) the function, its kernel or the
/// context on every launch pulled their cache lines away from the stream worker, which uses the
/// same objects for every kernel it runs.
final class LaunchTarget {
    /// Held for as long as the memo is; the launch path uses the unmanaged references below,
    /// which it can use without counting references.
    let function: Function
    let context: Context
    let stream: Stream
    let unownedFunction: Unmanaged<Function>
    let unownedContext: Unmanaged<Context>
    let unownedStream: Unmanaged<Stream>
    let sticky: Unmanaged<StickyError>
    let functionHandle: UInt
    let streamHandle: UInt
    /// The thread's current context then (it picks the stream for handles 0, 1 and 2).
    let top: UInt?
    let changes: UInt64
    let maxThreadsPerBlock: Int
    let staticSharedSize: Int
    let parameterBufferSize: Int
    let parameters: [(offset: Int, size: Int)]

    init(function: Function, context: Context, stream: Stream, streamHandle: UInt, top: UInt?, changes: UInt64) {
        self.function = function
        self.context = context
        self.stream = stream
        self.unownedFunction = Unmanaged.passUnretained(function)
        self.unownedContext = Unmanaged.passUnretained(context)
        self.unownedStream = Unmanaged.passUnretained(stream)
        self.sticky = Unmanaged.passUnretained(context.sticky)
        self.functionHandle = function.handle
        self.streamHandle = streamHandle
        self.top = top
        self.changes = changes
        let kernel = function.kernel
        self.maxThreadsPerBlock = kernel.maxThreadsPerBlock
        self.staticSharedSize = kernel.staticSharedSize
        self.parameterBufferSize = kernel.parameterBufferSize
        self.parameters = kernel.parameters.map { ($0.offset, $0.size) }
    }
}

func launchKernel(
    _ f: CUfunction?, grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32), sharedMemBytes: UInt32,
    stream hStream: CUstream?, kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> CUresult {
    beforeDeviceWork()
    return api { () throws(Failure) in
        let status = try launchTarget(f, hStream)._withUnsafeGuaranteedRef { target in
            enqueueLaunch(
                target, grid: grid, block: block, sharedMemBytes: sharedMemBytes, kernelParams: kernelParams, extra: extra)
        }
        if status != CUDA_SUCCESS { throw Failure(status) }
    }
}

/// Checks a launch against its target's limits, marshals its parameters and queues it.
private func enqueueLaunch(
    _ target: LaunchTarget, grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32), sharedMemBytes: UInt32,
    kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> CUresult {
    let threads = Int(block.0) * Int(block.1) * Int(block.2)
    guard grid.0 >= 1, grid.1 >= 1, grid.2 >= 1, grid.0 <= 2_147_483_647, grid.1 <= 65535, grid.2 <= 65535,
        block.0 >= 1, block.1 >= 1, block.2 >= 1, block.0 <= 1024, block.1 <= 1024, block.2 <= 64,
        threads <= min(1024, target.maxThreadsPerBlock)
    else { return CUDA_ERROR_INVALID_VALUE }
    guard target.staticSharedSize + Int(sharedMemBytes) <= 227 * 1024 else { return CUDA_ERROR_INVALID_VALUE }
    if target.function.prints { DevicePrintfOutput.applyLimit(context: target.context.handle) }

    // Marshal the parameter buffer with the kernel's layout (none for a kernel without one).
    var bytes = target.parameterBufferSize == 0 ? nil : [UInt8](repeating: 0, count: target.parameterBufferSize)
    if kernelParams != nil, extra != nil { return CUDA_ERROR_INVALID_VALUE }
    if let kernelParams {
        for (i, p) in target.parameters.enumerated() {
            guard let source = kernelParams[i] else { return CUDA_ERROR_INVALID_VALUE }
            bytes?.withUnsafeMutableBytes { raw in
                raw.baseAddress!.advanced(by: p.offset).copyMemory(from: source, byteCount: p.size)
            }
        }
    } else if let extra {
        var buffer: UnsafeMutableRawPointer?
        var size: Int?
        var i = 0
        while let key = extra[i] {
            switch UInt(bitPattern: key) {
            case 1: buffer = extra[i + 1]
            case 2: size = extra[i + 1]?.load(as: Int.self)
            default: return CUDA_ERROR_INVALID_VALUE
            }
            i += 2
        }
        guard let buffer, let size else { return CUDA_ERROR_INVALID_VALUE }
        bytes?.withUnsafeMutableBytes { raw in
            raw.baseAddress!.copyMemory(from: buffer, byteCount: min(size, raw.count))
        }
    } else if !target.parameters.isEmpty {
        return CUDA_ERROR_INVALID_VALUE
    }

    // The memory the kernel may touch is what the context has when the launch is queued: an
    // allocation freed before the kernel runs stays alive for it (CUDA's cuMemFree waits for the
    // work that uses it), and the launch holds it until done.
    let run = KernelRun(
        unownedFunction: target.unownedFunction, grid: grid, block: block, sharedMemBytes: sharedMemBytes,
        parameters: consume bytes, memory: target.context.device.memory.view(of: target.context.handle))
    target.unownedContext._withUnsafeGuaranteedRef { context in
        target.unownedStream._withUnsafeGuaranteedRef { stream in
            context.enqueue(on: stream, .launch(run), completion: nil)
        }
    }
    return CUDA_SUCCESS
}

/// A launch waiting on its stream. It holds no reference count on its function: the stream
/// keeps the function alive while the launch is queued or running (`Stream.pins`).
struct KernelRun {
    let unownedFunction: Unmanaged<Function>
    let grid: (UInt32, UInt32, UInt32)
    let block: (UInt32, UInt32, UInt32)
    let sharedMemBytes: UInt32
    /// nil for a kernel without parameters: no array to count references on per launch.
    let parameters: [UInt8]?
    /// The context's allocations when the launch was queued.
    let memory: PTXMemoryMap

    var function: Function { unownedFunction.takeUnretainedValue() }

    /// Runs every block on the stream's device; a fault breaks the stream's context (CUDA's
    /// sticky error).
    func run(on stream: Stream) {
        let function = self.function
        let launch = PTXLaunch(
            kernel: function.kernel, grid: PTXDim3(Int(grid.0), Int(grid.1), Int(grid.2)),
            block: PTXDim3(Int(block.0), Int(block.1), Int(block.2)), dynamicSharedBytes: Int(sharedMemBytes),
            parameters: parameters ?? [], memory: memory,
            variableAddresses: function.variableAddresses, smCount: stream.device.smCount,
            output: function.prints ? DevicePrintfOutput.of(context: stream.contextHandle) : nil)
        guard let fault = BlockScheduler.shared.run(launch) else { return }
        log("kernel fault: \(fault)")
        switch fault.kind {
        case .illegalAddress: stream.sticky.set(CUDA_ERROR_ILLEGAL_ADDRESS)
        case .misalignedAddress: stream.sticky.set(CUDA_ERROR_MISALIGNED_ADDRESS)
        case .illegalInstruction: stream.sticky.set(CUDA_ERROR_ILLEGAL_INSTRUCTION)
        case .trap: stream.sticky.set(CUDA_ERROR_LAUNCH_FAILED)
        case .assertion: stream.sticky.set(CUDA_ERROR_ASSERT)
        }
    }
}

@c @implementation public func cuLaunchKernel(_ f: CUfunction?, _ gridDimX: UInt32, _ gridDimY: UInt32, _ gridDimZ: UInt32, _ blockDimX: UInt32, _ blockDimY: UInt32, _ blockDimZ: UInt32, _ sharedMemBytes: UInt32, _ hStream: CUstream?, _ kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> CUresult {
    launchKernel(
        f, grid: (gridDimX, gridDimY, gridDimZ), block: (blockDimX, blockDimY, blockDimZ), sharedMemBytes: sharedMemBytes,
        stream: hStream, kernelParams: kernelParams, extra: extra)
}

@c @implementation public func cuLaunchKernel_ptsz(_ f: CUfunction?, _ gridDimX: UInt32, _ gridDimY: UInt32, _ gridDimZ: UInt32, _ blockDimX: UInt32, _ blockDimY: UInt32, _ blockDimZ: UInt32, _ sharedMemBytes: UInt32, _ hStream: CUstream?, _ kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> CUresult {
    launchKernel(
        f, grid: (gridDimX, gridDimY, gridDimZ), block: (blockDimX, blockDimY, blockDimZ), sharedMemBytes: sharedMemBytes,
        stream: hStream, kernelParams: kernelParams, extra: extra)
}
