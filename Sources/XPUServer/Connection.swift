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

    /// Calls after which the driver's current context on this thread is no longer the one the
    /// session last selected.
    static let contextDisturbing: Set<CallID> = [.cuCtxCreate_v2, .cuCtxDestroy_v2]

    init(transport: any Transport, driver: Driver, sessionID: UInt64, logger: Logger) {
        self.channel = FrameChannel(transport: transport)
        self.driver = driver
        self.sessionID = sessionID
        self.logger = logger
        self.logger[metadataKey: "session"] = "\(sessionID)"
    }

    func run() {
        guard let session = handshake() else { return }
        defer { session.releaseEverything() }
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
        let welcome = Welcome(
            features: hello.features & Features.supported.rawValue, session: sessionID, driverVersion: driver.version)
        do {
            try channel.send(FrameHeader(length: 0, call: 0, flags: .reply, sequence: 0), payload: welcome.encoded)
        } catch {
            logger.info("client left during the handshake")
            return nil
        }
        logger.info("session open", metadata: ["client": "\(hello.client)", "cuda": "\(hello.clientCUDAVersion)"])
        return Session(id: sessionID, client: hello.client, driver: driver, logger: logger)
    }

    /// Tells a client why it was refused (a version it can decode, whatever it sent).
    private func refuse(reason: String) {
        let welcome = Welcome(features: 0, session: 0, driverVersion: driver.version, reason: reason)
        try? channel.send(
            FrameHeader(length: 0, call: 0, flags: .reply, sequence: 0, status: CUDA_ERROR_INVALID_VALUE.rawValue),
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
            session.selectContext(header.context)
            var reader = WireReader(payload)
            var outcome: CallOutcome
            do {
                if let generated = try session.dispatchRemote(call, &reader) {
                    outcome = generated
                } else {
                    outcome = try session.dispatchCustom(call, &reader)
                }
            } catch {
                throw .protocolViolation(ProtocolError(error.code, "\(call): \(error.message)"))
            }
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
                length: 0, call: header.call, flags: .reply, sequence: header.sequence, status: outcome.status.rawValue)
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
        }
    }
}
