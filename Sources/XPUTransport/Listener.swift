#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket that hands out one `SocketTransport` per accepted connection.
public final class Listener: @unchecked Sendable {
    public let descriptor: Int32
    /// The bound address; the port is the real one when 0 was asked for.
    public let endpoint: Endpoint

    public init(binding requested: Endpoint, backlog: Int32 = 128) throws(TransportError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(requested.host, String(requested.port), &hints, &list)
        guard status == 0, let list else {
            throw TransportError(.badAddress, "cannot resolve \(requested): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let info = list.pointee
        let descriptor = socket(info.ai_family, info.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TransportError(.io, "socket: \(errorText())") }
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(descriptor, info.ai_addr, info.ai_addrlen) == 0 else {
            let message = errorText()
            close(descriptor)
            throw TransportError(.io, "cannot listen on \(requested): \(message)")
        }
        guard listen(descriptor, backlog) == 0 else {
            let message = errorText()
            close(descriptor)
            throw TransportError(.io, "listen on \(requested): \(message)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let port = withUnsafeMutablePointer(to: &storage) { pointer -> UInt16 in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(descriptor, $0, &length) }
            if Int32(pointer.pointee.ss_family) == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        self.descriptor = descriptor
        self.endpoint = Endpoint(host: requested.host, port: port)
    }

    deinit {
        close(descriptor)
    }

    /// Waits for the next connection; throws once `shutdown` was called.
    public func accept() throws(TransportError) -> SocketTransport {
        while true {
            let connection = Glibc.accept(descriptor, nil, nil)
            if connection >= 0 {
                _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                SocketTransport.configureStream(connection)
                return SocketTransport(descriptor: connection)
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            throw TransportError(.closed, "accept: \(errorText())")
        }
    }

    /// Stops accepting: a thread blocked in `accept` returns with an error.
    public func shutdown() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }
}
