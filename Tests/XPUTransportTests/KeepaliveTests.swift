import Testing
import XPUTransport

#if canImport(Glibc)
    import Glibc
#endif

/// The peer timeout as TCP options (`SocketTransport.enableKeepalive`) and as `XPU_PEER_TIMEOUT`.
@Suite("Peer timeout")
struct KeepaliveTests {
    static func option(_ socket: SocketTransport, _ level: Int32, _ name: Int32) -> Int32 {
        var value: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(socket.descriptor, level, name, &value, &length)
        return value
    }

    @Test(
        "keepalive starts after half the timeout and probes the rest; unacknowledged data fails at the timeout",
        arguments: [(60, 30, 10, 3), (3, 1, 1, 2), (2, 1, 1, 1), (1, 1, 1, 1), (7, 3, 1, 4)])
    func options(seconds: Int, idle: Int32, interval: Int32, count: Int32) throws {
        let listener = try Listener(binding: Endpoint(host: "127.0.0.1", port: 0))
        let socket = try SocketTransport.connect(to: listener.endpoint)
        socket.enableKeepalive(peerTimeout: .seconds(seconds))
        let tcp = Int32(IPPROTO_TCP)
        #expect(Self.option(socket, SOL_SOCKET, SO_KEEPALIVE) == 1)
        #expect(Self.option(socket, tcp, TCP_KEEPIDLE) == idle)
        #expect(Self.option(socket, tcp, TCP_KEEPINTVL) == interval)
        #expect(Self.option(socket, tcp, TCP_KEEPCNT) == count)
        #expect(Self.option(socket, tcp, TCP_USER_TIMEOUT) == Int32(max(seconds, 2) * 1000))
    }

    @Test("XPU_PEER_TIMEOUT: 60 s when unset, 0 turns keepalive off, anything but whole seconds of at least 2 is refused")
    func environment() throws {
        #expect(try ServerAddress.peerTimeout(environment: nil).get() == .seconds(60))
        #expect(try ServerAddress.peerTimeout(environment: "").get() == .seconds(60))
        #expect(try ServerAddress.peerTimeout(environment: "0").get() == nil)
        #expect(try ServerAddress.peerTimeout(environment: "5").get() == .seconds(5))
        for bad in ["1", "-3", "2.5", "10s", "soon"] {
            #expect(throws: TransportError.self) { try ServerAddress.peerTimeout(environment: bad).get() }
        }
    }
}
