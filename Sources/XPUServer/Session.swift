import CXPUDriver
import Logging
import XPUAdmission
import XPUProtocol
import XPUTransport

/// One client's session: the objects it created, the memory it may touch, and the replay of its
/// calls on the driver. Used by its connection thread only, so it needs no lock.
final class Session {
    let id: UInt64
    let client: String
    let table: DriverTable
    let logger: Logger
    var handles: HandleTable
    var memory = AllocationMap()
    /// The module each module variable in `memory` belongs to, by start address: the variable's
    /// range goes with its module, whose memory the driver frees and may give to another tenant.
    var globalModules: [UInt64: UInt64] = [:]
    /// The context last made current on this thread (session handle; 0 for none).
    var currentContext: UInt64 = 0
    /// Primary contexts, one private context per device for this session.
    var primaryContexts: [Int32: PrimaryContext] = [:]
    /// Parameter layouts of the session's kernels, by function handle.
    var kernelLayouts: [UInt64: KernelLayout] = [:]

    /// What the last launch looked up (function, layout, stream), kept for the next launch of
    /// the same function on the same stream while no handle has been removed: a loop of launches
    /// then costs no hashing.
    var lastLaunch: LaunchLookup?

    /// A class, so that reusing it copies one reference rather than the layout it holds.
    final class LaunchLookup {
        let function: UInt64
        let stream: UInt64
        let removals: UInt64
        let driverFunction: OpaquePointer?
        let layout: KernelLayout
        let driverStream: OpaquePointer?

        init(
            function: UInt64, stream: UInt64, removals: UInt64, driverFunction: OpaquePointer?, layout: KernelLayout,
            driverStream: OpaquePointer?
        ) {
            self.function = function
            self.stream = stream
            self.removals = removals
            self.driverFunction = driverFunction
            self.layout = layout
            self.driverStream = driverStream
        }

        /// Hands `frame` to the driver, its kernelParams pointing into the received block (the
        /// driver only reads them) from a temporary on the stack; nil, with nothing launched,
        /// when the block is not the kernel's size. On the connection thread's hot path: inlined,
        /// and only the entry point goes into the closures (a call, or capturing the whole table,
        /// would cost instructions on every launch).
        @inline(__always)
        func launch(_ frame: LaunchKernelFrame, on table: DriverTable) -> CUresult? {
            guard frame.parameters.count == layout.bytes else { return nil }
            let launchKernel = table.cuLaunchKernel
            return layout.parameters.withUnsafeBufferPointer { parameters in
                withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: max(parameters.count, 1)) {
                    arguments in
                    for index in 0..<parameters.count {
                        arguments[index] = UnsafeMutableRawPointer(
                            mutating: frame.parameters.baseAddress! + Int(parameters[index].offset))
                    }
                    return launchKernel(
                        driverFunction, frame.grid.0, frame.grid.1, frame.grid.2, frame.block.0, frame.block.1,
                        frame.block.2, frame.sharedMemBytes, driverStream, parameters.isEmpty ? nil : arguments.baseAddress,
                        nil)
                }
            }
        }
    }

    struct KernelLayout {
        var parameters: [KernelParameter]
        /// Size of the packed parameter block.
        var bytes: Int

        init(parameters: [KernelParameter]) {
            self.parameters = parameters
            bytes = parameters.blockBytes
        }
    }
    /// What the management API (NVML) measures and remembers for the session (Session+NVML.swift).
    var management = ManagementState()
    /// What the session has used, as /metrics reports it.
    let usage: SessionUsage
    /// Bytes charged to the session's slice: its allocations, each rounded as `Slice.charge`
    /// (kept as allocations come and go, so neither the quota check nor /metrics sums them).
    private(set) var chargedBytes: UInt64 = 0 {
        didSet { usage.memoryBytes.store(chargedBytes, ordering: .relaxed) }
    }
    /// The slice granted at the handshake (nil: the whole device, shared with other sessions).
    var slice: Slice? {
        didSet {
            guard let slice, slice.computePercent != nil else { return }
            turns.register(id, slice: slice)
            computeScheduled = true
        }
    }
    /// Launches go through the ComputeScheduler (the slice has a compute share).
    var computeScheduled = false
    /// The scheduler that gives the session's kernels their turns (the parent server's, for a
    /// session in a tenant process).
    let turns: any ComputeTurns

    /// The device time of one of the session's kernels, from its last turn (starts at the
    /// quantum: a session's first turn takes one kernel).
    var kernelEstimateNanoseconds = Session.turnQuantumNanoseconds

    /// What the session did, for its closing log line (the connection counts its traffic).
    var statistics = Statistics()

    struct Statistics {
        /// Copy chunks moved straight between the socket and device memory (no staging copy).
        var directChunks = 0
        /// Compressed chunks of one byte value set by the driver's memset instead of copied.
        var memsetChunks = 0
    }

    /// Bulk data may travel LZ4-compressed in this session (negotiated in the handshake).
    var compression = false
    /// The client takes device printf output (`Features.deviceOutput`).
    var deviceOutput = false
    var downloadGovernor = CompressionGovernor()
    /// The driver's host views of device memory (Session+Bulk.swift); nil: every copy is staged.
    let deviceRange: Driver.DeviceRangeFunction?
    /// Where staged host-to-device chunks wait for the driver's copy, two in turn.
    let uploads: UploadStaging
    /// Bulk buffers, allocated on first use and reused by every chunk, freed with the session:
    /// `staging` holds a device-to-host chunk on its way from the driver's copy (real drivers),
    /// `packedScratch` LZ4 data (received, or a compressed reply), `bulkFields` a copy request's
    /// fields.
    var staging: UnsafeMutableRawBufferPointer {
        if let stagingStorage { return stagingStorage }
        // Page-aligned, as device memory is: a copy between a buffer 64 bytes into a page and
        // device memory runs at about half speed (bench/latency-bandwidth/README.md,
        // "all-staged.json").
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: ProtocolLimits.maximumBulkBytes, alignment: UploadStaging.pageBytes)
        stagingStorage = buffer
        return buffer
    }
    var packedScratch: UnsafeMutableRawBufferPointer {
        if let packedStorage { return packedStorage }
        let bytes = max(LZ4Codec.shared?.bound(ProtocolLimits.maximumBulkBytes) ?? 0, ProtocolLimits.maximumBulkBytes)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        packedStorage = buffer
        return buffer
    }
    let bulkFields = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
    var sampleScratch: UnsafeMutableRawBufferPointer {
        if let sampleScratchStorage { return sampleScratchStorage }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: (LZ4Codec.shared?.bound(128 << 10) ?? 0) + 16, alignment: 16)
        sampleScratchStorage = buffer
        return buffer
    }
    private var stagingStorage: UnsafeMutableRawBufferPointer?
    private var packedStorage: UnsafeMutableRawBufferPointer?
    private var sampleScratchStorage: UnsafeMutableRawBufferPointer?

    struct PrimaryContext {
        var context: UInt64 = 0
        var references = 0
        var flags: UInt32 = 0
    }

    var driver: DriverTable { table }

    init(
        id: UInt64, client: String, driver: Driver, logger: Logger, usage: SessionUsage,
        turns: any ComputeTurns
    ) {
        self.id = id
        self.turns = turns
        self.usage = usage
        self.client = client
        self.table = driver.table
        self.deviceRange = driver.deviceRange
        self.uploads = UploadStaging(table: driver.table, register: driver.hostRegister, unregister: driver.hostUnregister)
        self.logger = logger
        handles = HandleTable(session: id)
    }

    deinit {
        stagingStorage?.deallocate()
        packedStorage?.deallocate()
        bulkFields.deallocate()
        sampleScratchStorage?.deallocate()
    }

    /// Makes the request's context current before replaying it. An id the session does not own
    /// leaves no context current, so the driver itself answers CUDA_ERROR_INVALID_CONTEXT to
    /// calls that need one, and calls that don't (device queries) still work.
    func selectContext(_ context: UInt64) {
        // The context selected last is alive (destroying it resets `currentContext`; `.max`
        // marks the selection unknown): most frames name it, and need no lookup.
        guard context != currentContext || context == .max else { return }
        let resolved = resolvedContext(context)
        guard resolved != currentContext else { return }
        _ = table.cuCtxSetCurrent(handles.lookup(.context, resolved))
        currentContext = resolved
    }

    /// The context a request's header selects: its own, or none (0).
    func resolvedContext(_ context: UInt64) -> UInt64 {
        context == 0 ? 0 : (handles.lookup(.context, context) == nil ? 0 : context)
    }

    // Checks and bookkeeping used by the generated dispatch (proto/cuda-driver.api annotations).

    /// The driver object behind a session handle. 0 is NULL; the stream ids 1 and 2 are the
    /// driver's legacy and per-thread default streams.
    func handle(_ kind: HandleKind, _ id: UInt64) throws(CallFailure) -> OpaquePointer? {
        if id == 0 { return nil }
        if kind == .stream, id <= 2 { return OpaquePointer(bitPattern: UInt(id)) }
        guard let pointer = handles.lookup(kind, id) else {
            throw CallFailure(kind == .context ? CUDA_ERROR_INVALID_CONTEXT : CUDA_ERROR_INVALID_HANDLE)
        }
        return pointer
    }

    func register(_ kind: HandleKind, _ pointer: OpaquePointer?, module: UInt64 = 0) -> UInt64 {
        guard let pointer else { return 0 }
        return handles.insert(kind, pointer, context: currentContext, module: module)
    }

    func release(_ kind: HandleKind, _ id: UInt64) {
        if kind == .context {
            for allocation in memory.allocations where allocation.context == id && !allocation.isGlobal {
                chargedBytes -= Slice.charge(allocation.bytes)
            }
            memory.removeAll(ownedBy: id)
            globalModules = globalModules.filter { handles.entries[$0.value]?.context != id }
            kernelLayouts = kernelLayouts.filter { handles.entries[$0.key]?.context != id }
            for (device, primary) in primaryContexts where primary.context == id { primaryContexts[device] = nil }
            if currentContext == id { currentContext = 0 }
        }
        if kind == .module {
            kernelLayouts = kernelLayouts.filter { handles.entries[$0.key]?.module != id }
            for (start, module) in globalModules where module == id {
                memory.remove(startingAt: start)
                globalModules[start] = nil
            }
        }
        handles.remove(id)
    }

    /// [start, start + count * elementSize) must lie inside one of the session's allocations.
    func checkRange(_ start: UInt64, count: UInt64, elementSize: Int) throws(CallFailure) {
        let (length, overflow) = count.multipliedReportingOverflow(by: UInt64(elementSize))
        guard !overflow else { throw CallFailure(CUDA_ERROR_INVALID_VALUE) }
        guard length > 0 else { return }
        guard memory.contains(start: start, length: length) else { throw CallFailure(CUDA_ERROR_INVALID_VALUE) }
    }

    func checkAllocationStart(_ start: UInt64) throws(CallFailure) {
        guard let allocation = memory.allocation(startingAt: start), !allocation.isGlobal else {
            throw CallFailure(CUDA_ERROR_INVALID_VALUE)
        }
    }

    func recordAllocation(_ start: UInt64, bytes: UInt64) {
        forgetAllocation(start)  // the driver reused an address the session still listed: count it once
        memory.insert(.init(start: start, bytes: bytes, context: currentContext, isGlobal: false))
        chargedBytes += Slice.charge(bytes)
    }

    func recordGlobal(_ start: UInt64, bytes: UInt64, module: UInt64) {
        memory.insert(.init(start: start, bytes: bytes, context: currentContext, isGlobal: true))
        globalModules[start] = module
    }

    func forgetAllocation(_ start: UInt64) {
        if let allocation = memory.allocation(startingAt: start), !allocation.isGlobal {
            chargedBytes -= Slice.charge(allocation.bytes)
        }
        memory.remove(startingAt: start)
    }

    /// Frees everything the session still holds, whatever state the client left it in: its
    /// memory, events, streams, modules and contexts (each with its own context current).
    /// Returns what it freed and what its connection carried (`traffic`), for the "session
    /// released" line the caller logs once the session's admission is given back too.
    func releaseEverything(traffic: ConnectionTraffic) -> Logger.Metadata {
        // Copies out of the upload buffers finish before the memory and contexts they use go.
        uploads.drain()
        var freed: UInt64 = 0
        for allocation in memory.allocations where !allocation.isGlobal {
            selectContext(allocation.context)
            if table.cuMemFree_v2(allocation.start) == CUDA_SUCCESS { freed += allocation.bytes }
        }
        for kind in [HandleKind.event, .stream, .module] {
            for (_, entry) in handles.all(kind) {
                selectContext(entry.context)
                switch kind {
                case .event: _ = table.cuEventDestroy_v2(entry.pointer)
                case .stream: _ = table.cuStreamDestroy_v2(entry.pointer)
                default: _ = table.cuModuleUnload(entry.pointer)
                }
            }
        }
        selectContext(0)
        let contexts = handles.all(.context)
        for (_, entry) in contexts { _ = table.cuCtxDestroy_v2(entry.pointer) }
        // The scheduler's account (tenants with a compute share): device time of their kernels,
        // and turns that began only after a scheduler wait timed out (should be 0).
        let scheduled = turns.usage(id)
        let released: Logger.Metadata = [
            "freedBytes": "\(freed)", "contexts": "\(contexts.count)", "calls": "\(traffic.calls)",
            "bytesReceived": "\(traffic.bytesReceived)", "bytesSent": "\(traffic.bytesSent)",
            "compressedChunksReceived": "\(traffic.compressedChunksReceived)",
            "compressedChunksSent": "\(traffic.compressedChunksSent)",
            "directChunks": "\(statistics.directChunks)", "memsetChunks": "\(statistics.memsetChunks)",
            "deviceNanoseconds": "\(scheduled.deviceNanoseconds)", "schedulerStalls": "\(scheduled.stalls)",
            "compute": "\(slice?.computePercent.map { "\($0)%" } ?? "none")",
            "mode": "\(slice?.capped == true ? "capped" : "guaranteed")",
        ]
        handles = HandleTable(session: id)
        memory = AllocationMap()
        globalModules = [:]
        chargedBytes = 0
        currentContext = 0
        return released
    }
}
