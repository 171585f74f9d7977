#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPURuntimeSupport
import CXPUShimSupport
import XPUProtocol

// A module-load reply carries every kernel's name and parameter layout: cuModuleGetFunction and
// the function queries are answered here, and cuLaunchKernel packs kernelParams with no extra
// round trip.

@c @implementation public func cuModuleLoadData(_ module: UnsafeMutablePointer<CUmodule?>?, _ image: UnsafeRawPointer?) -> CUresult {
    guard let module, let image else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireContext() { return refusal }
    guard let size = ModuleImage.size(of: image) else {
        ShimLog.log(.warn, "module image larger than \(ProtocolLimits.maximumBulkBytes) bytes is not supported")
        return CUDA_ERROR_NOT_SUPPORTED
    }
    let bytes = UnsafeRawBufferPointer(start: image, count: size)
    let target = Target.current
    // A server with a module cache is first asked for the image by its SHA-256; the bytes travel
    // only when it does not have them (proto/PROTOCOL.md, "Module cache"). Without libcrypto the
    // image is sent whole, as to a server without the cache.
    if size >= ModuleImage.cacheThreshold, target.lane?.locked({ $0.moduleCache }) == true,
        let digest = ModuleImage.digest(of: bytes)
    {
        let status = Shim.perform(ModuleLoadCachedRequest(digest: digest), on: target) { lane, reply in
            adoptModule(reply.module, reply.kernels, into: module, lane: lane, context: target.context)
        }
        guard status == CUDA_ERROR_NOT_FOUND else { return status }
    }
    return Shim.perform(ModuleLoadRequest(image: Array(bytes)), on: target) { lane, reply in
        adoptModule(reply.module, reply.kernels, into: module, lane: lane, context: target.context)
    }
}

/// Records a loaded module's kernels (lane lock held) and hands the application its handle.
private func adoptModule(
    _ moduleID: UInt64, _ kernels: [Kernel], into module: UnsafeMutablePointer<CUmodule?>, lane: Lane, context: UInt64
) {
    let loaded = lane.tagged(moduleID)
    var functions: [UInt64] = []
    for kernel in kernels {
        let function = lane.tagged(kernel.function)
        lane.kernels[function] = KernelInfo(
            module: loaded, name: strdup(kernel.name), parameters: kernel.parameters,
            maxThreadsPerBlock: kernel.maxThreadsPerBlock, staticSharedBytes: kernel.staticSharedBytes)
        lane.handles.insert(.function, function, context: context)
        functions.append(function)
    }
    lane.moduleKernels[loaded] = functions
    lane.handles.insert(.module, loaded, context: context)
    module.pointee = CUmodule(bitPattern: UInt(loaded))
}

/// JIT options only shape compilation and its logs; the image is loaded as by cuModuleLoadData.
@c @implementation public func cuModuleLoadDataEx(
    _ module: UnsafeMutablePointer<CUmodule?>?, _ image: UnsafeRawPointer?, _ numOptions: UInt32,
    _ options: UnsafeMutablePointer<CUjit_option>?, _ optionValues: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> CUresult {
    cuModuleLoadData(module, image)
}

@c @implementation public func cuModuleGetFunction(
    _ hfunc: UnsafeMutablePointer<CUfunction?>?, _ hmod: CUmodule?, _ name: UnsafePointer<CChar>?
) -> CUresult {
    guard let hfunc, let name else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireInitialized() { return refusal }
    return onLane(of: hmod) { lane in
        guard let functions = lane.moduleKernels[Shim.id(hmod)] else { return CUDA_ERROR_INVALID_HANDLE }
        guard let match = functions.first(where: { function in
            guard let kernel = lane.kernels[function] else { return false }
            return strcmp(kernel.name, name) == 0
        }) else {
            return CUDA_ERROR_NOT_FOUND
        }
        hfunc.pointee = CUfunction(bitPattern: UInt(match))
        return CUDA_SUCCESS
    }
}

@c @implementation public func cuModuleGetFunctionCount(_ count: UnsafeMutablePointer<UInt32>?, _ mod: CUmodule?) -> CUresult {
    guard let count else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireInitialized() { return refusal }
    return onLane(of: mod) { lane in
        guard let functions = lane.moduleKernels[Shim.id(mod)] else { return CUDA_ERROR_INVALID_HANDLE }
        count.pointee = UInt32(functions.count)
        return CUDA_SUCCESS
    }
}

@c @implementation public func cuModuleEnumerateFunctions(
    _ functions: UnsafeMutablePointer<CUfunction?>?, _ numFunctions: UInt32, _ mod: CUmodule?
) -> CUresult {
    guard let functions else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireInitialized() { return refusal }
    return onLane(of: mod) { lane in
        guard let known = lane.moduleKernels[Shim.id(mod)] else { return CUDA_ERROR_INVALID_HANDLE }
        guard Int(numFunctions) >= known.count else { return CUDA_ERROR_INVALID_VALUE }
        for (index, function) in known.enumerated() { functions[index] = CUfunction(bitPattern: UInt(function)) }
        return CUDA_SUCCESS
    }
}

@c @implementation public func cuFuncGetName(_ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ hfunc: CUfunction?) -> CUresult {
    guard let name else { return CUDA_ERROR_INVALID_VALUE }
    if let refusal = requireInitialized() { return refusal }
    return onLane(of: hfunc) { lane in
        guard let kernel = lane.kernels[Shim.id(hfunc)] else { return CUDA_ERROR_INVALID_HANDLE }
        name.pointee = UnsafePointer(kernel.name)
        return CUDA_SUCCESS
    }
}

@c @implementation public func cuFuncGetParamInfo(
    _ function: CUfunction?, _ paramIndex: Int, _ paramOffset: UnsafeMutablePointer<Int>?, _ paramSize: UnsafeMutablePointer<Int>?
) -> CUresult {
    if let refusal = requireInitialized() { return refusal }
    return onLane(of: function) { lane in
        guard let kernel = lane.kernels[Shim.id(function)] else { return CUDA_ERROR_INVALID_HANDLE }
        guard paramIndex >= 0, paramIndex < kernel.parameters.count else { return CUDA_ERROR_INVALID_VALUE }
        paramOffset?.pointee = Int(kernel.parameters[paramIndex].offset)
        paramSize?.pointee = Int(kernel.parameters[paramIndex].size)
        return CUDA_SUCCESS
    }
}

@c @implementation public func cuLaunchKernel(
    _ f: CUfunction?, _ gridDimX: UInt32, _ gridDimY: UInt32, _ gridDimZ: UInt32,
    _ blockDimX: UInt32, _ blockDimY: UInt32, _ blockDimZ: UInt32, _ sharedMemBytes: UInt32, _ hStream: CUstream?,
    _ kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> CUresult {
    // Managed and mapped memory the kernel may read holds the host's writes first (coherent.c).
    xpu_coherent_push()
    // A launch is fire-and-forget: everything the driver checks at the call is checked here,
    // under the same hold of the lock of the function's lane as the send. A handle that names no
    // lane goes where `Target` sends it (the current context's lane, which answers as CUDA does).
    let grid = (gridDimX, gridDimY, gridDimZ)
    let block = (blockDimX, blockDimY, blockDimZ)
    guard let lane = Lanes.unretainedLane(of: Shim.id(f)) else {
        return Target(.function, f).locked { lane in
            launch(f, grid, block, sharedMemBytes, hStream, kernelParams, extra, on: lane)
        }
    }
    return lane._withUnsafeGuaranteedRef { lane in
        lane.locked { lane in launch(f, grid, block, sharedMemBytes, hStream, kernelParams, extra, on: lane) }
    }
}

/// Checks a launch and queues its frame. Lock held. A launch of the same function on the same
/// stream and context as the lane's last one (the loop of launches) reuses that launch's checks
/// while no handle of the lane has been removed (`LaunchPlan`).
private func launch(
    _ f: CUfunction?, _ grid: (UInt32, UInt32, UInt32), _ block: (UInt32, UInt32, UInt32), _ sharedMemBytes: UInt32,
    _ hStream: CUstream?, _ kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, on lane: Lane
) -> CUresult {
    // CUDA's order: an unusable session first, then a thread without a context.
    if let refusal = lane.refusal() { return refusal }
    let context = xpu_context_current()
    guard context != 0 else { return CUDA_ERROR_INVALID_CONTEXT }
    let function = Shim.id(f)
    let stream = Shim.id(hStream)
    let plan: Unmanaged<LaunchPlan>
    if let last = lane.lastLaunch, last._withUnsafeGuaranteedRef({
        $0.function == function && $0.stream == stream && $0.context == context && $0.removals == lane.handles.removals
    }) {
        plan = last
    } else {
        // The function must belong to the current context (so it lives on this lane too).
        guard let kernel = lane.kernels[function], lane.handles.context(of: .function, function) == context else {
            return CUDA_ERROR_INVALID_HANDLE
        }
        guard stream <= 2 || lane.handles.context(of: .stream, stream) == context else { return CUDA_ERROR_INVALID_HANDLE }
        switch LaunchLimits.of(device: lane.contextDevices[context] ?? 0) {
        case .success(let limits):
            plan = lane.remember(
                LaunchPlan(
                    function: function, stream: stream, context: context, removals: lane.handles.removals, kernel: kernel,
                    limits: limits))
        case .failure(let failure):
            return failure.status
        }
    }
    return plan._withUnsafeGuaranteedRef { plan in
        send(plan, grid, block, sharedMemBytes, kernelParams, extra, context: context, on: lane)
    }
}

/// Queues a checked launch's frame (or, in strict mode, sends it and waits). Lock held.
@inline(__always)
private func send(
    _ plan: LaunchPlan, _ grid: (UInt32, UInt32, UInt32), _ block: (UInt32, UInt32, UInt32), _ sharedMemBytes: UInt32,
    _ kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, context: UInt64, on lane: Lane
) -> CUresult {
    guard plan.admits(grid: grid, block: block, sharedMemBytes: sharedMemBytes) else { return CUDA_ERROR_INVALID_VALUE }
    guard let arguments = KernelArguments(plan, kernelParams: kernelParams, extra: extra) else {
        return CUDA_ERROR_INVALID_VALUE
    }
    if lane.isStrict {
        return Shim.post(
            LaunchKernelRequest(
                function: plan.wireFunction, gridX: grid.0, gridY: grid.1, gridZ: grid.2, blockX: block.0, blockY: block.1,
                blockZ: block.2, sharedMemBytes: sharedMemBytes, stream: plan.wireStream,
                parameters: arguments.packed(plan)),
            on: lane, context: context)
    }
    // The frame goes into the send queue with the arguments copied in place (no allocation).
    do {
        try lane.postFrame { writer, sequence in
            LaunchKernelRequest.appendFrame(
                to: &writer, flags: .noReply, sequence: sequence, context: plan.wireContext, function: plan.wireFunction,
                grid: grid, block: block, sharedMemBytes: sharedMemBytes, stream: plan.wireStream,
                parameterBytes: arguments.count(plan)
            ) { block in arguments.write(block, plan) }
        }
        return CUDA_SUCCESS
    } catch {
        return error.status
    }
}

@c @implementation public func cuLaunchKernel_ptsz(
    _ f: CUfunction?, _ gridDimX: UInt32, _ gridDimY: UInt32, _ gridDimZ: UInt32,
    _ blockDimX: UInt32, _ blockDimY: UInt32, _ blockDimZ: UInt32, _ sharedMemBytes: UInt32, _ hStream: CUstream?,
    _ kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> CUresult {
    cuLaunchKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, kernelParams, extra)
}

/// What a launch checked about its function, stream and context, and what its frame needs from
/// them, kept by the lane for the next launch of the same three: valid while no handle of the
/// lane has been removed. A class, so that reusing it copies one reference, not the kernel's
/// layout (copying structs that hold arrays retains each array on every copy, per launch).
final class LaunchPlan {
    let function: UInt64
    let stream: UInt64
    let context: UInt64
    let removals: UInt64
    let parameters: [KernelParameter]
    /// `parameters.count`, read on every launch without touching the array.
    let parameterCount: Int
    /// Bytes of the packed parameter block.
    let parameterBytes: Int
    let maxThreadsPerBlock: UInt32
    let staticSharedBytes: UInt32
    let limits: LaunchLimits
    /// The handles as they travel to the server.
    let wireFunction: UInt64
    let wireStream: UInt64
    let wireContext: UInt64

    init(function: UInt64, stream: UInt64, context: UInt64, removals: UInt64, kernel: KernelInfo, limits: LaunchLimits) {
        self.function = function
        self.stream = stream
        self.context = context
        self.removals = removals
        self.parameters = kernel.parameters
        self.parameterCount = kernel.parameters.count
        self.parameterBytes = kernel.parameterBytes
        self.maxThreadsPerBlock = kernel.maxThreadsPerBlock
        self.staticSharedBytes = kernel.staticSharedBytes
        self.limits = limits
        self.wireFunction = Lanes.wire(function)
        self.wireStream = Lanes.wire(stream)
        self.wireContext = Lanes.wire(context)
    }

    /// The device's and the kernel's limits on the launch's shape and shared memory.
    func admits(grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32), sharedMemBytes: UInt32) -> Bool {
        let threads = UInt64(block.0) * UInt64(block.1) * UInt64(block.2)
        return grid.0 >= 1 && grid.1 >= 1 && grid.2 >= 1 && block.0 >= 1 && block.1 >= 1 && block.2 >= 1
            && grid.0 <= limits.grid.0 && grid.1 <= limits.grid.1 && grid.2 <= limits.grid.2
            && block.0 <= limits.block.0 && block.1 <= limits.block.1 && block.2 <= limits.block.2
            && threads <= UInt64(min(limits.maxThreadsPerBlock, maxThreadsPerBlock))
            && UInt64(staticSharedBytes) + UInt64(sharedMemBytes) <= UInt64(limits.sharedBytesPerBlock)
    }
}

/// How a launch passes its arguments: `kernelParams` (a pointer per parameter, laid out by the
/// kernel's layout from the server; nil for a kernel without parameters) or an `extra` buffer
/// (CU_LAUNCH_PARAM_BUFFER_POINTER/SIZE) copied as it is. Trivial to copy and to drop: the launch
/// path keeps it in registers.
enum KernelArguments {
    case pointers(UnsafeMutablePointer<UnsafeMutableRawPointer?>?)
    case buffer(UnsafeRawBufferPointer)

    /// nil when the arguments are malformed: both forms, neither while the kernel has
    /// parameters, a NULL argument pointer, a malformed or oversized `extra`.
    init?(_ plan: borrowing LaunchPlan, kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) {
        if let kernelParams {
            guard extra == nil else { return nil }
            var index = 0
            while index < plan.parameterCount {
                if kernelParams[index] == nil { return nil }
                index += 1
            }
            self = .pointers(kernelParams)
            return
        }
        guard let extra else {
            guard plan.parameterCount == 0 else { return nil }
            self = .pointers(nil)
            return
        }
        // extra: key/value pointer pairs ending with CU_LAUNCH_PARAM_END.
        var pointer: UnsafeRawPointer?
        var size: Int?
        var index = 0
        while index < 64, let key = extra[index], UInt(bitPattern: key) != 0 {
            let value = extra[index + 1]
            switch UInt(bitPattern: key) {
            case 1: pointer = value.map(UnsafeRawPointer.init)
            case 2: size = value?.load(as: Int.self)
            default: return nil
            }
            index += 2
        }
        guard let pointer, let size, size >= 0, size <= ProtocolLimits.maximumKernelParameterBytes else { return nil }
        self = .buffer(UnsafeRawBufferPointer(start: pointer, count: size))
    }

    /// Bytes of the parameter block.
    func count(_ plan: LaunchPlan) -> Int {
        switch self {
        case .pointers: plan.parameterBytes
        case .buffer(let buffer): buffer.count
        }
    }

    /// Packs the parameter block into `block` (`count` bytes).
    func write(_ block: UnsafeMutableRawBufferPointer, _ plan: LaunchPlan) {
        switch self {
        case .buffer(let buffer):
            block.copyMemory(from: buffer)
        case .pointers(let kernelParams):
            guard let kernelParams else { return }
            plan.parameters.withUnsafeBufferPointer { parameters in
                for index in 0..<parameters.count {
                    let parameter = parameters[index]
                    (block.baseAddress! + Int(parameter.offset)).copyMemory(
                        from: kernelParams[index]!, byteCount: Int(parameter.size))
                }
            }
        }
    }

    /// The block as an array (for strict mode, which sends a whole request).
    func packed(_ plan: LaunchPlan) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: count(plan))
        block.withUnsafeMutableBytes { write($0, plan) }
        return block
    }
}

/// How big a module image is: CUDA passes only a pointer, so the format tells the length.
enum ModuleImage {
    /// Images at least this large are named by digest first where the server caches modules;
    /// smaller ones cost less to send than the extra round trip of a miss.
    static let cacheThreshold = 4096

    /// The image's SHA-256, or nil (logged once) when OpenSSL's libcrypto cannot be loaded.
    static func digest(of image: UnsafeRawBufferPointer) -> [UInt8]? {
        var digest = [UInt8](repeating: 0, count: 32)
        guard xpu_sha256(image.baseAddress, image.count, &digest) == 0 else {
            if let reason = xpu_digest_unavailable_first() {
                ShimLog.log(.warn, "module cache not used (\(String(cString: reason))): module images are sent whole")
            }
            return nil
        }
        return digest
    }

    /// The image's byte count, or nil when it exceeds what one frame may carry.
    static func size(of image: UnsafeRawPointer) -> Int? {
        let size: Int
        let magic = image.loadUnaligned(as: UInt32.self)
        if magic == 0xBA55_ED50 {
            // Fatbinary: its containers back to back (CXPURuntimeSupport/fatbinary.c).
            size = xpu_fatbinary_extent(image)
        } else if magic == 0x464C_457F {
            // ELF (cubin): the section header table ends the file.
            let sectionHeaders = Int(image.loadUnaligned(fromByteOffset: 0x28, as: UInt64.self))
            let entrySize = Int(image.loadUnaligned(fromByteOffset: 0x3A, as: UInt16.self))
            let count = Int(image.loadUnaligned(fromByteOffset: 0x3C, as: UInt16.self))
            size = sectionHeaders + entrySize * count
        } else {
            // PTX text, NUL-terminated; the terminator travels too.
            size = strlen(image.assumingMemoryBound(to: CChar.self)) + 1
        }
        return size <= ProtocolLimits.maximumBulkBytes ? size : nil
    }
}

/// Runs `body` on the lane a module or function handle belongs to (lock held); a handle that
/// names no lane is invalid.
private func onLane(of handle: OpaquePointer?, _ body: (Lane) -> CUresult) -> CUresult {
    guard let lane = Lanes.lane(of: Shim.id(handle)) else { return CUDA_ERROR_INVALID_HANDLE }
    return lane.locked(body)
}

/// A device's launch limits, read once per device (device attributes never change).
struct LaunchLimits {
    var maxThreadsPerBlock: UInt32
    var block: (UInt32, UInt32, UInt32)
    var grid: (UInt32, UInt32, UInt32)
    var sharedBytesPerBlock: UInt32

    /// By the application's device ordinal. Guarded by the registry lock.
    nonisolated(unsafe) static var known: [Int32: LaunchLimits] = [:]

    static func of(device: Int32) -> Result<LaunchLimits, ShimFailure> {
        xpu_registry_lock()
        let cached = known[device]
        xpu_registry_unlock()
        if let cached { return .success(cached) }
        let attributes: [CUdevice_attribute] = [
            CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y,
            CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y,
            CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
        ]
        var values: [UInt32] = []
        for attribute in attributes {
            var value: Int32 = 0
            let status = cuDeviceGetAttribute(&value, attribute, device)
            guard status == CUDA_SUCCESS else { return .failure(ShimFailure(status)) }
            values.append(UInt32(clamping: value))
        }
        let limits = LaunchLimits(
            maxThreadsPerBlock: values[0], block: (values[1], values[2], values[3]), grid: (values[4], values[5], values[6]),
            sharedBytesPerBlock: values[7])
        xpu_registry_lock()
        known[device] = limits
        xpu_registry_unlock()
        return .success(limits)
    }
}
