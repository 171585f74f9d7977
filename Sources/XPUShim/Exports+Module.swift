#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
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
    let request = ModuleLoadRequest(image: Array(UnsafeRawBufferPointer(start: image, count: size)))
    let target = Target.current
    return Shim.perform(request, on: target) { lane, reply in
        let loaded = lane.tagged(reply.module)
        var functions: [UInt64] = []
        for kernel in reply.kernels {
            let function = lane.tagged(kernel.function)
            lane.kernels[function] = KernelInfo(
                module: loaded, name: strdup(kernel.name), parameters: kernel.parameters,
                maxThreadsPerBlock: kernel.maxThreadsPerBlock, staticSharedBytes: kernel.staticSharedBytes)
            lane.handles.insert(.function, function, context: target.context)
            functions.append(function)
        }
        lane.moduleKernels[loaded] = functions
        lane.handles.insert(.module, loaded, context: target.context)
        module.pointee = CUmodule(bitPattern: UInt(loaded))
    }
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
    // A launch is fire-and-forget: everything the driver checks at the call is checked here,
    // under the same hold of the lock of the function's lane as the send.
    let target = Target(.function, f)
    return target.locked { lane in
        launch(f, (gridDimX, gridDimY, gridDimZ), (blockDimX, blockDimY, blockDimZ), sharedMemBytes, hStream, kernelParams, extra, on: target, lane)
    }
}

private func launch(
    _ f: CUfunction?, _ grid: (UInt32, UInt32, UInt32), _ block: (UInt32, UInt32, UInt32), _ sharedMemBytes: UInt32,
    _ hStream: CUstream?, _ kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, on target: Target, _ lane: Lane
) -> CUresult {
    if let refusal = lane.requireContext() { return refusal }
    let context = xpu_context_current()
    let function = Shim.id(f)
    let stream = Shim.id(hStream)
    let checked: CheckedLaunch
    if let last = lane.checkedLaunch, last.function == function, last.stream == stream, last.context == context,
        last.removals == lane.handles.removals
    {
        checked = last  // the loop of launches: nothing it relied on has gone since
    } else {
        // The function must belong to the current context (so it lives on this lane too).
        guard let kernel = lane.kernels[function], lane.handles.context(of: .function, function) == context else {
            return CUDA_ERROR_INVALID_HANDLE
        }
        guard stream <= 2 || lane.handles.context(of: .stream, stream) == context else { return CUDA_ERROR_INVALID_HANDLE }
        switch LaunchLimits.of(device: lane.contextDevices[context] ?? 0) {
        case .success(let limits):
            checked = CheckedLaunch(
                function: function, stream: stream, context: context, removals: lane.handles.removals, kernel: kernel,
                limits: limits)
            lane.checkedLaunch = checked
        case .failure(let failure):
            return failure.status
        }
    }
    let (kernel, limits) = (checked.kernel, checked.limits)
    guard limits.admit(grid: grid, block: block, sharedMemBytes: sharedMemBytes, kernel: kernel) else {
        return CUDA_ERROR_INVALID_VALUE
    }
    guard let arguments = KernelArguments(kernel, kernelParams: kernelParams, extra: extra) else {
        return CUDA_ERROR_INVALID_VALUE
    }
    let (wireContext, wireFunction, wireStream) = (Lanes.wire(context), Lanes.wire(function), Lanes.wire(stream))
    if Lane.strict {
        return Shim.post(
            LaunchKernelRequest(
                function: wireFunction, gridX: grid.0, gridY: grid.1, gridZ: grid.2, blockX: block.0, blockY: block.1,
                blockZ: block.2, sharedMemBytes: sharedMemBytes, stream: wireStream, parameters: arguments.packed()),
            on: lane, context: context)
    }
    // The frame goes into the send queue with the arguments copied in place (no allocation).
    do {
        _ = try lane.channel()
        try lane.postFrame { writer, sequence in
            LaunchKernelRequest.appendFrame(
                to: &writer, flags: .noReply, sequence: sequence, context: wireContext, function: wireFunction, grid: grid,
                block: block, sharedMemBytes: sharedMemBytes, stream: wireStream, parameterBytes: arguments.count,
                fillParameters: arguments.write)
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

/// What a launch checked about its function, stream and context, kept by the lane for the next
/// launch of the same three: valid while no handle of the lane has been removed.
struct CheckedLaunch {
    var function: UInt64
    var stream: UInt64
    var context: UInt64
    var removals: UInt64
    var kernel: KernelInfo
    var limits: LaunchLimits
}

/// A launch's arguments and the kernel's parameter layout from the server: `write` packs them
/// into a parameter block wherever the caller wants it (the send queue, in place).
struct KernelArguments {
    let kernel: KernelInfo
    let kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    /// The `extra` buffer (CU_LAUNCH_PARAM_BUFFER_POINTER/SIZE), when given instead.
    let buffer: UnsafeRawBufferPointer?

    /// nil when the arguments are malformed (both forms, neither while the kernel has
    /// parameters, a NULL argument pointer, a malformed or oversized `extra`).
    init?(_ kernel: KernelInfo, kernelParams: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, extra: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) {
        self.kernel = kernel
        self.kernelParams = kernelParams
        if let kernelParams {
            guard extra == nil else { return nil }
            for index in kernel.parameters.indices where kernelParams[index] == nil { return nil }
            buffer = nil
            return
        }
        guard let extra else {
            guard kernel.parameters.isEmpty else { return nil }
            buffer = nil
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
        buffer = UnsafeRawBufferPointer(start: pointer, count: size)
    }

    /// Bytes of the parameter block.
    var count: Int { buffer?.count ?? kernel.parameterBytes }

    func write(_ block: UnsafeMutableRawBufferPointer) {
        if let buffer {
            block.copyMemory(from: buffer)
            return
        }
        guard let kernelParams else { return }
        for (index, parameter) in kernel.parameters.enumerated() {
            (block.baseAddress! + Int(parameter.offset)).copyMemory(from: kernelParams[index]!, byteCount: Int(parameter.size))
        }
    }

    /// The block as an array (for strict mode, which sends a whole request).
    func packed() -> [UInt8] {
        var block = [UInt8](repeating: 0, count: count)
        block.withUnsafeMutableBytes { write($0) }
        return block
    }
}

/// How big a module image is: CUDA passes only a pointer, so the format tells the length.
enum ModuleImage {
    /// The image's byte count, or nil when it exceeds what one frame may carry.
    static func size(of image: UnsafeRawPointer) -> Int? {
        let size: Int
        let magic = image.loadUnaligned(as: UInt32.self)
        if magic == 0xBA55_ED50 {
            // Fatbinary container: u32 magic, u16 version, u16 header size, u64 payload size.
            size = Int(image.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
                + Int(image.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
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

    func admit(grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32), sharedMemBytes: UInt32, kernel: KernelInfo) -> Bool {
        let threads = UInt64(block.0) * UInt64(block.1) * UInt64(block.2)
        return grid.0 >= 1 && grid.1 >= 1 && grid.2 >= 1 && block.0 >= 1 && block.1 >= 1 && block.2 >= 1
            && grid.0 <= self.grid.0 && grid.1 <= self.grid.1 && grid.2 <= self.grid.2
            && block.0 <= self.block.0 && block.1 <= self.block.1 && block.2 <= self.block.2
            && threads <= UInt64(min(maxThreadsPerBlock, kernel.maxThreadsPerBlock))
            && UInt64(kernel.staticSharedBytes) + UInt64(sharedMemBytes) <= UInt64(sharedBytesPerBlock)
    }
}
