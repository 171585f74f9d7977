import XPUTransport

/// The shim's log (`XPU_LOG`; `ClientLog` says how it reads and writes).
enum ShimLog {
    static let output = ClientLog(name: "xpu-shim")

    static func log(_ level: ClientLog.Level, _ message: @autoclosure () -> String) { output.log(level, message()) }
}
