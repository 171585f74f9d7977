#if canImport(Glibc)
import Glibc
#endif
import XPUTransport

/// The OpenCL client library's log (`XPU_LOG`, as the CUDA shim's; `ClientLog` says how).
enum ICDLog {
    static let output = ClientLog(name: "xpu-opencl")

    static func log(_ level: ClientLog.Level, _ message: @autoclosure () -> String) { output.log(level, message()) }
}

/// Every dispatch-table slot the library does not serve calls this (CXPUOpenCLICD/dispatch.c);
/// each name is logged once.
@c(xpu_opencl_unsupported) public func xpuOpenCLUnsupported(_ name: UnsafePointer<CChar>?) {
    let symbol = name.map { String(cString: $0) } ?? "?"
    let first = ICD.state.withLock { $0.unsupportedSeen.insert(symbol).inserted }
    if first { ICDLog.log(.warn, "\(symbol) is not served by xpu-remote's OpenCL library yet") }
}
