#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A transport over a connected stream socket (TCP, or a Unix socket pair in tests).
///
/// Plain blocking IO: the shim calls from the application's own threads and the server gives each
/// session a thread, so no event loop is needed on either side.
public final class SocketTransport: Transport, @unchecked Sendable {
    /// The socket; immutable after init. `shutdown` wakes a blocked peer without racing `close`.
    public let descriptor: Int32
    /// The reading side's busy-poll state; used by the one thread that reads at a time.
    private var pollState = BusyPoll(.off)

    public init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }

    /// From TCP_INFO; nil for a Unix socket, or before anything was acknowledged.
    public func deliveryRate() -> DeliveryRate? {
        // `struct tcp_info` as the kernel's uapi header lays it out (glibc's copy stops before
        // these fields): the flag byte at 7 (bit 0: application limited), the rate at 160.
        let rateOffset = 160
        return withUnsafeTemporaryAllocation(byteCount: 256, alignment: 8) { info -> DeliveryRate? in
            var length = socklen_t(info.count)
            guard getsockopt(descriptor, Int32(IPPROTO_TCP), TCP_INFO, info.baseAddress, &length) == 0,
                Int(length) >= rateOffset + 8
            else { return nil }
            let rate = UInt64(littleEndian: info.loadUnaligned(fromByteOffset: rateOffset, as: UInt64.self))
            guard rate > 0 else { return nil }
            return DeliveryRate(bytesPerSecond: Double(rate), applicationLimited: info[7] & 1 != 0)
        }
    }

    public func send(_ bytes: UnsafeRawBufferPointer) throws(TransportError) {
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a vanished peer must not kill the application with SIGPIPE.
            let sent = Glibc.send(descriptor, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if sent < 0 {
                if errno == EINTR { continue }
                throw TransportError(errno == EPIPE || errno == ECONNRESET ? .closed : .io, "send: \(errorText())")
            }
            offset += sent
        }
    }

    public func send(parts: [UnsafeRawBufferPointer]) throws(TransportError) {
        var vectors = parts.filter { $0.count > 0 }.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        var first = 0
        while first < vectors.count {
            let sent = vectors[first...].withUnsafeMutableBufferPointer { remaining -> Int in
                var message = msghdr()
                message.msg_iov = remaining.baseAddress
                message.msg_iovlen = min(remaining.count, 1024)  // IOV_MAX on Linux
                return sendmsg(descriptor, &message, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw TransportError(errno == EPIPE || errno == ECONNRESET ? .closed : .io, "sendmsg: \(errorText())")
            }
            // Skip what went out; a partly sent buffer continues from where it stopped.
            var left = sent
            while first < vectors.count, left >= vectors[first].iov_len {
                left -= vectors[first].iov_len
                first += 1
            }
            if left > 0 {
                vectors[first].iov_base += left
                vectors[first].iov_len -= left
            }
        }
    }

    public func receiveSome(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        guard buffer.count > 0 else { return 0 }
        while true {
            let received = recv(descriptor, buffer.baseAddress, buffer.count, 0)
            if received > 0 { return received }
            if received == 0 { throw TransportError(.closed, "peer closed the connection") }
            if errno == EINTR { continue }
            throw TransportError(errno == ECONNRESET ? .closed : .io, "recv: \(errorText())")
        }
    }

    public func shutdown() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }

    public func interruptReceiving() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RD))
    }

    /// A connected pair of transports in this process, for tests of everything above the bytes.
    public static func pair() throws(TransportError) -> (SocketTransport, SocketTransport) {
        var descriptors: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &descriptors) == 0 else {
            throw TransportError(.io, "socketpair: \(errorText())")
        }
        return (SocketTransport(descriptor: descriptors[0]), SocketTransport(descriptor: descriptors[1]))
    }

    /// Connects over TCP to `host:port`, trying every address the name resolves to.
    public static func connect(to endpoint: Endpoint) throws(TransportError) -> SocketTransport {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard status == 0, let list else {
            throw TransportError(.badAddress, "cannot resolve \(endpoint): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let info = cursor {
            cursor = info.pointee.ai_next
            let descriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            if descriptor < 0 {
                lastError = errorText()
                continue
            }
            if Glibc.connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                configureStream(descriptor)
                return SocketTransport(descriptor: descriptor)
            }
            lastError = errorText()
            close(descriptor)
        }
        throw TransportError(.connectionFailed, "cannot connect to \(endpoint): \(lastError)")
    }

    /// Latency first (no Nagle delay on small frames), and socket buffers large enough for bulk copies.
    static func configureStream(_ descriptor: Int32) {
        var one: Int32 = 1
        _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var buffer: Int32 = 4 << 20
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
    }
}

func errorText() -> String { String(cString: strerror(errno)) }

extension SocketTransport {
    public func setBusyPoll(_ settings: BusyPoll.Settings) {
        pollState = BusyPoll(settings)
    }

    public var busyPoll: BusyPoll? { pollState.isEnabled ? pollState : nil }

    /// With busy-poll on: a non-blocking read, then, when it found nothing, non-blocking reads
    /// for as long as the budget allows, then a blocking one.
    public func receiveMessageStart(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        guard pollState.isEnabled, buffer.count > 0 else { return try receiveSome(into: buffer) }
        if let received = try receiveNow(into: buffer, flags: 0) { return received }
        if let received = try spin({ () throws(TransportError) in try receiveNow(into: buffer, flags: 0) }) { return received }
        return try receiveSome(into: buffer)
    }

    /// Spins until the socket has input or has ended, consuming nothing, within the busy-poll
    /// budget (TLS reads through OpenSSL once it has). Returns at once when polling is off.
    func spinUntilReadable() throws(TransportError) {
        guard pollState.isEnabled else { return }
        var byte: UInt8 = 0
        try withUnsafeMutableBytes(of: &byte) { peek throws(TransportError) in
            if try receiveNow(into: peek, flags: Int32(MSG_PEEK), endIsInput: true) != nil { return }
            _ = try spin { () throws(TransportError) in try receiveNow(into: peek, flags: Int32(MSG_PEEK), endIsInput: true) }
        }
    }

    /// Repeats `attempt` until it returns a count or the next wait's budget has passed, and
    /// tells the busy-poll state how the wait went. Nothing else runs on this path: no timer,
    /// no sleep; the caller blocks in `recv` when the budget runs out.
    private func spin(_ attempt: () throws(TransportError) -> Int?) throws(TransportError) -> Int? {
        let budget = pollState.spinForNextWait()
        guard budget > 0 else {
            pollState.finish(.blocked, spun: 0)
            return nil
        }
        let start = monotonicNanoseconds()
        // More runnable threads than CPUs: a spin would take a CPU another thread waits for (on
        // a busy machine, often the peer), and blocking costs no idle wake-up there.
        guard !RunQueue.isCrowded(now: start) else {
            pollState.finish(.crowded, spun: 0)
            return nil
        }
        var now = start
        repeat {
            if let received = try attempt() {
                pollState.finish(.caught, spun: monotonicNanoseconds() - start)
                return received
            }
            // Let a thread waiting for this CPU run first (on a busy machine it may be the very
            // peer this side waits for); with none, this returns at once.
            sched_yield()
            now = monotonicNanoseconds()
        } while now - start < budget
        pollState.finish(.blocked, spun: now - start)
        return nil
    }

    /// One non-blocking `recv`: the count, or nil when no input is there yet. The end of the
    /// stream throws `.closed`, or counts as input (0) with `endIsInput`.
    private func receiveNow(into buffer: UnsafeMutableRawBufferPointer, flags: Int32, endIsInput: Bool = false)
        throws(TransportError) -> Int?
    {
        while true {
            let received = recv(descriptor, buffer.baseAddress, buffer.count, flags | Int32(MSG_DONTWAIT))
            if received > 0 { return received }
            if received == 0 {
                if endIsInput { return 0 }
                throw TransportError(.closed, "peer closed the connection")
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return nil
            case ECONNRESET: throw TransportError(.closed, "recv: \(errorText())")
            default: throw TransportError(.io, "recv: \(errorText())")
            }
        }
    }
}

extension SocketTransport {
    /// Ends only the sending direction: the peer reads end of stream, replies can still arrive.
    public func shutdownWrite() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_WR))
    }
}
