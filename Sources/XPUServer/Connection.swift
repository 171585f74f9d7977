import CXPUDriver
import Logging
import XPUProtocol
import XPUTransport

/// Serves one client connection from handshake to end, on its own thread.
///
/// A protocol violation (bad magic or version, truncated or oversized frame, unknown call,
/// malformed payload) closes this session only, with the reason logged; the session's objects
/// are freed whenever and however the connection ends.
final class Connection: @unchecked Sendable {
    let channel: FrameChannel
    let driver: Driver
    let sessionID: UInt64
    var logger: Logger
    /// Authentication and what is known of the peer; set by `RemoteServer` before `run`.
    var security = ConnectionSecurity()

    /// Calls after which the driver's current context on this thread is no longer the one the
    /// session last selected.
    static let contextDisturbing: Set<CallID> = [.cuCtxCreate_v2, .cuCtxDestroy_v2]

    /// The server may agree to LZ4 bulk data (`--no-compression` turns it off).
    let compressionAllowed: Bool
    /// What any session may have (`--max-tenants-per-device`, slice sizes).
    let limits: ServerLimits
    /// Set when the server reports /metrics: the session's usage is shown while it is open.
    let metrics: ServerMetrics?

    init(
        transport: any Transport, driver: Driver, sessionID: UInt64, logger: Logger, compressionAllowed: Bool = true,
        limits: ServerLimits = ServerLimits(), metrics: ServerMetrics? = nil
    ) {
        self.compressionAllowed = compressionAllowed
        self.limits = limits
        self.metrics = metrics
        self.channel = FrameChannel(transport: transport)
        self.driver = driver
        self.sessionID = sessionID
        self.logger = logger
        self.logger[metadataKey: "session"] = "\(sessionID)"
    }

    func run() {
        guard let (session, tenancy) = handshake() else { return }
        defer {
            session.harvestDeviceTime()
            metrics?.close(session.usage)
            let scheduled = ComputeScheduler.shared.usage(session.id)
            session.statistics.deviceNanoseconds = scheduled.deviceNanoseconds
            session.statistics.schedulerStalls = scheduled.stalls
            session.releaseEverything()
            end(tenancy, tenant: session.usage.tenant)
        }
        do {
            try serve(session)
        } catch {
            switch error {
            case .transport(let failure) where failure.code == .closed:
                logger.info("client disconnected")
            case .transport(let failure):
                logger.warning("connection failed, closing session", metadata: ["reason": "\(failure)"])
            case .protocolViolation(let violation):
                logger.warning("protocol violation, closing session", metadata: ["reason": "\(violation)"])
            }
        }
    }

    /// Gives back what admitting the session counted: its slice and tenancy on the devices, its
    /// compute share, and its tenant's session.
    private func end(_ tenancy: DeviceLedger.Tenancy, tenant: String?) {
        DeviceLedger.shared.release(tenancy)
        ComputeScheduler.shared.unregister(sessionID)
        security.sessionEnded(tenant: tenant)
    }

    /// Reads the Hello and answers it; nil when the session is refused or the peer vanished.
    private func handshake() -> (Session, DeviceLedger.Tenancy)? {
        let hello: Hello
        do {
            let (header, payload) = try channel.receive()
            guard header.call == CallID.handshake.rawValue else {
                throw FrameError.protocolViolation(ProtocolError(.malformed, "first frame is call \(header.call), not the handshake"))
            }
            hello = try Hello(decoding: payload)
        } catch let error as FrameError {
            logger.warning("handshake failed, closing connection", metadata: ["reason": "\(error)"])
            return nil
        } catch {
            logger.warning("handshake refused, closing connection", metadata: ["reason": "\(error)"])
            refuse(reason: "\(error)")
            return nil
        }
        let tenant: String?
        switch security.admit(token: hello.token, slice: hello.slice, client: hello.client, logger: logger) {
        case .admitted(let admitted):
            tenant = admitted
        case .refused(let reason):
            refuse(reason: reason, status: CUDA_ERROR_NOT_PERMITTED)
            return nil
        }
        let tenancy: DeviceLedger.Tenancy
        switch Session.admit(hello.slice, table: driver.table, limits: limits) {
        case .success(let granted):
            tenancy = granted
        case .failure(let refusal):
            logger.warning("slice refused", metadata: ["slice": "\(hello.slice)", "reason": "\(refusal.reason)"])
            security.sessionEnded(tenant: tenant)
            refuse(reason: refusal.reason, status: refusal.status)
            return nil
        }
        var features = Features(rawValue: hello.features).intersection(Features.supported)
        if LZ4Codec.shared == nil || !compressionAllowed { features.remove(.lz4) }
        let welcome = Welcome(features: features.rawValue, session: sessionID, driverVersion: driver.version)
        do {
            try channel.send(FrameHeader(length: 0, call: 0, flags: .reply, sequence: 0), payload: welcome.encoded)
        } catch {
            logger.info("client left during the handshake")
            end(tenancy, tenant: tenant)
            return nil
        }
        logger.info("session open", metadata: ["client": "\(hello.client)", "cuda": "\(hello.clientCUDAVersion)"])
        let usage = SessionUsage(session: sessionID, tenant: tenant, slice: tenancy.slice)
        let session = Session(id: sessionID, client: hello.client, driver: driver, logger: logger, usage: usage)
        session.compression = features.contains(.lz4)
        session.slice = tenancy.slice
        if let metrics {
            // Sessions with a compute share are measured by the ComputeScheduler; the others
            // by events around their launches (DeviceTimeMeter).
            if !usage.isScheduled { session.management.meter.enable(now: DeviceTimeMeter.now()) }
            metrics.open(usage)
        }
        return (session, tenancy)
    }

    /// Tells a client why it was refused (a version it can decode, whatever it sent).
    private func refuse(reason: String, status: CUresult = CUDA_ERROR_INVALID_VALUE) {
        let welcome = Welcome(features: 0, session: 0, driverVersion: driver.version, reason: reason)
        try? channel.send(
            FrameHeader(length: 0, call: 0, flags: .reply, sequence: 0, status: status.rawValue),
            payload: welcome.encoded)
    }

    private func serve(_ session: Session) throws(FrameError) {
        // The first error of a fire-and-forget call, returned with the next reply.
        var latched: CUresult?
        while true {
            // The header first: a host-to-device chunk's data is received where it belongs (and
            // when the last frame said another chunk follows, nothing of it is read ahead).
            let header = try channel.receiveHeader(readAhead: !session.bulkFollows)
            session.bulkFollows = false
            guard !header.flags.contains(.reply) else {
                throw .protocolViolation(ProtocolError(.malformed, "client sent a reply frame"))
            }
            guard let call = CallID(rawValue: header.call), call != .handshake else {
                throw .protocolViolation(ProtocolError(.unknownCall, "call id \(header.call)"))
            }
            guard !header.flags.contains(.compressed) || session.compression else {
                throw .protocolViolation(ProtocolError(.malformed, "compressed frame in a session without compression"))
            }
            session.frameFlags = header.flags
            session.statistics.calls += 1
            session.statistics.bytesReceived += FrameHeader.size + Int(header.length)
            if header.flags.contains(.compressed) { session.statistics.compressedChunksReceived += 1 }
            session.selectContext(header.context)
            var outcome: CallOutcome
            if call == .memcpyHtoD {
                outcome = try session.receiveCopyToDevice(header, from: channel)
            } else {
                let payload = try channel.receivePayload(count: Int(header.length))
                var reader = WireReader(payload)
                let probe = call == .launchKernel ? session.launchWillReplay(payload) : nil
                do {
                    if let sliced = try session.dispatchSliced(call, reader) {
                        outcome = sliced
                    } else if let generated = try session.dispatchRemote(call, &reader) {
                        outcome = generated
                    } else {
                        outcome = try session.dispatchCustom(call, &reader)
                    }
                } catch {
                    throw .protocolViolation(ProtocolError(error.code, "\(call): \(error.message)"))
                }
                if let probe { session.launchDidReplay(probe, status: outcome.status) }
            }
            if Self.contextDisturbing.contains(call) { session.currentContext = .max }
            if header.flags.contains(.noReply) {
                if outcome.status != CUDA_SUCCESS, latched == nil { latched = outcome.status }
                continue
            }
            session.harvestDeviceTime()
            if outcome.status == CUDA_SUCCESS, let status = latched {
                outcome = .failure(status)
                latched = nil
            }
            let reply = FrameHeader(
                length: 0, call: header.call, flags: outcome.flags.union(.reply), sequence: header.sequence,
                status: outcome.status.rawValue)
            let sendStart = monotonicNanoseconds()
            do {
                if outcome.bulk.isEmpty {
                    try channel.send(reply, payload: outcome.payload)
                } else {
                    try channel.send(reply, payload: outcome.payload, bulk: outcome.bulk)
                }
            } catch {
                throw .transport(error)
            }
            session.statistics.bytesSent += FrameHeader.size + outcome.payload.count + outcome.bulk.count
            session.downloadGovernor.recordSend(bytes: outcome.bulk.count, nanoseconds: monotonicNanoseconds() - sendStart)
            if outcome.flags.contains(.compressed) { session.statistics.compressedChunksSent += 1 }
        }
    }
}
