#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import Synchronization

/// Device-side printf output of the simulated device, on its way to the client that owns it.
///
/// The simulated device hands a context's output to the sink the server installs
/// (`xpu_sim_set_device_output_sink`) while it serves a synchronizing call, on the thread that
/// called it: a session's own thread, between the request and its reply. The sink keeps the bytes
/// by thread; the connection takes them after the call and sends them ahead of the reply
/// (`DeviceOutputNotice`). A real driver has no sink: its device printf goes to the server's stdout.
enum DeviceOutputCollector {
    private static let pending = Mutex<[UInt: [UInt8]]>([:])
    /// Whether any thread has output waiting: the common case, none, costs one load per reply.
    private static let anyPending = Atomic<Bool>(false)

    private static var thread: UInt { UInt(pthread_self()) }

    /// What the calling thread's calls printed since the last take; empty when nothing.
    static func take() -> [UInt8] {
        guard anyPending.load(ordering: .acquiring) else { return [] }
        let key = thread
        return pending.withLock { pending in
            let text = pending.removeValue(forKey: key) ?? []
            if pending.isEmpty { anyPending.store(false, ordering: .releasing) }
            return text
        }
    }

    /// Keeps `count` bytes of output for the calling thread (what the sink does).
    static func receive(_ bytes: UnsafeRawPointer?, _ count: Int) {
        guard let bytes, count > 0 else { return }
        let text = [UInt8](UnsafeRawBufferPointer(start: bytes, count: count))
        let key = thread
        pending.withLock { pending in
            pending[key, default: []] += text
            anyPending.store(true, ordering: .releasing)
        }
    }

    /// `xpu_sim_set_device_output_sink`'s type.
    typealias Install = @convention(c) ((@convention(c) (CUcontext?, UnsafeRawPointer?, Int) -> Void)?) -> Void

    /// Installs the sink in the simulated device whose setter is `install`.
    static func install(with install: UnsafeMutableRawPointer) {
        unsafeBitCast(install, to: Install.self)({ _, bytes, count in DeviceOutputCollector.receive(bytes, count) })
    }
}
