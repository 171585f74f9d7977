import CXPUDriver
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import XPUAdmission
import XPUProtocol
import XPUTiming
import XPUTransport

#if canImport(Glibc)
    import Glibc
#endif

/// Registers this server with pool directories (`--pool`) and keeps it registered: every
/// `interval` it sends each directory a heartbeat with its devices, what their memory and compute
/// the DeviceLedger has not granted yet, how busy they were since the last beat, the slices it
/// holds, its labels and the address clients should use. A directory that is down is retried at
/// the next beat, so a restarted directory rebuilds its view within one interval. The directory's
/// view is advice; this server's ledger stays the truth.
///
/// It also beats as soon as a slice is admitted or given back (a request may wait for it in the
/// directory's queue), and carries out the preemptions a directory orders in its reply.
///
/// The beat is the one thing that wakes it: between beats its thread sleeps on the ledger's
/// changes until the next beat is due. The periodic beat itself is the registration (a directory
/// drops a server whose beats stop, and a restarted directory learns of it only so), so it runs
/// only where `--pool` names directories, every `interval` (one second), never faster.
public final class PoolAnnouncer: Service, @unchecked Sendable {
    let directories: [Endpoint]
    let advertise: String
    let labels: [String]
    let interval: Duration
    let driver: Driver
    let server: RemoteServer
    let logger: Logger
    private let stopping = Atomic<Bool>(false)

    public init(
        directories: [Endpoint], advertise: String, labels: [String], interval: Duration = .seconds(1),
        driver: Driver, server: RemoteServer, logger: Logger
    ) {
        self.directories = directories
        self.advertise = advertise
        self.labels = labels
        self.interval = interval
        self.driver = driver
        self.server = server
        self.logger = logger
    }

    public func run() async throws {
        Thread.start(named: "xpu-heartbeat") { [self] in beatLoop() }
        try? await gracefulShutdown()
        stopping.store(true, ordering: .relaxed)
        server.devices.ledger.changes.wakeWaiters()
    }

    /// This server as a heartbeat describes it now, with the devices' busy time over `window`.
    func heartbeat(window: inout DeviceBusyWindow) -> PoolHeartbeat {
        let busy = server.metrics.map { metrics in
            window.read(busy: metrics.busyTime(), now: monotonicNanoseconds(), devices: metrics.devices)
        }
        let admitted = server.devices.ledger.admittedGrants()
        var devices: [PoolDevice] = []
        for device in 0..<driver.deviceCount() {
            let granted = server.devices.ledger.granted(on: device)
            let totalBytes = driver.totalMemory(device)
            let freeCompute = max(0, 100 - granted.compute) * 10
            devices.append(
                PoolDevice(
                    totalMemory: totalBytes, freeMemory: totalBytes - min(granted.memory, totalBytes),
                    freeComputeMilli: UInt32(freeCompute.rounded(.down)),
                    busyMilli: busy.map { UInt32((($0[device] ?? 0) * 1000).rounded()) }))
        }
        let slices = server.devices.ledger.heldSlices().map { held in
            PoolSlice(
                session: held.session, device: held.slice.device, memory: held.slice.memoryQuota ?? 0,
                computeMilli: UInt32(((held.slice.computePercent ?? 0) * 10).rounded(.up)),
                priority: UInt8(held.slice.priority.rank), grant: held.slice.grant ?? "")
        }
        return PoolHeartbeat(
            address: advertise, labels: labels, devices: devices, sessions: UInt32(server.sessionCount), admitted: admitted,
            slices: slices)
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }

    /// Ends the sessions a directory's reply names.
    private func carryOut(_ reply: PoolHeartbeatReply, from directory: Endpoint) {
        for order in reply.preemptions {
            let found = server.preempt(session: order.session, reason: order.reason)
            logger.info(
                found ? "preempting session \(order.session)" : "session \(order.session) to preempt has ended already",
                metadata: ["directory": "\(directory)", "reason": "\(order.reason)"])
        }
    }

    private func beatLoop() {
        var channels: [FrameChannel?] = Array(repeating: nil, count: directories.count)
        var reachable: [Bool?] = Array(repeating: nil, count: directories.count)
        var sequence: UInt32 = 0
        var window = DeviceBusyWindow(now: monotonicNanoseconds())
        while !stopping.load(ordering: .relaxed) {
            let changes = server.devices.ledger.changes.current
            let payload = heartbeat(window: &window).encoded
            sequence &+= 1
            for (index, directory) in directories.enumerated() {
                do throws(FrameError) {
                    if channels[index] == nil {
                        do {
                            let transport = try SocketTransport.connect(to: directory)
                            var timeout = timeval(tv_sec: 2, tv_usec: 0)
                            _ = setsockopt(
                                transport.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                            channels[index] = FrameChannel(transport: transport)
                        } catch {
                            throw FrameError.transport(error)
                        }
                    }
                    let channel = channels[index]!
                    do {
                        try channel.send(
                            FrameHeader(length: 0, call: PoolCall.heartbeat.rawValue, sequence: sequence), payload: payload)
                    } catch {
                        throw FrameError.transport(error)
                    }
                    let (header, reply) = try channel.receive()
                    guard header.call == PoolCall.heartbeat.rawValue, header.sequence == sequence else {
                        throw FrameError.protocolViolation(ProtocolError(.malformed, "unexpected reply to a heartbeat"))
                    }
                    do {
                        carryOut(try PoolHeartbeatReply(decoding: reply), from: directory)
                    } catch {
                        throw FrameError.protocolViolation(error)
                    }
                    if reachable[index] != true {
                        logger.info("registered with the pool directory", metadata: ["directory": "\(directory)", "advertise": "\(advertise)"])
                    }
                    reachable[index] = true
                } catch {
                    channels[index]?.transport.shutdown()
                    channels[index] = nil
                    if reachable[index] != false {
                        logger.warning("pool directory unreachable, retrying every beat", metadata: ["directory": "\(directory)", "reason": "\(error)"])
                    }
                    reachable[index] = false
                }
            }
            // Until the next beat is due, or a slice was admitted or given back since this one was built.
            let due = monotonicNanoseconds() + Self.nanoseconds(interval)
            server.devices.ledger.changes.wait(after: changes, until: due) { stopping.load(ordering: .relaxed) }
        }
        for channel in channels { channel?.transport.shutdown() }
    }
}
