#if canImport(Glibc)
import Glibc
#endif

/// The log of a client library that lives inside someone else's program (the CUDA shim, the
/// OpenCL client): lines on standard error, each naming the library and the process, filtered by
/// `XPU_LOG` (off, error, warn, info, debug; default warn). Kept tiny on purpose.
public struct ClientLog: Sendable {
    public enum Level: Int, Comparable, Sendable {
        case off = 0, error, warn, info, debug
        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// The prefix of every line, before the process id (`xpu-shim`, `xpu-opencl`).
    public let name: String
    public let threshold: Level

    public init(name: String) {
        self.name = name
        threshold = Self.level(getenv("XPU_LOG").map { String(cString: $0) })
    }

    static func level(_ setting: String?) -> Level {
        switch setting?.lowercased() {
        case nil: return .warn
        case "off", "none", "0": return .off
        case "error": return .error
        case "info": return .info
        case "debug", "trace": return .debug
        default: return .warn
        }
    }

    public func log(_ level: Level, _ message: @autoclosure () -> String) {
        guard level <= threshold, threshold != .off else { return }
        let line = "\(name)[\(getpid())]: \(message())\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }
}
