#if canImport(Glibc)
import Glibc
#endif

/// The shim's log: lines on standard error, filtered by `XPU_LOG` (off, error, warn, info, debug;
/// default warn). Kept tiny because the shim lives inside someone else's program.
enum ShimLog {
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
        let line = "xpu-shim[\(getpid())]: \(message())\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }
}
