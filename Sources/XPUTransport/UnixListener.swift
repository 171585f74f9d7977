#if canImport(Glibc)
    import Glibc
#endif

/// Something that hands out one connected stream per client: TCP (`Listener`) or a Unix socket.
public protocol ConnectionListener: AnyObject, Sendable {
    /// Waits for the next connection; throws once `shutdown` was called.
    func accept() throws(TransportError) -> SocketTransport
    /// Stops accepting: a thread blocked in `accept` returns with an error.
    func shutdown()
    /// The bound address as clients write it in `XPU_SERVER` (`127.0.0.1:7070`, `unix:/run/xpu.sock`).
    var address: String { get }
}

extension Listener: ConnectionListener {
    public var address: String { endpoint.description }
}

/// A listening Unix stream socket at a filesystem path, for clients on this node
/// (`XPU_SERVER=unix:/path`). Who may connect is decided by the path's permissions; the socket is
/// created mode 0660 and removed when the listener goes away.
public final class UnixListener: ConnectionListener, @unchecked Sendable {
    public let descriptor: Int32
    public let path: String

    public init(path: String, backlog: Int32 = 128) throws(TransportError) {
        guard path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
            throw TransportError(.badAddress, "unix socket path too long: \(path)")
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TransportError(.io, "socket: \(errorText())") }
        // A stale socket file from a previous run would make bind fail; only remove a socket.
        var status = stat()
        if lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
        let previousMask = umask(0o117)
        let bound = withUnixAddress(path) { address, length in bind(descriptor, address, length) }
        umask(previousMask)
        guard bound == 0 else {
            let message = errorText()
            close(descriptor)
            throw TransportError(.io, "cannot listen on unix:\(path): \(message)")
        }
        guard listen(descriptor, backlog) == 0 else {
            let message = errorText()
            close(descriptor)
            unlink(path)
            throw TransportError(.io, "listen on unix:\(path): \(message)")
        }
        self.descriptor = descriptor
        self.path = path
    }

    deinit {
        close(descriptor)
        unlink(path)
    }

    public var address: String { "unix:\(path)" }

    public func accept() throws(TransportError) -> SocketTransport {
        while true {
            let connection = Glibc.accept(descriptor, nil, nil)
            if connection >= 0 {
                _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                UnixSocket.configure(connection)
                return SocketTransport(descriptor: connection)
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            throw TransportError(.closed, "accept: \(errorText())")
        }
    }

    public func shutdown() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }
}

public enum UnixSocket {
    /// Connects to the Unix stream socket at `path`.
    public static func connect(path: String) throws(TransportError) -> SocketTransport {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TransportError(.io, "socket: \(errorText())") }
        let connected = withUnixAddress(path) { address, length in Glibc.connect(descriptor, address, length) }
        guard connected == 0 else {
            let message = errorText()
            close(descriptor)
            throw TransportError(.connectionFailed, "cannot connect to unix:\(path): \(message)")
        }
        configure(descriptor)
        return SocketTransport(descriptor: descriptor)
    }

    static func configure(_ descriptor: Int32) {
        var buffer: Int32 = 4 << 20
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
    }
}

func withUnixAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        let bytes = Array(path.utf8.prefix(raw.count - 1))
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
}
