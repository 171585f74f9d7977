import CXPUDriver
import Logging
import XPUProtocol
import XPUTransport

extension RemoteServer {
    /// Prepares an accepted connection before its Hello: the TLS handshake when TLS is on, and
    /// what is known of the peer for authentication. nil when the connection was refused here
    /// (logged with the reason; the thread then ends and the socket closes). The TLS handshake
    /// must end by the `handshake` deadline, at which the lobby shuts the socket down.
    func secure(_ socket: SocketTransport, session: UInt64, handshake: HandshakeTicket) -> (any Transport, ConnectionSecurity)? {
        var logger = logger
        logger[metadataKey: "session"] = "\(session)"
        var connection = ConnectionSecurity(authenticator: security.authenticator, peerHost: socket.peerHost)
        if socket.peerHost == "unix" {
            // Same node: shared-memory rings set up over the Unix socket (no TLS; the socket
            // file's permissions decide who may connect, the policy still applies).
            connection.transportName = "shm"
            do {
                return (try SharedMemoryTransport.accept(socket), connection)
            } catch {
                logger.warning("shared-memory setup failed, closing connection", metadata: ["reason": "\(error.message)"])
                return nil
            }
        }
        guard let tls = security.tls else { return (socket, connection) }
        // A TLS record starts with 0x16 (handshake). Anything else is most likely our own
        // plaintext Hello: read it and answer in plaintext, so the client learns why.
        guard let first = socket.peekFirstByte(timeoutMilliseconds: handshake.remainingMilliseconds) else {
            logger.info("client sent nothing before the TLS handshake, closing connection", metadata: ["peer": "\(connection.peerHost)"])
            return nil
        }
        guard first == 0x16 else {
            let reason = "this server requires TLS: connect with XPU_SERVER=tls://HOST:PORT and XPU_TLS_CA"
            logger.warning(
                "plaintext client refused", metadata: ["reason": "\(reason)", "peer": "\(connection.peerHost)"])
            refusePlaintext(socket, reason: reason)
            return nil
        }
        let secured: TLSTransport
        do {
            secured = try TLSTransport(socket: socket, context: tls, expectedHost: nil)
        } catch {
            logger.warning(
                "TLS handshake failed, closing connection", metadata: ["reason": "\(error.message)", "peer": "\(connection.peerHost)"])
            // Let the client read the TLS alert (TLS 1.3 clients learn of a refused certificate
            // only after they have sent their Hello, which would otherwise reset the connection).
            socket.lingerAfterRefusal()
            return nil
        }
        connection.transportName = "tls"
        connection.certificateCommonName = secured.peerCommonName
        return (secured, connection)
    }

    /// Answers a plaintext client's Hello with a refusal it can decode, then closes.
    private func refusePlaintext(_ socket: SocketTransport, reason: String) {
        let channel = FrameChannel(transport: socket)
        // Read the Hello first: closing with unread input would reset the connection and the
        // client could lose the answer.
        guard (try? channel.receive()) != nil else { return }
        let welcome = Welcome(features: 0, session: 0, driverVersion: driver.version, reason: reason)
        try? channel.send(
            FrameHeader(length: 0, call: 0, flags: .reply, sequence: 0, status: CUDA_ERROR_NOT_PERMITTED.rawValue),
            payload: welcome.encoded)
        socket.lingerAfterRefusal()
    }
}
