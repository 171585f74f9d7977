#if canImport(Glibc)
    import Glibc
#endif

extension SocketTransport {
    /// Bounds how long a vanished peer goes unnoticed on this TCP connection, without any timer
    /// of ours: the kernel probes an idle connection (TCP keepalive) and gives up on data the
    /// peer does not acknowledge (TCP_USER_TIMEOUT). A peer silent at the TCP level for about
    /// `peerTimeout` fails this side's blocking read or write with ETIMEDOUT. A live peer's kernel
    /// answers the probes however long its program stays idle or busy, so long calls are never cut.
    ///
    /// Keepalive starts after half the timeout of silence and probes the rest of it; the
    /// kernel counts in whole seconds, so the shortest timeout is 2 s.
    public func enableKeepalive(peerTimeout: Duration) {
        let total = max(Int32(clamping: peerTimeout.components.seconds), 2)
        let idle = max(total / 2, 1)
        let interval = max((total - idle) / 3, 1)
        let count = max((total - idle) / interval, 1)
        var userTimeout = UInt32(total) * 1000
        func set(_ level: Int32, _ option: Int32, _ value: Int32) {
            var value = value
            _ = setsockopt(descriptor, level, option, &value, socklen_t(MemoryLayout<Int32>.size))
        }
        set(SOL_SOCKET, SO_KEEPALIVE, 1)
        set(Int32(IPPROTO_TCP), TCP_KEEPIDLE, idle)
        set(Int32(IPPROTO_TCP), TCP_KEEPINTVL, interval)
        set(Int32(IPPROTO_TCP), TCP_KEEPCNT, count)
        _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_USER_TIMEOUT, &userTimeout, socklen_t(MemoryLayout<UInt32>.size))
    }

    /// Makes closing this socket reset the connection (SO_LINGER with a zero timeout): for a
    /// connection refused before its handshake, whose state need not outlive it (no TIME_WAIT).
    public func resetOnClose() {
        var setting = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &setting, socklen_t(MemoryLayout<linger>.size))
    }
}
