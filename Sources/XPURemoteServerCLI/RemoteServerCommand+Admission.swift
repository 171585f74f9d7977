import ArgumentParser
import Logging
import XPUServer

#if canImport(Glibc)
    import Glibc
#endif

extension RemoteServerCommand {
    /// The handshake deadline, the caps on connections before their Hello and the peer timeout
    /// (`--handshake-timeout`, `--max-pending-connections`, `--max-pending-per-source`, `--peer-timeout`).
    func admissionLimits() throws -> AdmissionLimits {
        guard handshakeTimeout > 0, handshakeTimeout <= 3600 else {
            throw ValidationError("--handshake-timeout must be more than 0 and at most 3600 seconds, got \(handshakeTimeout)")
        }
        guard maxPendingConnections >= 1 else { throw ValidationError("--max-pending-connections must be at least 1") }
        guard maxPendingPerSource >= 1 else { throw ValidationError("--max-pending-per-source must be at least 1") }
        guard peerTimeout == 0 || peerTimeout >= 2 else {
            throw ValidationError("--peer-timeout must be 0 (no keepalive) or at least 2 seconds, got \(peerTimeout)")
        }
        return AdmissionLimits(
            handshakeTimeout: .milliseconds(Int64(handshakeTimeout * 1000)), maxPending: maxPendingConnections,
            maxPendingPerSource: maxPendingPerSource, peerTimeout: peerTimeout == 0 ? nil : .seconds(peerTimeout))
    }

    /// Raises the soft limit on open descriptors to the hard one: every connection, waiting for
    /// its Hello or in a session, holds one.
    static func raiseDescriptorLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let soft = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            logger.debug("open descriptor limit raised", metadata: ["from": "\(soft)", "to": "\(limit.rlim_max)"])
        }
    }
}
