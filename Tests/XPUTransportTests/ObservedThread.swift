import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A thread of this process as the kernel reports it (`/proc/self/task/TID`): the system call it
/// is blocked in and how often it has gone to sleep. Lets a test see that a waiting thread sleeps
/// and stays asleep, without hooks in the code under test.
struct ObservedThread: Sendable {
    /// `/proc/self/task/TID`.
    let path: String

    /// The calling thread.
    static func current() -> ObservedThread {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        precondition(count > 0, "/proc/thread-self is not readable")
        // "PID/task/TID"
        let target = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return ObservedThread(path: "/proc/" + target)
    }

    /// The number of the system call the thread is blocked in; nil while it runs (or has ended).
    var blockedSystemCall: Int? {
        guard let text = try? String(contentsOfFile: path + "/syscall", encoding: .utf8),
            let first = text.split(separator: " ").first, let number = Int(first), number >= 0
        else { return nil }
        return number
    }

    /// How often the thread has given up its CPU to wait: every sleep, and so every wake-up from
    /// one, counts one.
    var voluntarySwitches: Int? {
        guard let text = try? String(contentsOfFile: path + "/status", encoding: .utf8) else { return nil }
        let line = text.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") }
        return line.flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
    }

    /// The number of `futex` on this architecture (Linux's generic table on arm64).
    #if arch(x86_64)
        static let futexSystemCall = 202
    #else
        static let futexSystemCall = 98
    #endif

    /// Whether the thread is blocked in `futex` now.
    var isBlockedInFutex: Bool { blockedSystemCall == Self.futexSystemCall }

    /// Waits until the thread is blocked in `futex` (running, it yields the CPU between looks);
    /// false when it is not within `timeout`.
    func waitUntilBlockedInFutex(timeout: Duration = .seconds(20)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isBlockedInFutex { return true }
            sched_yield()
        }
        return false
    }
}
