import CXPUTLS

#if canImport(Glibc)
    import Glibc
#endif

/// TLS settings for one side, loaded once (certificates, keys, CA bundle) and shared by every
/// connection: an OpenSSL `SSL_CTX` restricted to TLS 1.3, with peer verification on.
///
/// OpenSSL 3 (`libssl.so.3`, `libcrypto.so.3`) is loaded with `dlopen` the first time a context is
/// made (`CXPUTLS`), so nothing links it and hosts without it fail only when TLS is asked for.
public final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    public let isServer: Bool

    /// A client that verifies the server against `caFile` (nil: the system trust store) and, for
    /// mutual TLS, presents `certificateFile` with `keyFile`.
    public static func client(caFile: String?, certificateFile: String? = nil, keyFile: String? = nil)
        throws(TransportError) -> TLSContext
    {
        try TLSContext(server: false, certificateFile: certificateFile, keyFile: keyFile, caFile: caFile, requirePeerCertificate: false)
    }

    /// A server presenting `certificateFile`/`keyFile`. With `clientCAFile`, clients are asked for
    /// a certificate that must chain to it; `requireClientCertificate` refuses clients without one.
    public static func server(
        certificateFile: String, keyFile: String, clientCAFile: String? = nil, requireClientCertificate: Bool = false
    ) throws(TransportError) -> TLSContext {
        try TLSContext(
            server: true, certificateFile: certificateFile, keyFile: keyFile, caFile: clientCAFile,
            requirePeerCertificate: requireClientCertificate)
    }

    private init(server: Bool, certificateFile: String?, keyFile: String?, caFile: String?, requirePeerCertificate: Bool)
        throws(TransportError)
    {
        var error = [CChar](repeating: 0, count: 1024)
        let made: OpaquePointer? = withOptionalCString(certificateFile) { certificate in
            withOptionalCString(keyFile) { key in
                withOptionalCString(caFile) { ca in
                    var options = xpu_tls_options(
                        is_server: server ? 1 : 0, certificate_file: certificate, private_key_file: key, ca_file: ca,
                        require_peer_certificate: requirePeerCertificate ? 1 : 0)
                    return xpu_tls_context_create(&options, &error, error.count)
                }
            }
        }
        guard let made else { throw TransportError(.tls, text(error)) }
        context = made
        isServer = server
    }

    deinit {
        xpu_tls_context_free(context)
    }
}

/// A TLS 1.3 session over a connected TCP socket: the same byte stream as `SocketTransport`,
/// encrypted and authenticated.
///
/// One thread may send while no other receives and vice versa (OpenSSL's `SSL` object is not
/// safe for concurrent use); the shim's lane lock and the server's session thread both give a
/// channel to one user at a time. `shutdown` may be called from any thread: it shuts the socket,
/// which wakes a blocked reader.
public final class TLSTransport: Transport, @unchecked Sendable {
    public let socket: SocketTransport
    let session: OpaquePointer
    /// The subject common name of the peer's verified certificate (mutual TLS), nil without one.
    public let peerCommonName: String?
    /// The negotiated protocol version, "TLSv1.3".
    public let protocolVersion: String

    /// Runs the handshake on `socket` as the side `context` configures. On the client,
    /// `expectedHost` must match the server certificate (a DNS name or IP address in its subject
    /// alternative names); nil skips that check (the chain is still verified).
    public init(socket: SocketTransport, context: TLSContext, expectedHost: String?) throws(TransportError) {
        var error = [CChar](repeating: 0, count: 1024)
        let created: OpaquePointer? = withOptionalCString(context.isServer ? nil : expectedHost) { host in
            xpu_tls_session_create(context.context, socket.descriptor, host, &error, error.count)
        }
        guard let created else { throw TransportError(.tls, text(error)) }
        guard xpu_tls_handshake(created, &error, error.count) == 0 else {
            xpu_tls_session_free(created)
            throw TransportError(.tls, text(error))
        }
        self.socket = socket
        self.session = created
        var name = [CChar](repeating: 0, count: 256)
        peerCommonName = xpu_tls_peer_common_name(created, &name, name.count) == 1 ? text(name) : nil
        protocolVersion = String(cString: xpu_tls_version(created))
    }

    /// Connects over TCP and runs the client handshake, checking the server's name against
    /// `serverName` (default: the endpoint's host).
    public static func connect(to endpoint: Endpoint, context: TLSContext, serverName: String? = nil)
        throws(TransportError) -> TLSTransport
    {
        let socket = try SocketTransport.connect(to: endpoint)
        do {
            return try TLSTransport(socket: socket, context: context, expectedHost: serverName ?? endpoint.host)
        } catch {
            throw TransportError(error.code, "\(endpoint): \(error.message)")
        }
    }

    deinit {
        xpu_tls_session_free(session)
    }

    /// Spinning happens on the TCP socket, before OpenSSL reads from it.
    public func setBusyPoll(_ settings: BusyPoll.Settings) { socket.setBusyPoll(settings) }
    public var busyPoll: BusyPoll? { socket.busyPoll }

    /// Busy-polls on the socket when OpenSSL holds nothing unread; SSL_read then finds the record.
    public func receiveMessageStart(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        if buffer.count > 0, xpu_tls_pending(session) == 0 { try socket.spinUntilReadable() }
        return try receiveSome(into: buffer)
    }

    /// The TCP connection's (TLS adds a few bytes per record, not a different link).
    public func deliveryRate() -> DeliveryRate? { socket.deliveryRate() }

    public func send(_ bytes: UnsafeRawBufferPointer) throws(TransportError) {
        var offset = 0
        var error = [CChar](repeating: 0, count: 512)
        while offset < bytes.count {
            let written = xpu_tls_write(session, bytes.baseAddress! + offset, bytes.count - offset, &error, error.count)
            if written == 0 { throw TransportError(.closed, "peer closed the TLS connection") }
            if written < 0 { throw TransportError(.io, text(error)) }
            offset += written
        }
    }

    public func receiveSome(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        guard buffer.count > 0 else { return 0 }
        var error = [CChar](repeating: 0, count: 512)
        let read = xpu_tls_read(session, buffer.baseAddress!, buffer.count, &error, error.count)
        if read == 0 { throw TransportError(.closed, "peer closed the TLS connection") }
        if read < 0 { throw TransportError(.io, text(error)) }
        return read
    }

    public func shutdown() {
        socket.shutdown()
    }

    /// Relays the session's plaintext to and from the connected stream socket `plain` until
    /// `plain` ends its stream (once what it sent has reached the peer) or either side fails; the
    /// peer's end of stream reaches `plain` as a write shutdown. Both sockets become non-blocking:
    /// the transport is good for nothing else afterwards. A server with `--tenant-processes`
    /// hands a TLS session to its process this way (its keys cannot move to another process).
    public func relay(to plain: Int32) throws(TransportError) {
        var error = [CChar](repeating: 0, count: 512)
        guard xpu_tls_relay(session, plain, &error, error.count) == 0 else { throw TransportError(.io, text(error)) }
    }

    /// The socket stops reading; OpenSSL can still write the goodbye on it.
    public func interruptReceiving() {
        socket.interruptReceiving()
    }
}

extension TransportError.Code {
    /// TLS could not be set up or the handshake failed (certificate, key, verification, protocol).
    public static let tls = TransportError.Code(name: "TLS failure")
}

func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}

/// The NUL-terminated text a C helper wrote into `buffer`.
func text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
