import XPUTransport

/// How the server protects its sessions: TLS, authentication with a policy, and the listener.
public struct ServerSecurity: Sendable {
    /// Set: every TCP connection must complete a TLS 1.3 handshake first.
    public var tls: TLSContext?
    /// Set: every Hello must authenticate (token or client certificate) and ask for no more than
    /// its tenant's policy allows.
    public var authenticator: Authenticator?
    /// Set: listen on this Unix socket path instead of TCP (`--listen unix:/path`).
    public var unixSocketPath: String?
    /// Set: listen for RDMA connections here instead of TCP (`--listen rdma://HOST:PORT`). TLS does
    /// not apply: RDMA traffic is not encrypted (proto/SECURITY.md).
    public var rdmaEndpoint: Endpoint?

    public init(tls: TLSContext? = nil, authenticator: Authenticator? = nil, unixSocketPath: String? = nil, rdmaEndpoint: Endpoint? = nil) {
        self.tls = tls
        self.authenticator = authenticator
        self.unixSocketPath = unixSocketPath
        self.rdmaEndpoint = rdmaEndpoint
    }

    /// The safe default for RDMA, where TLS does not exist: a listener other machines can reach
    /// needs authentication (`--policy`). Returns why `listen` is refused, or nil.
    public static func rdmaExposureRefusal(listeningOn endpoint: Endpoint, authentication: Bool) -> String? {
        guard !endpoint.isLoopback, !authentication else { return nil }
        return """
            refusing to listen on rdma://\(endpoint), which other machines can reach, without authentication \
            (--policy FILE): anyone on the fabric could use the device and read other tenants' memory. TLS does not apply \
            to RDMA (its traffic is not encrypted). Add --policy, or pass --insecure on a fabric you trust.
            """
    }

    /// The safe default: a server reachable from other machines needs TLS and authentication.
    /// Returns why `listen` is refused, or nil. Loopback and Unix sockets are always allowed.
    public static func exposureRefusal(listeningOn endpoint: Endpoint?, tls: Bool, authentication: Bool) -> String? {
        guard let endpoint, !endpoint.isLoopback else { return nil }
        var missing: [String] = []
        if !tls { missing.append("TLS (--tls-cert and --tls-key)") }
        if !authentication { missing.append("authentication (--policy FILE)") }
        guard !missing.isEmpty else { return nil }
        return """
            refusing to listen on \(endpoint), which other machines can reach, without \(missing.joined(separator: " and ")): \
            anyone on the network could use the device and read other tenants' memory. Add them, listen on a loopback \
            address or a unix:/path socket, or pass --insecure on a network you trust.
            """
    }
}
