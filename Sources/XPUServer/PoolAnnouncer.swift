import CXPUDriver
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import XPUProtocol
import XPUTransport

#if canImport(Glibc)
    import Glibc
#endif

/// Registers this server with pool directories (`--pool`) and keeps it registered: every
/// `interval` it sends each directory a heartbeat with its devices, what their memory and compute
/// the DeviceLedger has not granted yet, its labels and the address clients should use. A
/// directory that is down is retried at the next beat, so a restarted directory rebuilds its
/// view within one interval. The directory's view is advice; this server's ledger stays the truth.
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
        let thread = Thread { [self] in beatLoop() }
        thread.name = "xpu-pool-heartbeat"
        thread.start()
        try? await gracefulShutdown()
        stopping.store(true, ordering: .relaxed)
    }

    /// This server as a heartbeat describes it now.
    func heartbeat() -> PoolHeartbeat {
        let admitted = DeviceLedger.shared.admittedGrants()
        var count: Int32 = 0
        if driver.table.cuDeviceGetCount(&count) != CUDA_SUCCESS { count = 0 }
        var devices: [PoolDevice] = []
        for device in 0..<max(count, 0) {
            var total = 0
            _ = driver.table.cuDeviceTotalMem_v2(&total, device)
            let granted = DeviceLedger.shared.granted(on: device)
            let totalBytes = UInt64(max(total, 0))
            let freeCompute = max(0, 100 - granted.compute) * 10
            devices.append(
                PoolDevice(
                    totalMemory: totalBytes, freeMemory: totalBytes - min(granted.memory, totalBytes),
                    freeComputeMilli: UInt32(freeCompute.rounded(.down))))
        }
        return PoolHeartbeat(address: advertise, labels: labels, devices: devices, sessions: UInt32(server.sessionCount), admitted: admitted)
    }

    private func beatLoop() {
        var channels: [FrameChannel?] = Array(repeating: nil, count: directories.count)
        var reachable: [Bool?] = Array(repeating: nil, count: directories.count)
        var sequence: UInt32 = 0
        while !stopping.load(ordering: .relaxed) {
            let payload = heartbeat().encoded
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
                    let (header, _) = try channel.receive()
                    guard header.call == PoolCall.heartbeat.rawValue, header.sequence == sequence else {
                        throw FrameError.protocolViolation(ProtocolError(.malformed, "unexpected reply to a heartbeat"))
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
            Thread.sleep(forTimeInterval: Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18)
        }
        for channel in channels { channel?.transport.shutdown() }
    }
}
