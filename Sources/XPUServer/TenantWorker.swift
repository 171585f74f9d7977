#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import Logging
import XPUProtocol
import XPUTransport

/// The process of one session: `xpu-remote-server --serve-session`, started by a server with
/// `--tenant-processes` (`TenantProcesses`), never by hand. It inherits the client's connection
/// and its control channel, receives the session's state, loads the driver and serves the
/// session exactly as a session thread would, then exits.
public enum TenantWorker {
    static let clientDescriptor: Int32 = 3
    static let controlDescriptor: Int32 = 4
    /// A shared-memory session's rings (a sealed memfd); absent for a connected socket.
    static let memoryDescriptor: Int32 = 5

    /// Serves the handed-over session; returns the process's exit code.
    public static func run(driverPath: String, logger: Logger) -> Int32 {
        var status = stat()
        guard fstat(controlDescriptor, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK,
            fstat(clientDescriptor, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK
        else {
            logger.critical("--serve-session is for the processes a server with --tenant-processes starts")
            return 2
        }
        for descriptor in [clientDescriptor, controlDescriptor] { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        let channel = TenantChannel(socket: SocketTransport(descriptor: controlDescriptor))
        let socket = SocketTransport(descriptor: clientDescriptor)
        guard case .handOff(let handOff)? = channel.receive() else {
            logger.error("no session was handed over")
            return 2
        }
        var logger = logger
        logger[metadataKey: "session"] = "\(handOff.session)"
        let client: any Transport
        if let position = handOff.sharedMemory {
            _ = fcntl(memoryDescriptor, F_SETFD, FD_CLOEXEC)
            do {
                client = try SharedMemoryTransport.resume(socket: socket, memory: memoryDescriptor, position: position)
            } catch {
                logger.error("cannot take over the session's shared memory", metadata: ["reason": "\(error.message)"])
                return 2
            }
        } else {
            client = socket
        }
        let driver: Driver
        do {
            driver = try Driver(path: driverPath)
        } catch {
            logger.error("cannot use the driver in the session's process", metadata: ["reason": "\(error)"])
            let welcome = Welcome(features: 0, session: 0, driverVersion: 0, reason: "the server cannot load its driver: \(error)")
            try? FrameChannel(transport: client).send(
                FrameHeader(length: 0, call: 0, flags: .reply, sequence: 0, status: CUDA_ERROR_NO_DEVICE.rawValue),
                payload: welcome.encoded)
            return 2
        }
        let control = TenantControl(channel: channel, logger: logger)
        let connection = Connection(
            transport: client, driver: driver, sessionID: handOff.session, logger: logger,
            // A tenant process admits and schedules nothing itself: the server's ledger and
            // scheduler act for it over the control channel (TenantControl).
            devices: ServerDevices(), buffered: handOff.buffered)
        connection.runHandedOff(handOff, control: control)
        return 0
    }
}
