import CXPUOpenCL
import XPUTiming

/// The user events whose status the application has not set yet, and the waits for them.
///
/// The server replays a session's calls one after another, and the library sends one call at a
/// time, so a wait forwarded to the server for a command that depends on a user event would hold
/// both until the event is set — and `clSetUserEventStatus`, from another thread, could then never
/// be sent. So a call that blocks (`clWaitForEvents`, `clFinish`, reads, blocking writes, maps)
/// first waits here, holding no other lock, for the user events its commands depend on; only then
/// does it forward its wait, which the platform completes without the application's help.
final class UserEvents: @unchecked Sendable {
    private let condition = MonotonicCondition()
    /// The server ids of user events created and not yet set (to CL_COMPLETE or an error).
    private var unset: Set<UInt64> = []

    func created(_ id: UInt64) {
        condition.lock()
        unset.insert(id)
        condition.unlock()
    }

    /// `id`'s status was set (on the server already): whoever waits for it goes on.
    func set(_ id: UInt64) {
        condition.lock()
        unset.remove(id)
        condition.broadcast()
        condition.unlock()
    }

    /// The user events of `ids` not set yet.
    func pending(_ ids: Set<UInt64>) -> Set<UInt64> {
        guard !ids.isEmpty else { return [] }
        condition.lock()
        defer { condition.unlock() }
        return ids.intersection(unset)
    }

    /// Returns once every user event of `ids` is set. A user event that is never set blocks its
    /// waiters for good, as it does on any platform.
    func wait(for ids: Set<UInt64>) {
        guard !ids.isEmpty else { return }
        condition.lock()
        while !unset.isDisjoint(with: ids) { condition.wait() }
        condition.unlock()
    }
}
