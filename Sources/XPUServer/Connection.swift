import CXPUDriver
import Logging
import XPUAdmission
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

    /// The server may agree to LZ4 bulk data (`--no-compression` turns it off).
    let compressionAllowed: Bool
    /// What any session may have (`--max-tenants-per-device`, slice sizes).
    let limits: ServerLimits
    /// The server's ledger (admission) and compute scheduler.
    let devices: ServerDevices
    /// Set when the server reports /metrics: the session's usage is shown while it is open.
    let metrics: ServerMetrics?
    /// Given when the pool preempts the session (RemoteServer.preempt).
    let preemption: PreemptionOrder
    /// The connection's place in the lobby until its Hello arrived (ConnectionLobby); nil in a
    /// tenant process, whose session was admitted by the server.
    let handshakeTicket: HandshakeTicket?

    /// What crossed this connection (logged when the session is released).
    let traffic = ConnectionTraffic()
    /// Told after each call served (a tenant process reports its usage then); set before serving.
    var callServed: (() -> Void)?
    /// Device printf output was dropped for a client that does not take it (logged once).
    private var droppedDeviceOutput = false

    /// Set when sessions run in tenant processes (`--tenant-processes`): after admission the
    /// session is handed to a process of its own, and this connection waits for it to end.
    let tenantProcesses: TenantProcesses?

    init(
        transport: any Transport, driver: Driver, sessionID: UInt64, logger: Logger, compressionAllowed: Bool = true,
        limits: ServerLimits = ServerLimits(), devices: ServerDevices, metrics: ServerMetrics? = nil,
        tenantProcesses: TenantProcesses? = nil, buffered: [UInt8] = [], preemption: PreemptionOrder = PreemptionOrder(),
        handshake: HandshakeTicket? = nil
    ) {
        self.preemption = preemption
        self.handshakeTicket = handshake
        self.compressionAllowed = compressionAllowed
        self.limits = limits
        self.devices = devices
        self.metrics = metrics
        self.tenantProcesses = tenantProcesses
        self.channel = FrameChannel(transport: transport, buffered: buffered)
        self.driver = driver
        self.sessionID = sessionID
        self.logger = logger
        self.logger[metadataKey: "session"] = "\(sessionID)"
    }

    /// A session admitted at the handshake, before the Welcome.
    struct Admitted {
        var hello: Hello
        var tenant: String?
        var tenancy: DeviceLedger.Tenancy
        var features: Features
    }

    func run() {
        guard let admitted = handshake() else { return }
        if let tenantProcesses {
            // The tenant process sends the Welcome and serves; the grant stays counted here
            // until it ends, however it ends.
            let usage = SessionUsage(session: sessionID, tenant: admitted.tenant, slice: admitted.tenancy.slice)
            if let slice = admitted.tenancy.slice, slice.computePercent != nil { devices.scheduler.register(sessionID, slice: slice) }
            metrics?.open(usage)
            let handOff = SessionHandOff(
                session: sessionID, client: admitted.hello.client, clientCUDAVersion: admitted.hello.clientCUDAVersion,
                slice: admitted.hello.slice, tenant: admitted.tenant, features: admitted.features.rawValue, metered: metrics != nil,
                buffered: channel.unconsumed)
            if !tenantProcesses.serve(handOff, transport: channel.transport, usage: usage, logger: logger) {
                refuse(reason: "the server could not start a process for the session", status: CUDA_ERROR_OPERATING_SYSTEM)
            }
            if let reason = preemption.reason {
                // The session's process saw its connection end (RemoteServer.preempt shut its
                // reading side) and closed; the client gets the status of a vanished server,
                // without the SessionEnd notice, which only a session thread sends.
                _ = metrics?.preemptions.add(1, ordering: .relaxed)
                logger.warning("session preempted", metadata: ["reason": "\(reason)", "notice": "not sent (tenant process)"])
            }
            metrics?.close(usage)
            end(admitted.tenancy, tenant: admitted.tenant)
            return
        }
        guard sendWelcome(features: admitted.features) else {
            logger.info("client left during the handshake")
            end(admitted.tenancy, tenant: admitted.tenant)
            return
        }
        if let platform = driver.openCL {
            serveOpenCL(platform, admitted)
            return
        }
        let session = open(
            client: admitted.hello.client, clientCUDAVersion: admitted.hello.clientCUDAVersion, tenant: admitted.tenant,
            slice: admitted.tenancy.slice, features: admitted.features, metered: metrics != nil, turns: devices.scheduler)
        metrics?.open(session.usage)
        defer {
            session.harvestDeviceTime()
            metrics?.close(session.usage)
            let released = session.releaseEverything(traffic: traffic)
            end(admitted.tenancy, tenant: session.usage.tenant)
            // Logged once everything is back, its slice included: a client that waits for the
            // line may then be admitted in its place.
            session.logger.info("session released", metadata: released)
        }
        serveUntilClosed(session)
    }

    /// Serves a session the server admitted and handed to this tenant process (`TenantWorker`):
    /// sends the Welcome, serves, frees everything, and reports the end to the server.
    func runHandedOff(_ handOff: SessionHandOff, control: TenantControl) {
        let features = Features(rawValue: handOff.features)
        guard sendWelcome(features: features) else {
            logger.info("client left during the handshake")
            return
        }
        let slice: Slice?
        do {
            slice = handOff.slice.isEmpty ? nil : Slice(try SliceRequest(parsing: handOff.slice))
        } catch {
            // The server parsed the same text when it admitted the session.
            logger.error("cannot read the handed-off slice", metadata: ["slice": "\(handOff.slice)", "reason": "\(error)"])
            return
        }
        let session = open(
            client: handOff.client, clientCUDAVersion: handOff.clientCUDAVersion, tenant: handOff.tenant, slice: slice,
            features: features, metered: handOff.metered, turns: control)
        control.startReporting(handOff.metered ? session.usage : nil)
        if handOff.metered { callServed = { control.callServed() } }
        defer {
            session.harvestDeviceTime()
            control.stopReporting()
            session.logger.info("session released", metadata: session.releaseEverything(traffic: traffic))
        }
        serveUntilClosed(session)
    }

    /// Serves an OpenCL session (`--device opencl`) until the connection ends, then frees what it
    /// held and gives back its slice.
    private func serveOpenCL(_ platform: OpenCLPlatform, _ admitted: Admitted) {
        logger.info("session open", metadata: ["client": "\(admitted.hello.client)", "api": "opencl"])
        let usage = SessionUsage(session: sessionID, tenant: admitted.tenant, slice: admitted.tenancy.slice)
        var turns: ComputeScheduler?
        if let slice = admitted.tenancy.slice, slice.computePercent != nil {
            devices.scheduler.register(sessionID, slice: slice)
            turns = devices.scheduler
        }
        let session = OpenCLSession(id: sessionID, platform: platform, usage: usage, logger: logger, turns: turns)
        metrics?.open(usage)
        defer {
            session.releaseEverything()
            metrics?.close(usage)
            // The scheduler's account, read before `end` takes the session out of the schedule.
            let scheduled = devices.scheduler.usage(sessionID)
            let slice = admitted.tenancy.slice
            end(admitted.tenancy, tenant: admitted.tenant)
            logger.info(
                "session released",
                metadata: [
                    "deviceNanoseconds": "\(scheduled.deviceNanoseconds)", "schedulerStalls": "\(scheduled.stalls)",
                    "compute": "\(slice?.computePercent.map { "\($0)%" } ?? "none")",
                    "mode": "\(slice?.capped == true ? "capped" : "guaranteed")",
                ])
        }
        do {
            try session.serve(channel)
        } catch {
            switch error {
            case _ where preemption.isGiven:
                break
            case .transport(let failure) where failure.code == .closed:
                logger.info("client disconnected")
            default:
                logger.warning("connection failed, closing session", metadata: ["reason": "\(error)"])
            }
        }
    }

    /// Serves calls until the connection ends, and logs how it ended.
    private func serveUntilClosed(_ session: Session) {
        do {
            try serve(session)
        } catch {
            switch error {
            case _ where preemption.isGiven:
                break  // the read side was shut to end the session: not the client's doing
            case .transport(let failure) where failure.code == .closed:
                logger.info("client disconnected")
            case .transport(let failure):
                logger.warning("connection failed, closing session", metadata: ["reason": "\(failure)"])
            case .protocolViolation(let violation):
                logger.warning("protocol violation, closing session", metadata: ["reason": "\(violation)"])
            }
        }
        if let reason = preemption.reason { sayPreempted(reason) }
    }

    /// Tells the client its session ends (it may not be listening: then it learns at its next
    /// call, as from a server that went away), logs and counts the preemption. What the session
    /// held is freed right after, as for any session that ends.
    private func sayPreempted(_ reason: String) {
        let notice = FrameHeader(
            length: 0, call: SessionEnd.call, flags: .reply, sequence: 0, status: CUDA_ERROR_DEVICE_UNAVAILABLE.rawValue)
        try? channel.send(notice, payload: SessionEnd(reason: reason).encoded)
        channel.transport.shutdown()
        _ = metrics?.preemptions.add(1, ordering: .relaxed)
        logger.warning("session preempted", metadata: ["reason": "\(reason)"])
    }

    /// Gives back what admitting the session counted: its slice and tenancy on the devices, its
    /// compute share, and its tenant's session.
    private func end(_ tenancy: DeviceLedger.Tenancy, tenant: String?) {
        devices.ledger.release(tenancy)
        devices.scheduler.unregister(sessionID)
        security.sessionEnded(tenant: tenant)
    }

    /// Reads the Hello, authenticates and admits the session's slice; nil when the session is
    /// refused (the client is told why) or the peer vanished.
    private func handshake() -> Admitted? {
        let hello: Hello
        do {
            // Received or not, the connection stops counting as pending; past the deadline the
            // lobby has shut the socket and this receive fails.
            defer { handshakeTicket?.finish() }
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
        switch Session.admit(hello.slice, driver: driver, limits: limits, ledger: devices.ledger, session: sessionID) {
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
        return Admitted(hello: hello, tenant: tenant, tenancy: tenancy, features: features)
    }

    /// Opens the session: false when the client is gone.
    private func sendWelcome(features: Features) -> Bool {
        let welcome = Welcome(features: features.rawValue, session: sessionID, driverVersion: driver.version)
        do {
            try channel.send(FrameHeader(length: 0, call: 0, flags: .reply, sequence: 0), payload: welcome.encoded)
            return true
        } catch {
            return false
        }
    }

    /// The session of an admitted client whose Welcome went out.
    private func open(
        client: String, clientCUDAVersion: Int32, tenant: String?, slice: Slice?, features: Features, metered: Bool,
        turns: any ComputeTurns
    ) -> Session {
        logger.info("session open", metadata: ["client": "\(client)", "cuda": "\(clientCUDAVersion)"])
        let usage = SessionUsage(session: sessionID, tenant: tenant, slice: slice)
        let session = Session(id: sessionID, client: client, driver: driver, logger: logger, usage: usage, turns: turns)
        session.compression = features.contains(.lz4)
        session.deviceOutput = features.contains(.deviceOutput)
        session.slice = slice
        // Sessions with a compute share are measured by the ComputeScheduler; the others by
        // events around their launches (DeviceTimeMeter) when the server reports /metrics.
        if metered && !usage.isScheduled { session.management.meter.enable(now: DeviceTimeMeter.now()) }
        return session
    }

    /// Tells a client why it was refused (a version it can decode, whatever it sent).
    private func refuse(reason: String, status: CUresult = CUDA_ERROR_INVALID_VALUE) {
        let welcome = Welcome(features: 0, session: 0, driverVersion: driver.version, reason: reason)
        try? channel.send(
            FrameHeader(length: 0, call: 0, flags: .reply, sequence: 0, status: status.rawValue),
            payload: welcome.encoded)
    }

    /// Sends what the session's kernels printed during the call just served, ahead of its reply
    /// (a client that did not ask for it gets nothing: the output is dropped, and said so once).
    private func sendDeviceOutput(_ session: Session) throws(FrameError) {
        let text = DeviceOutputCollector.take()
        guard !text.isEmpty else { return }
        guard session.deviceOutput else {
            if !droppedDeviceOutput {
                droppedDeviceOutput = true
                logger.notice("the client does not take device printf output; dropping it")
            }
            return
        }
        let notice = DeviceOutputNotice(text: text)
        let header = FrameHeader(length: 0, call: DeviceOutputNotice.call, flags: .reply, sequence: 0)
        do {
            try channel.send(header, payload: notice.encoded)
        } catch {
            throw .transport(error)
        }
        traffic.bytesSent += FrameHeader.size + text.count + 4
    }

    /// Serves the fire-and-forget launches already buffered right behind the one just served, in
    /// the same context, without the loop's per-frame work (reading a header, checks, selecting
    /// the context): a burst of launches is most of what a training step sends. Stops at
    /// anything else, which the loop then handles as usual: another call, other flags or context,
    /// a malformed frame (the loop reports it), a launch that fails, a preemption. Returns the
    /// first failure, to be latched.
    private func serveBufferedLaunches(_ session: Session, context: UInt64, following: BufferedLaunches) -> CUresult? {
        while !preemption.isGiven, let frame = following.next(accepting: { $0 == context }) {
            let launched = session.serveLaunch(frame, following: following)
            if launched.status != CUDA_SUCCESS { return launched.status }
            if let failure = launched.deferredFailure { return failure }
        }
        return nil
    }

    /// Reads frames, hands each request to the session and sends its reply, until the connection
    /// ends. Owns the framing state: the failure latched from fire-and-forget calls (returned with
    /// the next reply) and whether the next header may be read ahead.
    private func serve(_ session: Session) throws(FrameError) {
        // The first error of a fire-and-forget call, returned with the next reply.
        var latched: CUresult?
        // The last frame was a host-to-device chunk with more of its copy to come.
        var bulkFollows = false
        let following = BufferedLaunches(channel: channel, traffic: traffic)
        while !preemption.isGiven {
            // The header first: a host-to-device chunk's data is received where it belongs (and
            // when the last frame said another chunk follows, nothing of it is read ahead).
            let header = try channel.receiveHeader(readAhead: !bulkFollows)
            bulkFollows = false
            guard !header.flags.contains(.reply) else {
                throw .protocolViolation(ProtocolError(.malformed, "client sent a reply frame"))
            }
            guard let call = CallID(rawValue: header.call), call != .handshake else {
                throw .protocolViolation(ProtocolError(.unknownCall, "call id \(header.call)"))
            }
            guard !header.flags.contains(.compressed) || session.compression else {
                throw .protocolViolation(ProtocolError(.malformed, "compressed frame in a session without compression"))
            }
            traffic.calls += 1
            traffic.bytesReceived += FrameHeader.size + Int(header.length)
            if header.flags.contains(.compressed) { traffic.compressedChunksReceived += 1 }
            session.begin(call, context: header.context)
            var outcome: CallOutcome
            if call == .memcpyHtoD {
                outcome = try session.receiveCopyToDevice(header, from: channel)
                bulkFollows = outcome.bulkFollows
            } else if call == .launchKernel {
                // Served where it lies in the receive buffer: the hot path of fire-and-forget
                // launches copies and allocates nothing.
                var launched = LaunchOutcome(status: CUDA_SUCCESS)
                var malformed: ProtocolError?
                let inBuffer = try channel.withPayloadInPlace(count: Int(header.length)) { payload -> Bool in
                    do throws(ProtocolError) {
                        launched = session.serveLaunch(try LaunchKernelFrame(decoding: payload), following: following)
                    } catch {
                        malformed = error
                    }
                    return true
                }
                guard inBuffer != nil else {
                    throw .protocolViolation(ProtocolError(.tooLarge, "launch frame of \(header.length) bytes"))
                }
                if let malformed {
                    throw .protocolViolation(ProtocolError(malformed.code, "\(call): \(malformed.message)"))
                }
                outcome = CallOutcome(status: launched.status, payload: [])
                if let failure = launched.deferredFailure {
                    // A launch a compute turn took from the buffer failed: its frame has no reply.
                    if latched == nil, outcome.status == CUDA_SUCCESS { latched = failure }
                } else if header.flags == .noReply, launched.status == CUDA_SUCCESS,
                    let failure = serveBufferedLaunches(session, context: header.context, following: following), latched == nil
                {
                    latched = failure
                }
            } else {
                let payload = try channel.receivePayload(count: Int(header.length))
                do {
                    outcome = try session.replay(call, flags: header.flags, payload)
                } catch {
                    throw .protocolViolation(ProtocolError(error.code, "\(call): \(error.message)"))
                }
            }
            if header.flags.contains(.noReply) {
                if outcome.status != CUDA_SUCCESS, latched == nil { latched = outcome.status }
                callServed?()
                continue
            }
            session.harvestDeviceTime()
            try sendDeviceOutput(session)
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
            traffic.bytesSent += FrameHeader.size + outcome.payload.count + outcome.bulk.count
            session.replied(
                bulkBytes: outcome.bulk.count, nanoseconds: monotonicNanoseconds() - sendStart,
                delivery: channel.transport.deliveryRate())
            if outcome.flags.contains(.compressed) { traffic.compressedChunksSent += 1 }
            callServed?()
        }
    }
}
