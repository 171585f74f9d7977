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

    init(transport: any Transport, driver: Driver, sessionID: UInt64, logger: Logger, compressionAllowed: Bool = true) {
        self.compressionAllowed = compressionAllowed
        self.channel = FrameChannel(transport: transport)
        self.driver = driver
        self.sessionID = sessionID
        self.logger = logger
        self.logger[metadataKey: "session"] = "\(sessionID)"
    }

    func run() {
        guard let session = handshake() else { return }
        defer {
            session.statistics.deviceNanoseconds = ComputeScheduler.shared.deviceNanoseconds(session.id)
            session.releaseEverything()
            if let slice = session.slice {
                DeviceLedger.shared.release(slice)
                ComputeScheduler.shared.unregister(session.id)
            }
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

    /// Reads the Hello and answers it; nil when the session is refused or the peer vanished.
    private func handshake() -> Session? {
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
        if let refusal = security.admit(token: hello.token, slice: hello.slice, client: hello.client, logger: logger) {
            refuse(reason: refusal, status: CUDA_ERROR_NOT_PERMITTED)
            return nil
        }
        let slice: Slice?
        switch Session.admitSlice(hello.slice, table: driver.table) {
        case .success(let granted):
            slice = granted
        case .failure(let refusal):
            logger.warning("slice refused", metadata: ["slice": "\(hello.slice)", "reason": "\(refusal.reason)"])
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
            return nil
        }
        logger.info("session open", metadata: ["client": "\(hello.client)", "cuda": "\(hello.clientCUDAVersion)"])
        let session = Session(id: sessionID, client: hello.client, driver: driver, logger: logger)
        session.compression = features.contains(.lz4)
        session.slice = slice
        return session
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
            let (header, payload) = try channel.receive()
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
            session.statistics.bytesReceived += FrameHeader.size + payload.count
            if header.flags.contains(.compressed) { session.statistics.compressedChunksReceived += 1 }
            session.selectContext(header.context)
            var reader = WireReader(payload)
            var outcome: CallOutcome
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
            if Self.contextDisturbing.contains(call) { session.currentContext = .max }
            if header.flags.contains(.noReply) {
                if outcome.status != CUDA_SUCCESS, latched == nil { latched = outcome.status }
                continue
            }
            if outcome.status == CUDA_SUCCESS, let status = latched {
                outcome = .failure(status)
                latched = nil
            }
            let reply = FrameHeader(
                length: 0, call: header.call, flags: outcome.flags.union(.reply), sequence: header.sequence,
                status: outcome.status.rawValue)
            let sendStart = monotonicNanoseconds()
            let sent: Result<Void, TransportError> = outcome.bulk.withUnsafeBytes { bulk in
                Result { () throws(TransportError) in
                    if bulk.isEmpty {
                        try channel.send(reply, payload: outcome.payload)
                    } else {
                        try channel.send(reply, payload: outcome.payload, bulk: bulk)
                    }
                }
            }
            if case .failure(let error) = sent { throw .transport(error) }
            session.statistics.bytesSent += FrameHeader.size + outcome.payload.count + outcome.bulk.count
            session.downloadGovernor.recordSend(bytes: outcome.bulk.count, nanoseconds: monotonicNanoseconds() - sendStart)
            if outcome.flags.contains(.compressed) { session.statistics.compressedChunksSent += 1 }
        }
    }
}
