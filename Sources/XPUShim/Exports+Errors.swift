import CXPUDriver
import CXPUShimSupport

// Answered locally: result-code names and the entry-point table.

@c @implementation public func cuGetErrorName(_ error: CUresult, _ pStr: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> CUresult {
    guard let pStr else { return CUDA_ERROR_INVALID_VALUE }
    pStr.pointee = xpu_result_name(error)
    return pStr.pointee == nil ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS
}

@c @implementation public func cuGetErrorString(_ error: CUresult, _ pStr: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> CUresult {
    guard let pStr else { return CUDA_ERROR_INVALID_VALUE }
    pStr.pointee = xpu_result_description(error)
    return pStr.pointee == nil ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS
}

@c @implementation public func cuGetProcAddress_v2(
    _ symbol: UnsafePointer<CChar>?, _ pfn: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ cudaVersion: Int32,
    _ flags: cuuint64_t, _ symbolStatus: UnsafeMutablePointer<CUdriverProcAddressQueryResult>?
) -> CUresult {
    guard let symbol, let pfn else { return CUDA_ERROR_INVALID_VALUE }
    let perThread = flags & UInt64(CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM.rawValue) != 0
    if let entry = xpu_proc_lookup(symbol) {
        pfn.pointee = perThread ? entry.pointee.per_thread_function : entry.pointee.function
        symbolStatus?.pointee = CU_GET_PROC_ADDRESS_SUCCESS
        return CUDA_SUCCESS
    }
    // Not served: the caller learns it now instead of calling a stub later. cuda.h's contract is
    // CUDA_SUCCESS with a NULL pointer and the reason in the status (an error would be recorded by
    // the runtime's cudaGetDriverEntryPoint as the thread's last error, which a later, unrelated
    // check then reports: PyTorch's first allocation failed with "named symbol not found").
    ShimLog.log(.debug, "cuGetProcAddress \(String(cString: symbol)) (version \(cudaVersion)): not served")
    pfn.pointee = nil
    symbolStatus?.pointee = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND
    return CUDA_SUCCESS
}

@c @implementation public func cuGetProcAddress(
    _ symbol: UnsafePointer<CChar>?, _ pfn: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ cudaVersion: Int32,
    _ flags: cuuint64_t
) -> CUresult {
    cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, nil)
}
