#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import XPUAdmission
import XPUTransport

/// Runs each session in a process of its own (`--tenant-processes`), so that one tenant's fault
/// (an illegal address that poisons its context, a crash in the driver, kill -9) ends only that
/// tenant, and the operating system frees everything the process held.
///
/// The server keeps everything that must be global: it accepts, reads the Hello, authenticates
/// and admits the slice (`DeviceLedger`, the policy, the limits), schedules compute shares
/// (`ComputeScheduler`) and reports /metrics. It then starts this same binary with
/// `--serve-session`, passing the client's connection as descriptor 3, a control channel (a
/// Unix socket pair) as descriptor 4 and, for a shared-memory session, the rings' memfd as
/// descriptor 5, and sends the session's state (`SessionHandOff`) on the channel. The tenant
/// process loads the driver, sends the Welcome and serves; its kernels ask the server for their
/// turns and it reports its usage (`TenantControl`). When the process ends, however it ends, the
/// server sees the channel close, ends the client's connection, reaps the process and gives back
/// the session's grant.
///
/// Processes are started with `posix_spawn` (never a bare fork of this multithreaded process),
/// with the signal dispositions the server changed reset, and inherit no other descriptor (every
/// descriptor the server opens is close-on-exec): a tenant process cannot reach another tenant's
/// connection.
public final class TenantProcesses: Sendable {
    /// This server's binary, which tenant processes run.
    let executable: String
    let driverPath: String
    let logLevel: Logger.Level
    /// The server's scheduler, which gives the tenant processes' sliced sessions their turns.
    let scheduler: ComputeScheduler
    /// How long a tenant process that closed its channel may take to exit before it is killed.
    static let exitGrace = Duration.seconds(5)

    init(driverPath: String, logLevel: Logger.Level, scheduler: ComputeScheduler, executable: String? = nil) {
        self.scheduler = scheduler
        self.executable = executable ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        self.driverPath = driverPath
        self.logLevel = logLevel
    }

    /// Starts a process for the admitted session, hands it the connection and `handOff`, and
    /// serves its control channel until it ends (turns on the device, usage for /metrics).
    /// False when no process could be started: the session was not opened.
    func serve(_ handOff: SessionHandOff, transport: any Transport, usage: SessionUsage, logger: Logger) -> Bool {
        // The process gets a connected socket: the client's own for TCP; for shared memory the
        // client's Unix socket and the rings' memfd, which it maps to go on where the handshake
        // left the rings; for TLS one end of a socket pair, the server relaying the session's
        // plaintext to it (TLS keys and sequence numbers cannot move to another process).
        var handOff = handOff
        let client: Int32
        var memory: Int32?
        var relayed: (tls: TLSTransport, plain: Int32)?
        if let socket = transport as? SocketTransport {
            client = socket.descriptor
        } else if let rings = transport as? SharedMemoryTransport {
            client = rings.socket.descriptor
            memory = rings.memory
            handOff.sharedMemory = rings.position
        } else if let tls = transport as? TLSTransport {
            guard let pair = Self.socketPair() else {
                logger.error("cannot create a relay for a tenant process", metadata: ["reason": "\(String(cString: strerror(errno)))"])
                return false
            }
            (relayed, client) = ((tls, pair.0), pair.1)
        } else {
            logger.error("only TCP, TLS and shared-memory sessions can move to a tenant process", metadata: ["transport": "\(type(of: transport))"])
            return false
        }
        /// A relay that will not run: both ends of its pair go.
        func dropRelay() { if let relayed { _ = (close(relayed.plain), close(client)) } }
        guard let pair = Self.socketPair() else {
            logger.error("cannot create a control channel for a tenant process", metadata: ["reason": "\(String(cString: strerror(errno)))"])
            dropRelay()
            return false
        }
        let control = TenantChannel(socket: SocketTransport(descriptor: pair.0))
        let pid: pid_t
        do {
            pid = try spawn(client: client, control: pair.1, memory: memory)
            close(pair.1)
            // The process holds its end of the relay: the relay sees the stream end when it exits.
            if relayed != nil { close(client) }
        } catch {
            close(pair.1)
            dropRelay()
            logger.error("cannot start a tenant process", metadata: ["reason": "\(error)"])
            return false
        }
        logger.info("session process started", metadata: ["pid": "\(pid)"])
        let relay = relayed.map { Self.startRelay($0.tls, plain: $0.plain, logger: logger) }
        if (try? control.send(.handOff(handOff))) != nil {
            supervise(control, session: handOff.session, usage: usage)
        }
        // The process ended or is ending. A relay ends by itself once the process's stream has
        // ended and what it sent has reached the client (its last reply included); one that has
        // not within the grace is cut. Either way the client must see its connection end even
        // though this server still holds a descriptor of it.
        if let relay, relay.wait(timeout: .now() + .seconds(Int(Self.exitGrace.components.seconds))) == .timedOut {
            logger.warning("the TLS relay of an ended session process did not finish; cutting it")
        }
        transport.shutdown()
        control.socket.shutdown()
        relay?.wait()
        let status = reap(pid)
        let metadata: Logger.Metadata = ["pid": "\(pid)", "status": "\(status)"]
        if status == "exit 0" {
            logger.info("session process ended", metadata: metadata)
        } else {
            logger.warning("session process ended abnormally; its grant is released", metadata: metadata)
        }
        return true
    }

    /// A connected pair of Unix stream sockets, close-on-exec (no other process may inherit
    /// them); nil with `errno` set.
    private static func socketPair() -> (Int32, Int32)? {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else { return nil }
        return (pair[0], pair[1])
    }

    /// Relays a TLS session's plaintext to and from the process's end of the socket pair on a
    /// thread of its own; the returned group is done when the relay has ended and closed `plain`.
    private static func startRelay(_ tls: TLSTransport, plain: Int32, logger: Logger) -> DispatchGroup {
        let done = DispatchGroup()
        done.enter()
        Thread.start(named: "xpu-tls-relay") {
            defer {
                close(plain)
                done.leave()
            }
            do {
                try tls.relay(to: plain)
            } catch {
                logger.info("TLS relay ended", metadata: ["reason": "\(error)"])
            }
            // The client sees its connection end when the process has ended its stream.
            tls.shutdown()
        }
        return done
    }

    /// Answers the tenant process until its channel closes.
    private func supervise(_ control: TenantChannel, session: UInt64, usage: SessionUsage) {
        while let message = control.receive() {
            switch message {
            case .turnRequest:
                guard scheduler.isScheduled(session) else {
                    // Only sessions with a compute share ask; answer any other at once.
                    guard (try? control.send(.turnGranted)) != nil, case .turnDone? = control.receive() else { return }
                    continue
                }
                let alive = scheduler.run(session) { () -> (Bool, UInt64?) in
                    guard (try? control.send(.turnGranted)) != nil else { return (false, nil) }
                    // The kernel runs in the tenant process; usage reports may come meanwhile.
                    while let reply = control.receive() {
                        switch reply {
                        case .turnDone(let nanoseconds): return (true, nanoseconds)
                        case .usage(let report): Self.record(report, in: usage)
                        default: return (false, nil)
                        }
                    }
                    return (false, nil)
                }
                if !alive { return }
            case .usage(let report):
                Self.record(report, in: usage)
            case .scheduleQuery:
                let scheduled = scheduler.usage(session)
                let answer = TenantMessage.schedule(
                    deviceNanoseconds: scheduled.deviceNanoseconds, waitNanoseconds: scheduled.waitNanoseconds,
                    stalls: UInt64(scheduled.stalls))
                guard (try? control.send(answer)) != nil else { return }
            case .handOff, .turnGranted, .turnDone, .schedule:
                return  // never sent by a tenant process: the channel is broken
            }
        }
    }

    private static func record(_ report: TenantUsageReport, in usage: SessionUsage) {
        usage.memoryBytes.store(report.memoryBytes, ordering: .relaxed)
        usage.launches.store(report.launches, ordering: .relaxed)
        usage.meteredDeviceTime.withLock { $0 = report.deviceTime }
    }

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `executable --serve-session` with the client's connection as descriptor 3, the
    /// control channel as descriptor 4 and the shared memory, if any, as descriptor 5.
    private func spawn(client: Int32, control: Int32, memory: Int32?) throws(SpawnError) -> pid_t {
        // Copies above 3 to 5 first, so that placing one cannot overwrite another.
        let sources = ([client, control] + (memory.map { [$0] } ?? [])).map { fcntl($0, F_DUPFD_CLOEXEC, 10) }
        defer { for source in sources where source >= 0 { close(source) } }
        guard sources.allSatisfy({ $0 >= 0 }) else { throw SpawnError(description: "dup: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, sources[0], TenantWorker.clientDescriptor)
        posix_spawn_file_actions_adddup2(&actions, sources[1], TenantWorker.controlDescriptor)
        if sources.count > 2 { posix_spawn_file_actions_adddup2(&actions, sources[2], TenantWorker.memoryDescriptor) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The server's signal handling (graceful shutdown ignores SIGTERM and SIGINT, and blocks
        // signals on some threads) is not the tenant process's.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let arguments = [executable, "--serve-session", "--driver", driverPath, "--log-level", logLevel.rawValue]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard status == 0 else { throw SpawnError(description: "posix_spawn \(executable): \(String(cString: strerror(status)))") }
        return pid
    }

    /// Waits for the process (killing it if it lingers past `exitGrace`); how it ended.
    private func reap(_ pid: pid_t) -> String {
        let deadline = ContinuousClock.now + Self.exitGrace
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, ContinuousClock.now < deadline ? WNOHANG : 0)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { return "unknown (\(String(cString: strerror(errno))))" }
            if reaped == 0 {
                if ContinuousClock.now >= deadline { kill(pid, SIGKILL) }
                usleep(2_000)
            }
        }
        return status & 0x7f == 0 ? "exit \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
    }
}
