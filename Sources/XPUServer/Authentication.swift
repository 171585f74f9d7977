import Logging
import Synchronization
import XPUAdmission

/// Decides whether a client may open a session: identity (token in the Hello, or the verified
/// TLS client certificate's common name), then the requested slice against the tenant's policy.
///
/// Open sessions are counted per tenant, for the policy's `maxSessions`.
///
/// Failed authentications are counted per source address: after `maximumFailures` within
/// `window` the source is refused without checking until the window has passed. Failures are
/// logged without the token; past `maximumLogLines` per window the log says how many it skipped.
public final class Authenticator: Sendable {
    public let policy: AccessPolicy
    let maximumFailures: Int
    let window: Duration
    let maximumLogLines: Int
    let now: @Sendable () -> ContinuousClock.Instant
    private let state = Mutex(State())

    struct State {
        var failures: [String: [ContinuousClock.Instant]] = [:]
        var logWindowStart: ContinuousClock.Instant?
        var loggedInWindow = 0
        var suppressed = 0
        /// Sessions open per tenant name (entries removed at zero, so this stays as small as the policy).
        var openSessions: [String: Int] = [:]
    }

    public enum Decision: Hashable, Sendable {
        case admitted(tenant: String, slice: SliceRequest)
        /// `reason` goes to the client and the log; `log` is false while failure logging is throttled.
        case refused(reason: String, log: Bool, suppressedBefore: Int)
    }

    public init(
        policy: AccessPolicy, maximumFailures: Int = 5, window: Duration = .seconds(60), maximumLogLines: Int = 20,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.policy = policy
        self.maximumFailures = maximumFailures
        self.window = window
        self.maximumLogLines = maximumLogLines
        self.now = now
    }

    public func decide(token: String, certificateCommonName: String?, slice: String, peer: String) -> Decision {
        let time = now()
        let blocked = state.withLock { state in
            state.failures[peer, default: []].removeAll { time - $0 >= window }
            return state.failures[peer, default: []].count >= maximumFailures
        }
        if blocked {
            return refusal("too many failed authentication attempts from \(peer); retry later", counting: false, at: time)
        }
        let tenant: AccessPolicy.Tenant
        if !token.isEmpty {
            guard let found = policy.tenant(presenting: token) else {
                return refusal("authentication failed: the token is not valid", peer: peer, at: time)
            }
            tenant = found
        } else if let certificateCommonName {
            guard let found = policy.tenant(certificateCommonName: certificateCommonName) else {
                return refusal(
                    "authentication failed: client certificate '\(certificateCommonName)' is not in the policy", peer: peer,
                    at: time)
            }
            tenant = found
        } else {
            return refusal(
                "authentication required: set XPU_TOKEN or present a client certificate (XPU_TLS_CERT)", peer: peer, at: time)
        }
        let request: SliceRequest
        do {
            request = try SliceRequest(parsing: slice)
        } catch {
            return refusal("\(error)", counting: false, at: time)
        }
        if let reason = tenant.refusal(for: request) {
            return refusal("not authorized: \(reason)", counting: false, at: time)
        }
        return .admitted(tenant: tenant.name, slice: request)
    }

    /// Counts a session of `tenant` as open, or says why it may not open: the tenant already has
    /// its `maxSessions` open. Every session counted is given back with `closeSession(of:)`.
    func openSession(of tenant: String) -> String? {
        let limit = policy.tenants.first { $0.name == tenant }?.maxSessions
        return state.withLock { state in
            let open = state.openSessions[tenant, default: 0]
            if let limit, open >= limit {
                return "not authorized: tenant '\(tenant)' already has \(open) sessions open (policy allows \(limit))"
            }
            state.openSessions[tenant] = open + 1
            return nil
        }
    }

    func closeSession(of tenant: String) {
        state.withLock { state in
            let open = state.openSessions[tenant, default: 0]
            state.openSessions[tenant] = open > 1 ? open - 1 : nil
        }
    }

    private func refusal(_ reason: String, peer: String? = nil, counting: Bool = true, at time: ContinuousClock.Instant)
        -> Decision
    {
        state.withLock { state in
            if counting, let peer { state.failures[peer, default: []].append(time) }
            if let start = state.logWindowStart, time - start < window {
                state.loggedInWindow += 1
            } else {
                state.logWindowStart = time
                state.loggedInWindow = 1
            }
            guard state.loggedInWindow <= maximumLogLines else {
                state.suppressed += 1
                return .refused(reason: reason, log: false, suppressedBefore: 0)
            }
            defer { state.suppressed = 0 }
            return .refused(reason: reason, log: true, suppressedBefore: state.suppressed)
        }
    }
}

/// What the server knows about a connection before its Hello, and how it admits sessions.
/// Set on a `Connection` by `RemoteServer` before the connection runs.
struct ConnectionSecurity: Sendable {
    var authenticator: Authenticator?
    var peerHost = "unknown"
    /// The verified client certificate's common name (mutual TLS).
    var certificateCommonName: String?
    /// "tcp", "tls", "unix", "rdma".
    var transportName = "tcp"

    enum Admission {
        /// The session may open; `tenant` is nil when the server has no policy. A tenant's
        /// session is counted until `sessionEnded(tenant:)`.
        case admitted(tenant: String?)
        case refused(reason: String)
    }

    /// Whether the session may open (logged with its tenant), or the reason to send back.
    func admit(token: String, slice: String, client: String, logger: Logger) -> Admission {
        guard let authenticator else { return .admitted(tenant: nil) }
        switch authenticator.decide(token: token, certificateCommonName: certificateCommonName, slice: slice, peer: peerHost) {
        case .admitted(let tenant, _):
            if let reason = authenticator.openSession(of: tenant) {
                logger.warning("session refused", metadata: ["reason": "\(reason)", "peer": "\(peerHost)", "client": "\(client)"])
                return .refused(reason: reason)
            }
            logger.info("authenticated", metadata: ["tenant": "\(tenant)", "peer": "\(peerHost)", "transport": "\(transportName)"])
            return .admitted(tenant: tenant)
        case .refused(let reason, let log, let suppressed):
            if log {
                // The client string is the program name and pid; the token is never logged.
                var metadata: Logger.Metadata = ["reason": "\(reason)", "peer": "\(peerHost)", "client": "\(client)"]
                if suppressed > 0 { metadata["suppressed"] = "\(suppressed) earlier refusals not logged" }
                logger.warning("session refused", metadata: metadata)
            }
            return .refused(reason: reason)
        }
    }

    /// Gives back the count `admit` took for the tenant's session.
    func sessionEnded(tenant: String?) {
        if let tenant { authenticator?.closeSession(of: tenant) }
    }
}
