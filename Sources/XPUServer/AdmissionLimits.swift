/// How the server admits connections before their Hello (`--handshake-timeout`,
/// `--max-pending-connections`, `--max-pending-per-source`), and how long an established session's
/// peer may stay silent at the TCP level before the session ends (`--peer-timeout`).
public struct AdmissionLimits: Hashable, Sendable {
    /// From accept to a received Hello, TLS handshake included; then the connection is closed.
    public var handshakeTimeout: Duration
    /// Connections accepted whose Hello has not arrived, from all sources together.
    public var maxPending: Int
    /// Connections accepted whose Hello has not arrived, from one source address.
    public var maxPendingPerSource: Int
    /// TCP keepalive and user timeout of every session's socket: a peer that answers neither
    /// keepalive probes nor sent data for this long ends the session. nil: no keepalive.
    public var peerTimeout: Duration?

    public init(
        handshakeTimeout: Duration = .seconds(5), maxPending: Int = 1024, maxPendingPerSource: Int = 32,
        peerTimeout: Duration? = .seconds(60)
    ) {
        self.handshakeTimeout = handshakeTimeout
        self.maxPending = maxPending
        self.maxPendingPerSource = maxPendingPerSource
        self.peerTimeout = peerTimeout
    }
}
