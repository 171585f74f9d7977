import CXPUDriver
import Glibc
import Synchronization
import XPUPTX

/// A driver call's failure: the CUresult to return.
struct Failure: Error {
    var result: CUresult
    init(_ result: CUresult) { self.result = result }
}

/// Runs an entry point's body and turns a thrown failure into its CUresult.
@inline(__always) func api(_ body: () throws(Failure) -> Void) -> CUresult {
    do throws(Failure) {
        try body()
        return CUDA_SUCCESS
    } catch {
        return error.result
    }
}

/// Configuration read from the environment at cuInit.
struct SimConfiguration {
    /// XPU_SIM_DEVICES: number of simulated devices (default 1).
    var deviceCount = 1
    /// XPU_SIM_MEMORY: bytes of device memory per device (default 16 GiB; suffixes K/M/G/KiB/MiB/GiB).
    var memoryBytes = 16 << 30
    /// XPU_SIM_SMS: simulated multiprocessors per device (default 8); bounds the threads that run blocks.
    var smCount = 8
    /// XPU_SIM_NODE: any text naming this simulated node; its hash fills bytes 9-14 of every
    /// device's UUID, so devices of different servers differ as real GPUs do (default: zeros).
    var node: [UInt8] = Array(repeating: 0, count: 6)

    static func fromEnvironment() -> SimConfiguration {
        var c = SimConfiguration()
        if let v = environment("XPU_SIM_DEVICES"), let n = Int(v.trimmingSpaces()), n >= 0 { c.deviceCount = min(n, 64) }
        if let v = environment("XPU_SIM_MEMORY"), let n = parseByteCount(v), n > 0 { c.memoryBytes = n }
        if let v = environment("XPU_SIM_SMS"), let n = Int(v.trimmingSpaces()), n > 0 { c.smCount = min(n, 1024) }
        if let v = environment("XPU_SIM_NODE"), !v.isEmpty {
            // FNV-1a, 64-bit: stable across runs and platforms, unlike Swift's seeded Hasher.
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in v.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
            c.node = (0..<6).map { UInt8(truncatingIfNeeded: hash >> (8 * $0)) }
        }
        return c
    }
}

/// Every live object of the simulated driver, by handle. Handles are opaque numbers handed to the
/// application; they are looked up here on every call, never dereferenced.
struct Registry {
    var initialized = false
    var configuration = SimConfiguration()
    var devices: [Device] = []
    var contexts: [UInt: Context] = [:] { didSet { launchTablesChanged() } }
    var streams: [UInt: Stream] = [:] { didSet { launchTablesChanged() } }
    var events: [UInt: Event] = [:]
    var modules: [UInt: Module] = [:]
    var functions: [UInt: Function] = [:] { didSet { launchTablesChanged() } }
    var hostAllocations: [UInt: HostAllocation] = [:]
    private var nextHandle: UInt = 0

    /// A fresh handle value: never 0, 1 or 2 (the special stream handles), never reused.
    mutating func mintHandle() -> UInt {
        nextHandle += 1
        return 0x5100_0000_0000 + (nextHandle << 4)
    }
}

let driver = Mutex(Registry())

/// Counts changes to the tables a launch looks in (contexts, streams, functions). A thread's
/// remembered launch target (`LaunchTarget`) is good while the count is what it was.
let launchTableChanges = Atomic<UInt64>(0)

private func launchTablesChanged() {
    launchTableChanges.add(1, ordering: .releasing)
}

extension Registry {
    func device(_ ordinal: CUdevice) throws(Failure) -> Device {
        guard initialized else { throw Failure(CUDA_ERROR_NOT_INITIALIZED) }
        guard ordinal >= 0, Int(ordinal) < devices.count else { throw Failure(CUDA_ERROR_INVALID_DEVICE) }
        return devices[Int(ordinal)]
    }
}

func initializedRegistry() throws(Failure) {
    let ok = driver.withLock { $0.initialized }
    guard ok else { throw Failure(CUDA_ERROR_NOT_INITIALIZED) }
}

func lookupDevice(_ ordinal: CUdevice) throws(Failure) -> Device {
    try driver.withLock { registry throws(Failure) in try registry.device(ordinal) }
}

/// The calling thread's current context, checked to be alive and not broken by a kernel fault.
func currentContext(allowBroken: Bool = false) throws(Failure) -> Context {
    let context: Context? = try driver.withLock { registry throws(Failure) in
        guard registry.initialized else { throw Failure(CUDA_ERROR_NOT_INITIALIZED) }
        guard let handle = ContextStack.top else { return nil }
        return registry.contexts[handle]
    }
    guard let context else { throw Failure(CUDA_ERROR_INVALID_CONTEXT) }
    if !allowBroken { try context.sticky.check() }
    return context
}

func lookupContext(_ ctx: CUcontext?) throws(Failure) -> Context {
    let handle = UInt(bitPattern: Int(bitPattern: ctx))
    let context = try driver.withLock { registry throws(Failure) -> Context? in
        guard registry.initialized else { throw Failure(CUDA_ERROR_NOT_INITIALIZED) }
        return registry.contexts[handle]
    }
    guard let context else { throw Failure(CUDA_ERROR_INVALID_CONTEXT) }
    return context
}

extension UInt {
    init(handle pointer: OpaquePointer?) { self = UInt(bitPattern: Int(bitPattern: pointer)) }
    var opaque: OpaquePointer? { OpaquePointer(bitPattern: Int(bitPattern: self)) }
}

/// A sticky context error: once a kernel faults, every later call in that context returns it.
final class StickyError: Sendable {
    /// An atomic rather than a lock: every launch checks it on the enqueueing thread and every
    /// work item on the stream worker, and a lock's write on each check made its cache line move
    /// between the two cores on every launch. Reads leave the line shared.
    private let value = Atomic<Int32>(0)

    /// Keeps the first fault.
    func set(_ result: CUresult) {
        _ = value.compareExchange(expected: 0, desired: Int32(result.rawValue), ordering: .acquiringAndReleasing)
    }

    var isSet: Bool { value.load(ordering: .acquiring) != 0 }

    /// The fault, if there was one.
    var fault: CUresult? {
        let v = value.load(ordering: .acquiring)
        return v == 0 ? nil : CUresult(rawValue: UInt32(v))
    }

    func check() throws(Failure) {
        if let fault { throw Failure(fault) }
    }
}
