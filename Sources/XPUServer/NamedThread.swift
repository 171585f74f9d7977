import CXPUDriver
import Foundation

extension Thread {
    /// Starts `body` on a new thread that the system knows by `name` (what `top -H`, `ps -L` and
    /// /proc show): Foundation on Linux keeps `Thread.name` to itself, so every server thread would
    /// otherwise be listed under a name Dispatch gave the process's first threads.
    @discardableResult
    static func start(named name: String, _ body: @escaping @Sendable () -> Void) -> Thread {
        let thread = Thread {
            xpu_name_this_thread(name)
            body()
        }
        thread.name = name
        thread.start()
        return thread
    }
}
