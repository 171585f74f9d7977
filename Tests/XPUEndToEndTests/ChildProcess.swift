import Foundation
import Synchronization
import XPUTiming
import XPUTransport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a child process ended.
enum ExitStatus: Hashable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    init(waitStatus: Int32) {
        if waitStatus & 0x7f == 0 {
            self = .exited((waitStatus >> 8) & 0xff)
        } else {
            self = .signaled(waitStatus & 0x7f)
        }
    }

    var description: String {
        switch self {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "signal \(signal)"
        }
    }
}

/// What a finished (or timed-out) program produced.
struct ProgramOutput: Sendable {
    var status: ExitStatus?
    var stdout: String
    var stderr: String

    var timedOut: Bool { status == nil }
}

/// Something about a child changed (output came, a pipe closed, the process ended): counted,
/// with a condition to wait for the next change on, so that waiting for output or for the end
/// blocks until it happens instead of looking on a period.
final class ChildEvents: @unchecked Sendable {
    private let changes = ChangeCount()

    var current: UInt64 { changes.current }

    func notify() { changes.notify() }

    /// Waits for a change after `seen` (a value of `current`) or until `deadline`; false when
    /// the deadline came first.
    func wait(after seen: UInt64, until deadline: ContinuousClock.Instant) -> Bool {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return changes.current != seen }
        let nanoseconds = UInt64(left.components.seconds) * 1_000_000_000 + UInt64(left.components.attoseconds / 1_000_000_000)
        return changes.wait(after: seen, until: monotonicNanoseconds() + nanoseconds, unless: { false }) != seen
    }

    /// Waits until `condition` holds (looked at after every change) or `deadline` passes; the
    /// last look's answer.
    func wait(until condition: () -> Bool, deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let seen = current
            if condition() { return true }
            guard wait(after: seen, until: deadline) else { return condition() }
        }
    }
}

/// Bytes a child writes to one pipe, collected by a reader thread.
final class OutputCollector: Sendable {
    private struct State {
        var bytes: [UInt8] = []
        var closed = false
    }

    private let state = Mutex(State())
    private let events: ChildEvents

    init(events: ChildEvents) { self.events = events }

    /// Starts a thread that reads `fd` to end of file, then closes it; every read and the end
    /// are an event.
    func start(reading fd: Int32) {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    state.withLock { $0.bytes.append(contentsOf: buffer[0..<n]) }
                    events.notify()
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            close(fd)
            state.withLock { $0.closed = true }
            events.notify()
        }
    }

    var text: String { state.withLock { String(decoding: $0.bytes, as: UTF8.self) } }
    var isClosed: Bool { state.withLock { $0.closed } }
}

/// A child process in its own process group, with stdout and stderr collected.
///
/// Spawned with `posix_spawn` so that the whole group (for example `xpu-run` and the program it
/// starts) can be signalled at once, and so that no pipe of one child leaks into another.
final class ChildProcess: Sendable {
    let pid: pid_t
    let command: String
    private let events = ChildEvents()
    let stdout: OutputCollector
    let stderr: OutputCollector
    private let ended = Mutex<(status: ExitStatus?, reaped: Bool)>((nil, false))
    private static let spawnLock = NSLock()

    init(_ executable: String, _ arguments: [String], environment: [String: String]) throws {
        command = ([executable] + arguments).joined(separator: " ")
        stdout = OutputCollector(events: events)
        stderr = OutputCollector(events: events)
        // Pipes are made close-on-exec under a lock held across the spawn, so that no child
        // started from another thread inherits this child's pipe ends.
        Self.spawnLock.lock()
        defer { Self.spawnLock.unlock() }
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            throw E2EError("pipe failed: errno \(errno)")
        }
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        guard rc == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw E2EError("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
        stdout.start(reading: outPipe[0])
        stderr.start(reading: errPipe[0])
        Self.watchExit(of: child, events: events)
    }

    /// Starts a thread that blocks until `child` ends (without reaping it: `poll` reads the
    /// status) and then counts an event, so that waits for the end need not look on a period.
    private static func watchExit(of child: pid_t, events: ChildEvents) {
        Thread.detachNewThread {
            var info = siginfo_t()
            while waitid(P_PID, id_t(child), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
            events.notify()
        }
    }

    /// The exit status if the process has ended. The child is left a zombie until `reapAfterKillingGroup`:
    /// while it is one, its pid (the id of its process group) cannot be given to another process, so
    /// killing what is left of its group can never hit another test's process that got the id again
    /// (ids wrap quickly when pid_max is 32768 and the tests start thousands of processes).
    func poll() -> ExitStatus? {
        ended.withLock { ended in
            if let status = ended.status { return status }
            var info = siginfo_t()
            guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0, info._sifields._sigchld.si_pid == pid
            else { return nil }
            let code = info._sifields._sigchld.si_status
            ended.status = info.si_code == Int32(CLD_EXITED) ? .exited(code) : .signaled(code)
            return ended.status
        }
    }

    deinit {
        if poll() != nil { reapAfterKillingGroup() }
    }

    /// Kills what is left of the process group of a child that has ended, then reaps the child.
    private func reapAfterKillingGroup() {
        ended.withLock { ended in
            guard ended.status != nil, !ended.reaped else { return }
            kill(-pid, SIGKILL)
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
            ended.reaped = true
        }
    }

    /// Waits until the process ends or `timeout` passes; nil on timeout.
    func wait(timeout: Duration) -> ExitStatus? {
        _ = events.wait(until: { poll() != nil }, deadline: ContinuousClock.now + timeout)
        return poll()
    }

    /// Waits until stdout contains `text`; false on timeout or if the process ended first.
    func waitForOutput(containing text: String, timeout: Duration) -> Bool {
        wait(until: { stdout.text.contains(text) }, timeout: timeout)
    }

    /// Waits until the child's standard output satisfies `condition`.
    func waitForOutput(where condition: (String) -> Bool, timeout: Duration) -> Bool {
        wait(until: { condition(stdout.text) }, timeout: timeout)
    }

    /// Waits until the child's standard error (a server's log) contains `text`.
    func waitForLog(containing text: String, timeout: Duration) -> Bool {
        wait(until: { stderr.text.contains(text) }, timeout: timeout)
    }

    /// Waits until the child's standard error (a server's log) satisfies `condition`.
    func waitForLog(where condition: (String) -> Bool, timeout: Duration) -> Bool {
        wait(until: { condition(stderr.text) }, timeout: timeout)
    }

    /// Waits until `condition` holds, the child ends, or `timeout` passes, looking again at each
    /// output or end of the child.
    private func wait(until condition: () -> Bool, timeout: Duration) -> Bool {
        _ = events.wait(until: { condition() || poll() != nil }, deadline: ContinuousClock.now + timeout)
        return condition()
    }

    /// Sends `signal` to the child's whole process group.
    func signalGroup(_ signal: Int32) {
        if poll() == nil { kill(-pid, signal) }
    }

    /// Ends the process: SIGTERM (if asked), then SIGKILL to the group after `grace`.
    @discardableResult
    func stop(terminateFirst: Bool = true, grace: Duration = .seconds(5)) -> ExitStatus? {
        if let status = poll() {
            reapAfterKillingGroup()  // leftovers in the group, if any
            return status
        }
        if terminateFirst {
            kill(pid, SIGTERM)
            if let status = wait(timeout: grace) {
                reapAfterKillingGroup()
                return status
            }
        }
        kill(-pid, SIGKILL)
        let status = wait(timeout: .seconds(5))
        reapAfterKillingGroup()
        return status
    }

    /// Waits for the end and the full output; on timeout kills the group and returns status nil.
    func finish(timeout: Duration) -> ProgramOutput {
        var status = wait(timeout: timeout)
        if status == nil {
            stop(terminateFirst: false)
            status = nil
        } else {
            reapAfterKillingGroup()  // a grandchild still holding the pipes must not hang us
        }
        // The readers end when every writer is gone; give them a moment.
        _ = events.wait(until: { stdout.isClosed && stderr.isClosed }, deadline: ContinuousClock.now + .seconds(5))
        return ProgramOutput(status: status, stdout: stdout.text, stderr: stderr.text)
    }
}

struct E2EError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
