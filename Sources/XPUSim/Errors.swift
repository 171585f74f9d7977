import CXPUDriver

@c @implementation public func cuGetErrorName(_ error: CUresult, _ pStr: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> CUresult {
    guard let pStr else { return CUDA_ERROR_INVALID_VALUE }
    guard let name = xpu_result_name(error) else {
        pStr.pointee = nil
        return CUDA_ERROR_INVALID_VALUE
    }
    pStr.pointee = name
    return CUDA_SUCCESS
}

@c @implementation public func cuGetErrorString(_ error: CUresult, _ pStr: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> CUresult {
    guard let pStr else { return CUDA_ERROR_INVALID_VALUE }
    guard let text = xpu_result_description(error) else {
        pStr.pointee = nil
        return CUDA_ERROR_INVALID_VALUE
    }
    pStr.pointee = text
    return CUDA_SUCCESS
}

/// Resolves a base name ("cuMemAlloc") to the newest variant this library exports that the
/// caller's CUDA version knows; per-thread-stream variants when the flags ask for them.
/// cuda.h's contract: a name that is not found (or not for this version) is CUDA_SUCCESS with a NULL
/// pointer and the reason in the status; only bad arguments are errors. (An error here is recorded
/// by the runtime's cudaGetDriverEntryPoint as the thread's last error, which a later, unrelated
/// check then reports: PyTorch's first allocation failed with "named symbol not found".)
func procAddress(
    _ symbol: UnsafePointer<CChar>?, _ pfn: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ cudaVersion: Int32,
    _ flags: cuuint64_t
) -> (CUresult, CUdriverProcAddressQueryResult) {
    guard let symbol, let pfn else { return (CUDA_ERROR_INVALID_VALUE, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND) }
    pfn.pointee = nil
    let name = String(cString: symbol)
    let perThread = flags & cuuint64_t(CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM.rawValue) != 0
    let candidates = ProcTable.entries.filter { $0.name == name }
    guard !candidates.isEmpty else { return (CUDA_SUCCESS, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND) }
    let usable = candidates.filter { $0.version <= cudaVersion }
    guard !usable.isEmpty else { return (CUDA_SUCCESS, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT) }
    let preferred = usable.filter { $0.perThread == perThread }
    let pool = preferred.isEmpty ? usable.filter { !$0.perThread } : preferred
    guard let best = (pool.isEmpty ? usable : pool).max(by: { $0.version < $1.version }) else {
        return (CUDA_SUCCESS, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND)
    }
    pfn.pointee = best.pointer
    return (CUDA_SUCCESS, CU_GET_PROC_ADDRESS_SUCCESS)
}

@c @implementation public func cuGetProcAddress(_ symbol: UnsafePointer<CChar>?, _ pfn: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ cudaVersion: Int32, _ flags: cuuint64_t) -> CUresult {
    procAddress(symbol, pfn, cudaVersion, flags).0
}

@c @implementation public func cuGetProcAddress_v2(_ symbol: UnsafePointer<CChar>?, _ pfn: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ cudaVersion: Int32, _ flags: cuuint64_t, _ symbolStatus: UnsafeMutablePointer<CUdriverProcAddressQueryResult>?) -> CUresult {
    let (result, status) = procAddress(symbol, pfn, cudaVersion, flags)
    symbolStatus?.pointee = status
    return result
}
