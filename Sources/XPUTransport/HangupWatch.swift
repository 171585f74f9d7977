import CXPUDriver
import CXPUPoll
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Notices, on one thread per process, when the peer of a watched socket hangs up, and runs that
/// socket's action once.
///
/// A shared-memory session waits for its peer on a futex in the rings, which no socket event
/// reaches. With the watch it can sleep there without a timeout (an idle session wakes never),
/// and still wake when its peer dies: the peer's socket closes with its process, the watch sees
/// the hang-up and the action shuts the rings, which wakes the sleeper. The thread sleeps in
/// `epoll_wait` with no timeout; it holds no lock while it does.
///
/// An epoll set is shared with forked children (they inherit its descriptor), so a child must
/// neither change its parent's set nor rely on its parent's thread, which it does not have: a
/// registration made before a fork is inert in the child, and the child's first registration
/// starts a watch of its own.
public final class HangupWatch: Sendable {
    /// One watched socket, until its action has run or it is forgotten.
    public struct Registration: Sendable {
        fileprivate let watch: HangupWatch
        fileprivate let id: UInt64
        fileprivate let descriptor: Int32
    }

    private struct Entry {
        var descriptor: Int32
        var action: @Sendable () -> Void
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var next: UInt64 = 1
    }

    private let poller: Int32
    /// The process that made the watch (and its thread).
    private let owner: pid_t
    private let state = Mutex(State())

    /// This process's watch, made at the first registration.
    private static let current = Mutex<HangupWatch?>(nil)

    private init?() {
        poller = xpu_poller_create()
        guard poller >= 0 else { return nil }
        owner = getpid()
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { argument in
                Unmanaged<HangupWatch>.fromOpaque(argument!).takeUnretainedValue().run()
                return nil
            }, Unmanaged.passRetained(self).toOpaque())
        guard started == 0 else {
            // The thread never took its reference: give it back, then this watch is not used.
            Unmanaged.passUnretained(self).release()
            close(poller)
            return nil
        }
        pthread_detach(thread)
    }

    /// Runs `action` once, on the watch's thread, when the peer of `descriptor` hangs up (or the
    /// socket is shut down from this side). Nil when this process cannot watch sockets (no
    /// epoll instance or thread could be made): the caller then checks the peer itself.
    public static func watch(_ descriptor: Int32, onHangup action: @escaping @Sendable () -> Void) -> Registration? {
        let watch = current.withLock { current -> HangupWatch? in
            if let watch = current, watch.owner == getpid() { return watch }
            current = HangupWatch()
            return current
        }
        guard let watch else { return nil }
        return watch.add(descriptor, action)
    }

    /// Stops watching: once this returns, the action has run or never will, except when the
    /// watch's thread took it just before (the action must tolerate running late; the shared-
    /// memory transport's holds its transport weakly). Call it before the descriptor is closed.
    public static func forget(_ registration: Registration) {
        let watch = registration.watch
        // A forked child: the set and its entries are the parent's.
        guard watch.owner == getpid() else { return }
        watch.state.withLock { state in
            guard state.entries.removeValue(forKey: registration.id) != nil else { return }
            _ = xpu_poller_forget(watch.poller, registration.descriptor)
        }
    }

    private func add(_ descriptor: Int32, _ action: @escaping @Sendable () -> Void) -> Registration? {
        state.withLock { state in
            let id = state.next
            state.next += 1
            // Armed under the lock, so that an event for `id` finds its entry.
            guard xpu_poller_watch_hangup_once(poller, descriptor, id) == 0 else { return nil }
            state.entries[id] = Entry(descriptor: descriptor, action: action)
            return Registration(watch: self, id: id, descriptor: descriptor)
        }
    }

    /// The watch's thread: waits for hang-ups, and runs each one's action outside the lock.
    private func run() {
        // Named for whoever reads the process's threads (top -H, /proc): it is ours.
        xpu_name_this_thread("xpu-hangup")
        var ids = [UInt64](repeating: 0, count: 16)
        while true {
            let count = ids.withUnsafeMutableBufferPointer { xpu_poller_wait(poller, $0.baseAddress, Int32($0.count), -1) }
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            for id in ids[0..<Int(count)] {
                let action = state.withLock { state -> (@Sendable () -> Void)? in
                    guard let entry = state.entries.removeValue(forKey: id) else { return nil }
                    _ = xpu_poller_forget(poller, entry.descriptor)
                    return entry.action
                }
                action?()
            }
        }
    }
}
