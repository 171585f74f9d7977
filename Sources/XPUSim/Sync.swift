import CXPUClock
import CXPUDriver
import Glibc
import Synchronization

/// A pthread mutex with a condition variable, for the places that must wait (stream queues,
/// completions). Plain shared tables use `Mutex` from Synchronization instead.
final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits for a broadcast; the lock must be held.
    func wait() { pthread_cond_wait(condition, mutex) }
    func broadcast() { pthread_cond_broadcast(condition) }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// Signalled once when a piece of stream work has finished; also carries when it finished.
///
/// Copies, memsets, event records and `Stream.tail` make one (launches only on demand), so it is
/// light: two atomics and no lock or condition of its own. The rare waiter parks on one of a few
/// shared condition locks (chosen by the completion's address) and says so in `state`; `signal`
/// takes that lock only when someone is parked. Both sides use sequentially consistent
/// operations on `state`, so either the waiter sees `done` before it sleeps or the signaller sees
/// the waiter and wakes it.
final class Completion: @unchecked Sendable {
    private static let doneBit: UInt8 = 1
    private static let waitingBit: UInt8 = 2
    private let state = Atomic<UInt8>(0)
    private let finishedAt = Atomic<UInt64>(0)

    /// Waiters of all completions share these (a broadcast may wake waiters of another
    /// completion; they look again and go back to sleep).
    private static let parking = (0..<16).map { _ in ConditionLock() }
    private var parkingLock: ConditionLock {
        Self.parking[Int(truncatingIfNeeded: UInt(bitPattern: ObjectIdentifier(self).hashValue) >> 6) & 15]
    }

    static let finished: Completion = {
        let c = Completion()
        c.signal()
        return c
    }()

    func signal() {
        finishedAt.store(xpu_monotonic_nanoseconds(), ordering: .relaxed)
        let before = state.bitwiseOr(Self.doneBit, ordering: .sequentiallyConsistent).oldValue
        guard before & Self.waitingBit != 0 else { return }
        let lock = parkingLock
        lock.withLock { lock.broadcast() }
    }

    var isDone: Bool { state.load(ordering: .acquiring) & Self.doneBit != 0 }

    /// Nanoseconds on the monotonic clock when the work finished.
    var timestamp: UInt64 {
        _ = state.load(ordering: .acquiring)
        return finishedAt.load(ordering: .relaxed)
    }

    func wait() {
        guard !isDone else { return }
        let lock = parkingLock
        lock.lock()
        _ = state.bitwiseOr(Self.waitingBit, ordering: .sequentiallyConsistent)
        while state.load(ordering: .sequentiallyConsistent) & Self.doneBit == 0 { lock.wait() }
        lock.unlock()
    }
}

/// Starts an OS thread running `body` (the caller joins or detaches it). `name` is what `top -H`,
/// `ps -L` and /proc show for it (Linux keeps 15 bytes).
func startThread(named name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    let rc = pthread_create(&thread, nil, { arg in
        Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed")
    // Named by its creator: the name is there before the thread has run.
    xpu_name_thread(thread, name)
    return thread
}

/// Environment lookup (the library avoids Foundation).
func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

/// Writes one diagnostic line to stderr when XPU_LOG is set.
func log(_ message: @autoclosure () -> String) {
    guard getenv("XPU_LOG") != nil else { return }
    let line = "xpusim: " + message() + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// Parses a byte count such as `16G`, `512MiB`, `1048576`.
func parseByteCount(_ text: String) -> Int? {
    var digits = Substring(text.trimmingSpaces())
    var multiplier = 1
    let suffixes: [(String, Int)] = [
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
        ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30), ("TB", 1 << 40),
        ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40), ("B", 1),
    ]
    for (suffix, value) in suffixes where digits.uppercased().hasSuffix(suffix.uppercased()) {
        digits = digits.dropLast(suffix.count)
        multiplier = value
        break
    }
    guard let n = Int(digits.trimmingSpaces()), n >= 0 else { return nil }
    let (product, overflow) = n.multipliedReportingOverflow(by: multiplier)
    return overflow ? nil : product
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
