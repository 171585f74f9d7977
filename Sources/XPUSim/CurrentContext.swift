import Glibc

/// The calling thread's context stack (CUDA keeps one per OS thread). It stores handle values, so a
/// destroyed context left on some thread's stack is simply not found in the registry.
enum ContextStack {
    /// A thread's stack, and the target of its last launch (in the same thread-local box, so a
    /// launch reads one thread-local value).
    final class Box {
        var handles: [UInt] = []
        var lastLaunch: LaunchTarget?
    }

    nonisolated(unsafe) private static var key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<Box>.fromOpaque(pointer).release() }
        }
        return key
    }()

    static var box: Box {
        if let p = pthread_getspecific(key) { return Unmanaged<Box>.fromOpaque(p).takeUnretainedValue() }
        let b = Box()
        pthread_setspecific(key, Unmanaged.passRetained(b).toOpaque())
        return b
    }

    /// Runs `body` with the thread's box without counting a reference to it (the thread's
    /// key holds one for as long as the thread lives): the launch path's way in.
    static func withBox<T>(_ body: (Box) -> T) -> T {
        guard let p = pthread_getspecific(key) else { return body(box) }
        return Unmanaged<Box>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    static var top: UInt? { box.handles.last }
    static func push(_ handle: UInt) { box.handles.append(handle) }
    static func pop() -> UInt? { box.handles.popLast() }
    /// cuCtxSetCurrent: replaces the top (or pushes onto an empty stack); 0 pops.
    static func setTop(_ handle: UInt) {
        let b = box
        if handle == 0 {
            _ = b.handles.popLast()
        } else if b.handles.isEmpty {
            b.handles.append(handle)
        } else {
            b.handles[b.handles.count - 1] = handle
        }
    }
    /// Removes a destroyed context from this thread's stack.
    static func remove(_ handle: UInt) { box.handles.removeAll { $0 == handle } }
}
