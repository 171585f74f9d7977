#if canImport(Glibc)
import Glibc
#endif

/// Messages of the OpenCL client library on standard error, at the level `XPU_LOG` sets (as the
/// CUDA shim: off, error, warn (default), info, debug).
enum ICDLog {
    enum Level: Int, Comparable {
        case off = 0, error, warn, info, debug
        static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    static let threshold: Level = {
        guard let raw = getenv("XPU_LOG") else { return .warn }
        switch String(cString: raw).lowercased() {
        case "off", "none", "0": return .off
        case "error": return .error
        case "info": return .info
        case "debug", "trace": return .debug
        default: return .warn
        }
    }()

    static func log(_ level: Level, _ message: @autoclosure () -> String) {
        guard level <= threshold, threshold != .off else { return }
        let line = "xpu-opencl[\(getpid())]: \(message())\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }
}

/// Every dispatch-table slot the library does not serve calls this (CXPUOpenCLICD/dispatch.c);
/// each name is logged once.
@c(xpu_opencl_unsupported) public func xpuOpenCLUnsupported(_ name: UnsafePointer<CChar>?) {
    let symbol = name.map { String(cString: $0) } ?? "?"
    let first = ICD.state.withLock { $0.unsupportedSeen.insert(symbol).inserted }
    if first { ICDLog.log(.warn, "\(symbol) is not served by xpu-remote's OpenCL library yet") }
}
