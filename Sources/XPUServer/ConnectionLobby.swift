import CXPUPoll
import Foundation
import Logging
import Synchronization
import XPUTransport

#if canImport(Glibc)
    import Glibc
#endif

/// Admits connections between accept and their Hello.
///
/// An accepted socket waits here, in one epoll set watched by one thread, until its first bytes
/// arrive: only then does it get a thread for the TLS handshake and the Hello (`handOff`). So
/// sockets that connect and stay silent hold a descriptor and no thread. Every connection must
/// have sent its Hello (`HandshakeTicket.finish`) by `handshakeTimeout` after accept; at the
/// deadline a waiting socket is closed here and a handshaking one is shut down, which ends its
/// thread's blocking read. Connections not yet past their Hello are capped per source address and
/// in total; one over a cap is closed at once. The thread sleeps while nothing is pending, and
/// otherwise wakes for arrivals and deadlines only.
final class ConnectionLobby: Sendable {
    let limits: AdmissionLimits
    let statistics: AdmissionStatistics
    private let logger: Logger
    private let poller: Int32
    /// An eventfd in the epoll set: wakes the thread for a new first deadline or shutdown.
    private let wakeup: Int32
    private let state = Mutex(State())

    /// The epoll user data of `wakeup` (connection ids start at 1).
    private static let wakeupID: UInt64 = 0

    struct State {
        var nextID: UInt64 = 1
        var entries: [UInt64: Entry] = [:]
        /// Ids in deadline order (every connection gets the same timeout, so arrival order);
        /// finished ids stay until they reach the front.
        var order: [UInt64] = []
        var orderStart = 0
        var perSource: [String: Int] = [:]
        var stopping = false
        var refusalLog = RateLimitedLog()
        var timeoutLog = RateLimitedLog()

        mutating func remove(_ id: UInt64) -> Entry? {
            guard let entry = entries.removeValue(forKey: id) else { return nil }
            let left = perSource[entry.source, default: 1] - 1
            perSource[entry.source] = left > 0 ? left : nil
            return entry
        }

        /// The first deadline of a connection still pending, dropping finished ids before it.
        mutating func firstDeadline() -> ContinuousClock.Instant? {
            while orderStart < order.count {
                if let entry = entries[order[orderStart]] { return entry.deadline }
                orderStart += 1
            }
            order.removeAll(keepingCapacity: true)
            orderStart = 0
            return nil
        }

        mutating func compactOrder() {
            if orderStart > 1024 && orderStart * 2 > order.count {
                order.removeFirst(orderStart)
                orderStart = 0
            }
        }
    }

    struct Entry {
        var source: String
        var deadline: ContinuousClock.Instant
        var phase: Phase
    }

    enum Phase {
        /// In the epoll set, without a thread.
        case waiting(SocketTransport)
        /// On its own thread; `interrupt` ends that thread's blocking read.
        case handshaking(interrupt: @Sendable () -> Void)
    }

    /// At most one log line per `interval` for one kind of event (connections closed at a cap, or
    /// at the deadline), so a flood of connections cannot flood the log; a line counts the events
    /// not logged since the one before.
    struct RateLimitedLog {
        static let interval = Duration.seconds(10)
        var last: ContinuousClock.Instant?
        var unlogged = 0

        /// Records `count` events; returns whether to log now and how many events the line covers.
        mutating func record(_ count: Int, at now: ContinuousClock.Instant) -> (log: Bool, events: Int) {
            unlogged += count
            if let last, now - last < Self.interval { return (false, 0) }
            defer { unlogged = 0 }
            last = now
            return (true, unlogged)
        }
    }

    init(limits: AdmissionLimits, statistics: AdmissionStatistics, logger: Logger) throws(TransportError) {
        self.limits = limits
        self.statistics = statistics
        self.logger = logger
        poller = xpu_poller_create()
        guard poller >= 0 else { throw TransportError(.io, "epoll_create1: \(String(cString: strerror(errno)))") }
        wakeup = xpu_wakeup_create()
        guard wakeup >= 0 else {
            close(poller)
            throw TransportError(.io, "eventfd: \(String(cString: strerror(errno)))")
        }
        _ = xpu_poller_watch(poller, wakeup, Self.wakeupID)
    }

    deinit {
        close(poller)
        close(wakeup)
    }

    /// Starts the lobby's thread; `handOff` is called on it for each connection whose first
    /// bytes arrived, and must start the connection's own thread.
    func start(handOff: @escaping @Sendable (SocketTransport, HandshakeTicket) -> Void) {
        Thread.start(named: "xpu-lobby") { [self] in run(handOff: handOff) }
    }

    /// Takes a just-accepted socket: it waits in the lobby, or is closed at once when its source
    /// or the server has as many pending connections as allowed.
    func enter(_ socket: SocketTransport) {
        let source = socket.peerHost
        let now = ContinuousClock.now
        enum Outcome {
            case entered(wake: Bool)
            case refused(reason: String, log: Bool, events: Int)
            case stopping
        }
        let outcome: Outcome = state.withLock { state in
            guard !state.stopping else { return .stopping }
            let reason: String
            if state.entries.count >= limits.maxPending {
                statistics.refusedTotal.add(1, ordering: .relaxed)
                reason = "\(limits.maxPending) connections are waiting for their handshake (--max-pending-connections)"
            } else if state.perSource[source, default: 0] >= limits.maxPendingPerSource {
                statistics.refusedPerSource.add(1, ordering: .relaxed)
                reason = "\(limits.maxPendingPerSource) connections from this source are waiting for their handshake (--max-pending-per-source)"
            } else {
                let id = state.nextID
                state.nextID += 1
                guard xpu_poller_watch_once(poller, socket.descriptor, id) == 0 else {
                    return .refused(reason: "epoll_ctl: \(String(cString: strerror(errno)))", log: true, events: 1)
                }
                let wasIdle = state.firstDeadline() == nil
                state.entries[id] = Entry(source: source, deadline: now + limits.handshakeTimeout, phase: .waiting(socket))
                state.order.append(id)
                state.perSource[source, default: 0] += 1
                statistics.pending.store(state.entries.count, ordering: .relaxed)
                return .entered(wake: wasIdle)
            }
            let (log, events) = state.refusalLog.record(1, at: now)
            return .refused(reason: reason, log: log, events: events)
        }
        switch outcome {
        case .entered(let wake):
            if wake { signalThread() }
        case .refused(let reason, let log, let events):
            socket.resetOnClose()
            socket.shutdown()
            if log {
                var metadata: Logger.Metadata = ["reason": "\(reason)", "peer": "\(source)"]
                if events > 1 { metadata["refused"] = "\(events) since the last line (the others not logged)" }
                logger.warning("connection refused before its handshake", metadata: metadata)
            }
        case .stopping:
            socket.shutdown()
        }
    }

    /// Counts a connection that skips the lobby (RDMA: its queue pair is set up before this
    /// server sees it) against the caps and gives it the handshake deadline, at which
    /// `interrupt` is called. nil when a cap is full (the caller closes it).
    func track(source: String, interrupt: @escaping @Sendable () -> Void) -> HandshakeTicket? {
        let now = ContinuousClock.now
        let admitted: (HandshakeTicket, Bool)? = state.withLock { state in
            guard !state.stopping else { return nil }
            guard state.entries.count < limits.maxPending else {
                statistics.refusedTotal.add(1, ordering: .relaxed)
                return nil
            }
            guard state.perSource[source, default: 0] < limits.maxPendingPerSource else {
                statistics.refusedPerSource.add(1, ordering: .relaxed)
                return nil
            }
            let id = state.nextID
            state.nextID += 1
            let wasIdle = state.firstDeadline() == nil
            let deadline = now + limits.handshakeTimeout
            state.entries[id] = Entry(source: source, deadline: deadline, phase: .handshaking(interrupt: interrupt))
            state.order.append(id)
            state.perSource[source, default: 0] += 1
            statistics.pending.store(state.entries.count, ordering: .relaxed)
            return (HandshakeTicket(id: id, deadline: deadline, lobby: self), wasIdle)
        }
        guard let (ticket, wake) = admitted else { return nil }
        if wake { signalThread() }
        return ticket
    }

    /// The connection sent its Hello (or its thread gave up on it): it no longer counts.
    func finish(_ id: UInt64) {
        state.withLock { state in
            _ = state.remove(id)
            statistics.pending.store(state.entries.count, ordering: .relaxed)
        }
    }

    /// Closes every waiting socket and ends the thread.
    func shutdown() {
        state.withLock { $0.stopping = true }
        signalThread()
    }

    private func signalThread() {
        xpu_wakeup_signal(wakeup)
    }

    private func run(handOff: @Sendable (SocketTransport, HandshakeTicket) -> Void) {
        var ready = [UInt64](repeating: 0, count: 64)
        while true {
            let (timeout, stopping) = expire()
            if stopping { break }
            let count = xpu_poller_wait(poller, &ready, Int32(ready.count), timeout)
            if count < 0 {
                if errno == EINTR { continue }
                logger.error("the connection lobby stopped", metadata: ["reason": "epoll_wait: \(String(cString: strerror(errno)))"])
                break
            }
            for id in ready.prefix(Int(count)) {
                if id == Self.wakeupID {
                    xpu_wakeup_drain(wakeup)
                    continue
                }
                let ready: (SocketTransport, ContinuousClock.Instant)? = state.withLock { state in
                    guard let entry = state.entries[id], case .waiting(let socket) = entry.phase else { return nil }
                    _ = xpu_poller_forget(poller, socket.descriptor)
                    state.entries[id]?.phase = .handshaking(interrupt: { socket.shutdown() })
                    return (socket, entry.deadline)
                }
                if let (socket, deadline) = ready {
                    handOff(socket, HandshakeTicket(id: id, deadline: deadline, lobby: self))
                }
            }
        }
        let waiting: [SocketTransport] = state.withLock { state in
            let sockets = state.entries.values.compactMap { entry -> SocketTransport? in
                if case .waiting(let socket) = entry.phase { return socket }
                return nil
            }
            for id in Array(state.entries.keys) { _ = state.remove(id) }
            statistics.pending.store(0, ordering: .relaxed)
            return sockets
        }
        for socket in waiting { socket.shutdown() }
    }

    /// Ends the connections whose deadline has passed; returns the epoll timeout until the next
    /// deadline (-1: none pending), and whether the lobby is stopping.
    private func expire() -> (timeout: Int32, stopping: Bool) {
        let now = ContinuousClock.now
        var closing: [SocketTransport] = []
        var interrupting: [@Sendable () -> Void] = []
        let (next, stopping, logged): (ContinuousClock.Instant?, Bool, Int) = state.withLock { state in
            var expired = 0
            while let deadline = state.firstDeadline(), deadline <= now {
                let id = state.order[state.orderStart]
                state.orderStart += 1
                guard let entry = state.remove(id) else { continue }
                expired += 1
                switch entry.phase {
                case .waiting(let socket):
                    _ = xpu_poller_forget(poller, socket.descriptor)
                    closing.append(socket)
                case .handshaking(let interrupt):
                    interrupting.append(interrupt)
                }
            }
            state.compactOrder()
            statistics.pending.store(state.entries.count, ordering: .relaxed)
            statistics.timedOut.add(UInt64(expired), ordering: .relaxed)
            let logged = expired > 0 ? state.timeoutLog.record(expired, at: now) : (log: false, events: 0)
            return (state.firstDeadline(), state.stopping, logged.log ? logged.events : 0)
        }
        if logged > 0 {
            logger.info(
                "handshake deadline passed, closing connections",
                metadata: ["connections": "\(logged) since the last line", "timeout": "\(limits.handshakeTimeout)"])
        }
        for socket in closing {
            socket.resetOnClose()
            socket.shutdown()
        }
        for interrupt in interrupting { interrupt() }
        guard let next else { return (-1, stopping) }
        let left = next - now
        // Rounded up, so the thread never wakes just before a deadline and spins.
        let milliseconds = left.components.seconds * 1000 + (left.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return (Int32(clamping: max(milliseconds, 1)), stopping)
    }
}

/// A connection's place in the lobby while it handshakes: finished when its Hello arrived or
/// its thread ends, whichever comes first (finishing twice is harmless).
final class HandshakeTicket: Sendable {
    let id: UInt64
    let deadline: ContinuousClock.Instant
    private let lobby: ConnectionLobby

    init(id: UInt64, deadline: ContinuousClock.Instant, lobby: ConnectionLobby) {
        self.id = id
        self.deadline = deadline
        self.lobby = lobby
    }

    /// Milliseconds left until the deadline (at least 1).
    var remainingMilliseconds: Int32 {
        let left = deadline - ContinuousClock.now
        return Int32(clamping: max(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000, 1))
    }

    func finish() { lobby.finish(id) }
}
