import Synchronization

/// The pool's order to end one session (preemption): given from the pool announcer's thread,
/// carried out by the session's own thread, the only one that may touch the session. The session
/// checks it before each frame, so a client that never stops sending still ends.
final class PreemptionOrder: Sendable {
    private let given = Atomic<Bool>(false)
    private let why = Mutex<String?>(nil)

    /// Records the order; false when one was given already (the first reason stays).
    func give(reason: String) -> Bool {
        why.withLock { why in
            guard why == nil else { return false }
            why = reason
            given.store(true, ordering: .releasing)
            return true
        }
    }

    /// Whether the session must end (one atomic load: checked before every frame).
    var isGiven: Bool { given.load(ordering: .acquiring) }

    /// Why, once given.
    var reason: String? { isGiven ? why.withLock { $0 } : nil }
}
