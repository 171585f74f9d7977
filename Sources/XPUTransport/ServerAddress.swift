/// Where a client finds its server, as written in `XPU_SERVER`:
///
/// | form | transport |
/// |---|---|
/// | `host:port`, `tcp://host:port` | TCP |
/// | `tls://host:port` | TLS 1.3 over TCP (`XPU_TLS_CA`, optional `XPU_TLS_CERT`/`XPU_TLS_KEY`) |
/// | `unix:/path` | shared-memory rings on this node, set up over a Unix socket |
/// | `rdma://host:port` | RDMA SEND/RECV with credits, bulk by RDMA WRITE (untested on hardware) |
public enum ServerAddress: Hashable, Sendable, CustomStringConvertible {
    case tcp(Endpoint)
    case tls(Endpoint)
    case unix(path: String)
    case rdma(Endpoint)

    public init?(parsing text: String) {
        func endpoint(_ rest: Substring) -> Endpoint? { Endpoint(parsing: String(rest)) }
        if text.hasPrefix("tcp://") {
            guard let parsed = endpoint(text.dropFirst(6)) else { return nil }
            self = .tcp(parsed)
        } else if text.hasPrefix("tls://") {
            guard let parsed = endpoint(text.dropFirst(6)) else { return nil }
            self = .tls(parsed)
        } else if text.hasPrefix("rdma://") {
            guard let parsed = endpoint(text.dropFirst(7)) else { return nil }
            self = .rdma(parsed)
        } else if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { return nil }
            self = .unix(path: path)
        } else {
            guard !text.contains("://"), let parsed = Endpoint(parsing: text) else { return nil }
            self = .tcp(parsed)
        }
    }

    public var description: String {
        switch self {
        case .tcp(let endpoint): "\(endpoint)"
        case .tls(let endpoint): "tls://\(endpoint)"
        case .unix(let path): "unix:\(path)"
        case .rdma(let endpoint): "rdma://\(endpoint)"
        }
    }
}

/// The client's TLS settings: `XPU_TLS_CA` (the CA bundle that must have signed the server's
/// certificate; default the system trust store), `XPU_TLS_CERT` and `XPU_TLS_KEY` (a client
/// certificate for mutual TLS), `XPU_TLS_SERVER_NAME` (the name to check the server's certificate
/// against instead of the host in `XPU_SERVER`).
public struct ClientTLSSettings: Hashable, Sendable {
    public var caFile: String?
    public var certificateFile: String?
    public var keyFile: String?
    public var serverName: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
    }

    /// Reads the `XPU_TLS_*` variables through `lookup` (getenv in the shim).
    public init(environment lookup: (String) -> String?) {
        func value(_ name: String) -> String? { lookup(name).flatMap { $0.isEmpty ? nil : $0 } }
        self.init(
            caFile: value("XPU_TLS_CA"), certificateFile: value("XPU_TLS_CERT"), keyFile: value("XPU_TLS_KEY"),
            serverName: value("XPU_TLS_SERVER_NAME"))
    }
}

extension ServerAddress {
    /// The client's peer timeout from `XPU_PEER_TIMEOUT` (whole seconds, at least 2; 0: none),
    /// 60 s when unset; a value that is not one of these is an error message.
    public static func peerTimeout(environment text: String?) -> Result<Duration?, TransportError> {
        guard let text, !text.isEmpty else { return .success(.seconds(60)) }
        guard let seconds = Int(text), seconds == 0 || seconds >= 2 else {
            return .failure(TransportError(.badAddress, "XPU_PEER_TIMEOUT must be 0 (no keepalive) or whole seconds of at least 2, got '\(text)'"))
        }
        return .success(seconds == 0 ? nil : .seconds(seconds))
    }

    /// Opens the byte stream to the server; the handshake above it is the same for every transport.
    /// Over TCP (with or without TLS) a server silent for `peerTimeout` fails the blocking read
    /// or write that waits for it (`SocketTransport.enableKeepalive`); nil: wait for ever.
    public func connect(
        tls settings: ClientTLSSettings = ClientTLSSettings(), peerTimeout: Duration? = nil
    ) throws(TransportError) -> any Transport {
        switch self {
        case .tcp(let endpoint):
            let socket = try SocketTransport.connect(to: endpoint)
            if let peerTimeout { socket.enableKeepalive(peerTimeout: peerTimeout) }
            return socket
        case .tls(let endpoint):
            let context = try TLSContext.client(
                caFile: settings.caFile, certificateFile: settings.certificateFile,
                keyFile: settings.certificateFile == nil ? nil : settings.keyFile)
            let transport = try TLSTransport.connect(to: endpoint, context: context, serverName: settings.serverName)
            if let peerTimeout { transport.socket.enableKeepalive(peerTimeout: peerTimeout) }
            return transport
        case .unix(let path):
            return try SharedMemoryTransport.connect(path: path)
        case .rdma(let endpoint):
            // libibverbs/librdmacm are loaded here, on first use (`xpu-remote-server --listen
            // rdma://HOST:PORT`; untested on hardware, proto/SECURITY.md).
            return try RDMATransport(queuePair: VerbsConnection.connect(to: endpoint))
        }
    }
}
