#if canImport(Glibc)
    import Glibc
#endif

extension SocketTransport {
    /// The peer's address without the port ("10.0.0.7", "::1", "unix"), for logs and for
    /// rate-limiting failed authentications per source.
    public var peerHost: String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &storage) { pointer -> String in
            let status = pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) }
            guard status == 0 else { return "unknown" }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    _ = inet_ntop(AF_INET, &address.pointee.sin_addr, &text, socklen_t(text.count))
                }
            case AF_INET6:
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    _ = inet_ntop(AF_INET6, &address.pointee.sin6_addr, &text, socklen_t(text.count))
                }
            case AF_UNIX:
                return "unix"
            default:
                return "unknown"
            }
            return text.withUnsafeBufferPointer { String(decoding: $0.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        }
    }

    /// The first byte the peer sent, left in the socket for the next read; nil when the peer
    /// closed or sent nothing within `timeoutMilliseconds`. Tells a TLS ClientHello (0x16) from
    /// a plaintext frame before either side commits to a protocol.
    public func peekFirstByte(timeoutMilliseconds: Int32) -> UInt8? {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) == 1 else { return nil }
        var byte: UInt8 = 0
        while true {
            let received = recv(descriptor, &byte, 1, Int32(MSG_PEEK))
            if received == 1 { return byte }
            if received < 0 && errno == EINTR { continue }
            return nil
        }
    }
}

extension SocketTransport {
    /// Ends a refused connection so that the peer reads everything sent to it (a TLS alert, a
    /// refusal) instead of a reset: stops sending, then discards what the peer still sends until
    /// it closes or `timeoutMilliseconds` pass. Closing with unread input would reset the
    /// connection and could destroy the last bytes in flight to the peer.
    public func lingerAfterRefusal(timeoutMilliseconds: Int32 = 1000) {
        shutdownWrite()
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutMilliseconds))
        var scratch = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) >= 0 else { return }
            guard poller.revents != 0 else { continue }
            let received = scratch.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if received == 0 || (received < 0 && errno != EINTR && errno != EAGAIN) { return }
        }
    }
}

extension SocketTransport {
    /// True when the peer has closed the connection (checked without waiting and without
    /// consuming data: unread input means the peer is still there).
    public var peerHasClosed: Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) == 1 else { return false }
        if poller.revents & Int16(POLLERR | POLLNVAL) != 0 { return true }
        var byte: UInt8 = 0
        let received = recv(descriptor, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        return received == 0 || (poller.revents & Int16(POLLHUP) != 0 && received < 0)
    }
}
