import CXPUDriver
import CXPURuntimeSupport
import Glibc
import XPUPTX

/// A kernel of a loaded module, as the application names it.
final class Function: @unchecked Sendable {
    let handle: UInt
    let contextHandle: UInt
    let kernel: PTXKernel
    /// Device addresses of the module's variables, by `PTXModule.variables` index.
    let variableAddresses: [UInt64]
    let ptxVersion: Int32
    let constBytes: Int
    /// The name as a C string, valid while the function (and so its module) lives.
    let cName: UnsafeMutablePointer<CChar>
    /// Whether the kernel calls printf: its launches then get the context's FIFO.
    let prints: Bool

    init(handle: UInt, contextHandle: UInt, kernel: PTXKernel, variableAddresses: [UInt64], ptxVersion: Int32, constBytes: Int) {
        self.handle = handle
        self.contextHandle = contextHandle
        self.kernel = kernel
        self.variableAddresses = variableAddresses
        self.ptxVersion = ptxVersion
        self.constBytes = constBytes
        self.cName = strdup(kernel.name)!
        self.prints = kernel.prints
    }

    deinit { free(cName) }
}

/// A loaded module: its kernels and the device memory of its variables.
final class Module: @unchecked Sendable {
    let handle: UInt
    let context: Context
    let functions: [Function]
    let globals: [String: (address: UInt64, size: Int)]

    init(handle: UInt, context: Context, functions: [Function], globals: [String: (address: UInt64, size: Int)]) {
        self.handle = handle
        self.context = context
        self.functions = functions
        self.globals = globals
    }

    func releaseMemory() {
        for (_, g) in globals { try? context.device.memory.free(g.address) }
    }
}

func lookupModule(_ hmod: CUmodule?) throws(Failure) -> Module {
    let handle = UInt(handle: hmod)
    let module = try driver.withLock { registry throws(Failure) -> Module? in
        guard registry.initialized else { throw Failure(CUDA_ERROR_NOT_INITIALIZED) }
        return registry.modules[handle]
    }
    guard let module else { throw Failure(CUDA_ERROR_INVALID_HANDLE) }
    return module
}

func lookupFunction(_ hfunc: CUfunction?) throws(Failure) -> Function {
    let handle = UInt(handle: hfunc)
    let function = try driver.withLock { registry throws(Failure) -> Function? in
        guard registry.initialized else { throw Failure(CUDA_ERROR_NOT_INITIALIZED) }
        return registry.functions[handle]
    }
    guard let function else { throw Failure(CUDA_ERROR_INVALID_HANDLE) }
    return function
}

/// `__fatBinC_Wrapper_t`, which points at a fatbinary (what host code registers with cudart).
private let fatbinWrapperMagic: UInt32 = 0x4662_43B1

/// The PTX text of an image: NUL-terminated PTX, a fatbinary with a PTX entry, or a fatbinary
/// wrapper pointing at one. Cubins (ELF) cannot run here.
func moduleSource(_ image: UnsafeRawPointer) throws(Failure) -> String {
    let magic = image.loadUnaligned(as: UInt32.self)
    if magic == fatbinWrapperMagic, let inner = image.loadUnaligned(fromByteOffset: 8, as: UnsafeRawPointer?.self) {
        // A wrapper registers one translation unit: its container only, not the ones after it.
        xpu_fatbinary_single_begin()
        defer { xpu_fatbinary_single_end() }
        return try moduleSource(inner)
    }
    if magic == FatBinary.magic {
        let size = xpu_fatbinary_extent(image)
        guard size > 0 else { throw Failure(CUDA_ERROR_INVALID_IMAGE) }
        let fatbin: FatBinary
        do throws(FatBinary.FormatError) {
            fatbin = try FatBinary(UnsafeRawBufferPointer(start: image, count: size))
        } catch {
            log("cuModuleLoadData: \(error)")
            throw Failure(CUDA_ERROR_INVALID_IMAGE)
        }
        guard let entry = fatbin.ptx(forArchitecture: Device.computeCapability) else {
            let available = fatbin.ptxArchitectures
            if available.isEmpty {
                log("fatbinary has no PTX entry (only cubins, which cannot run on the simulated device); build with -gencode ...,code=compute_XX")
            } else {
                log(
                    "fatbinary has PTX only for compute_\(available.map(String.init).joined(separator: ", compute_")), above the simulated device's compute_\(Device.computeCapability); build with -gencode ...,code=compute_XX for XX <= \(Device.computeCapability)"
                )
            }
            throw Failure(CUDA_ERROR_NO_BINARY_FOR_GPU)
        }
        if entry.compression == .zstd, !Zstd.isAvailable {
            log("fatbinary PTX is zstd-compressed and libzstd.so.1 is not installed; install it or build with -no-compress or -compress-mode=speed")
            throw Failure(CUDA_ERROR_INVALID_IMAGE)
        }
        do throws(FatBinary.FormatError) {
            return try entry.text(zstd: Zstd.decode)
        } catch {
            log("cuModuleLoadData: \(error)")
            throw Failure(CUDA_ERROR_INVALID_IMAGE)
        }
    }
    if magic == 0x464C_457F {
        log("cubin (ELF) images cannot run on the simulated device; load PTX text")
        throw Failure(CUDA_ERROR_INVALID_IMAGE)
    }
    return String(cString: image.assumingMemoryBound(to: CChar.self))
}

func loadModule(_ module: UnsafeMutablePointer<CUmodule?>?, _ image: UnsafeRawPointer?) -> CUresult {
    api { () throws(Failure) in
        let context = try currentContext()
        guard let module, let image else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let source = try moduleSource(image)
        let ptx: PTXModule
        do {
            ptx = try PTXModule(source: source)
        } catch {
            log("cuModuleLoadData: \(error)")
            throw Failure(CUDA_ERROR_INVALID_PTX)
        }
        // Module variables get device memory, initialized from their PTX initializers.
        var addresses: [UInt64] = []
        var globals: [String: (address: UInt64, size: Int)] = [:]
        var constBytes = 0
        for v in ptx.variables {
            let allocation: Allocation
            do throws(Failure) {
                allocation = try context.device.memory.allocate(max(v.size, 1), context: context.handle)
            } catch {
                for (_, g) in globals { try? context.device.memory.free(g.address) }
                throw error
            }
            v.initialBytes.withUnsafeBytes { raw in
                if let base = raw.baseAddress { allocation.pointer.copyMemory(from: base, byteCount: min(raw.count, v.size)) }
            }
            addresses.append(allocation.base)
            globals[v.name] = (allocation.base, v.size)
            if v.space == .const { constBytes += v.size }
        }
        let version = Int32(ptx.version.major * 10 + ptx.version.minor)
        let loaded = driver.withLock { registry in
            let functions = ptx.kernels.map { k in
                Function(
                    handle: registry.mintHandle(), contextHandle: context.handle, kernel: k, variableAddresses: addresses,
                    ptxVersion: version, constBytes: constBytes)
            }
            let m = Module(handle: registry.mintHandle(), context: context, functions: functions, globals: globals)
            registry.modules[m.handle] = m
            for f in functions { registry.functions[f.handle] = f }
            return m
        }
        context.members.withLock { $0.modules.append(loaded.handle) }
        module.pointee = loaded.handle.opaque
    }
}

@c @implementation public func cuModuleLoadData(_ module: UnsafeMutablePointer<CUmodule?>?, _ image: UnsafeRawPointer?) -> CUresult {
    loadModule(module, image)
}

@c @implementation public func cuModuleLoadDataEx(_ module: UnsafeMutablePointer<CUmodule?>?, _ image: UnsafeRawPointer?, _ numOptions: UInt32, _ options: UnsafeMutablePointer<CUjit_option>?, _ optionValues: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> CUresult {
    loadModule(module, image)
}

@c @implementation public func cuModuleUnload(_ hmod: CUmodule?) -> CUresult {
    api { () throws(Failure) in
        try initializedRegistry()
        let handle = UInt(handle: hmod)
        guard let module = driver.withLock({ registry -> Module? in
            guard let m = registry.modules.removeValue(forKey: handle) else { return nil }
            for f in m.functions { registry.functions[f.handle] = nil }
            return m
        }) else { throw Failure(CUDA_ERROR_INVALID_HANDLE) }
        module.context.members.withLock { $0.modules.removeAll { $0 == handle } }
        module.releaseMemory()
    }
}

@c @implementation public func cuModuleGetFunction(_ hfunc: UnsafeMutablePointer<CUfunction?>?, _ hmod: CUmodule?, _ name: UnsafePointer<CChar>?) -> CUresult {
    api { () throws(Failure) in
        let module = try lookupModule(hmod)
        guard let hfunc, let name else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let wanted = String(cString: name)
        guard let f = module.functions.first(where: { $0.kernel.name == wanted }) else { throw Failure(CUDA_ERROR_NOT_FOUND) }
        hfunc.pointee = f.handle.opaque
    }
}

@c @implementation public func cuModuleGetGlobal_v2(_ dptr: UnsafeMutablePointer<CUdeviceptr>?, _ bytes: UnsafeMutablePointer<Int>?, _ hmod: CUmodule?, _ name: UnsafePointer<CChar>?) -> CUresult {
    api { () throws(Failure) in
        let module = try lookupModule(hmod)
        guard let name else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        guard let g = module.globals[String(cString: name)] else { throw Failure(CUDA_ERROR_NOT_FOUND) }
        dptr?.pointee = CUdeviceptr(g.address)
        bytes?.pointee = g.size
    }
}

@c @implementation public func cuModuleGetFunctionCount(_ count: UnsafeMutablePointer<UInt32>?, _ mod: CUmodule?) -> CUresult {
    api { () throws(Failure) in
        let module = try lookupModule(mod)
        guard let count else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        count.pointee = UInt32(module.functions.count)
    }
}

@c @implementation public func cuModuleEnumerateFunctions(_ functions: UnsafeMutablePointer<CUfunction?>?, _ numFunctions: UInt32, _ mod: CUmodule?) -> CUresult {
    api { () throws(Failure) in
        let module = try lookupModule(mod)
        guard let functions else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        for (i, f) in module.functions.prefix(Int(numFunctions)).enumerated() { functions[i] = f.handle.opaque }
    }
}

@c @implementation public func cuFuncGetName(_ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ hfunc: CUfunction?) -> CUresult {
    api { () throws(Failure) in
        let f = try lookupFunction(hfunc)
        guard let name else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        name.pointee = UnsafePointer(f.cName)
    }
}

@c @implementation public func cuFuncGetParamInfo(_ func: CUfunction?, _ paramIndex: Int, _ paramOffset: UnsafeMutablePointer<Int>?, _ paramSize: UnsafeMutablePointer<Int>?) -> CUresult {
    api { () throws(Failure) in
        let f = try lookupFunction(`func`)
        let params = f.kernel.parameters
        guard paramIndex >= 0, paramIndex < params.count else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        paramOffset?.pointee = params[paramIndex].offset
        paramSize?.pointee = params[paramIndex].size
    }
}

@c @implementation public func cuFuncGetAttribute(_ pi: UnsafeMutablePointer<Int32>?, _ attrib: CUfunction_attribute, _ hfunc: CUfunction?) -> CUresult {
    api { () throws(Failure) in
        let f = try lookupFunction(hfunc)
        guard let pi else { throw Failure(CUDA_ERROR_INVALID_VALUE) }
        let k = f.kernel
        switch attrib {
        case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: pi.pointee = Int32(min(k.maxThreadsPerBlock, 1024))
        case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: pi.pointee = Int32(k.staticSharedSize)
        case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: pi.pointee = Int32(f.constBytes)
        case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: pi.pointee = Int32(k.localSize)
        case CU_FUNC_ATTRIBUTE_NUM_REGS: pi.pointee = Int32(min(k.declaredRegisters, 255))
        case CU_FUNC_ATTRIBUTE_PTX_VERSION: pi.pointee = f.ptxVersion
        case CU_FUNC_ATTRIBUTE_BINARY_VERSION: pi.pointee = 90
        case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: pi.pointee = 0
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: pi.pointee = Int32(max(0, 48 * 1024 - k.staticSharedSize))
        case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: pi.pointee = -1
        default: throw Failure(CUDA_ERROR_INVALID_VALUE)
        }
    }
}
