import Glibc

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
final class Completion: @unchecked Sendable {
    private let lock = ConditionLock()
    private var done = false
    private var finishedAt: UInt64 = 0

    static let finished: Completion = {
        let c = Completion()
        c.signal()
        return c
    }()

    func signal() {
        lock.withLock {
            finishedAt = monotonicNanoseconds()
            done = true
            lock.broadcast()
        }
    }

    var isDone: Bool { lock.withLock { done } }

    /// Nanoseconds on the monotonic clock when the work finished.
    var timestamp: UInt64 { lock.withLock { finishedAt } }

    func wait() {
        lock.lock()
        while !done { lock.wait() }
        lock.unlock()
    }
}

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Starts a detached OS thread running `body`.
func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    var thread = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    let rc = pthread_create(&thread, nil, { arg in
        let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed")
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
