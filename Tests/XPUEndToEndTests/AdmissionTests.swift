import Foundation
import Testing
import XPUProtocol
import XPUTransport

#if canImport(Glibc)
    import Glibc
#endif

/// Connection admission, end to end: connections that stay silent hold no server thread and are
/// closed at the handshake deadline, a Hello sent too slowly is cut at the deadline, and the caps
/// on connections before their Hello hold per source address and in total.
@Suite("Connection admission", .serialized)
struct AdmissionTests {
    @Test("5,000 silent connections hold no thread, a client is served while they are open, all close at the deadline")
    func silentConnections() throws {
        let harness = try Harness.get()
        let count = 5000
        try Self.raiseDescriptorLimit(to: UInt(count + 1024))
        let server = try Server(
            harness: harness,
            arguments: [
                "--handshake-timeout", "25", "--max-pending-connections", "\(count + 100)", "--max-pending-per-source",
                "\(count + 100)", "--metrics", "127.0.0.1:0",
            ])
        let endpoint = try #require(Endpoint(parsing: server.address))
        var silent: [SocketTransport] = []
        do {
            for _ in 0..<count { silent.append(try SocketTransport.connect(to: endpoint)) }
        } catch {
            Issue.record(
                "connection \(silent.count + 1) failed: \(error); server \(server.process.poll().map(String.init(describing:)) ?? "running"), its log ends:\n\(server.process.stderr.text.suffix(3000))"
            )
            return
        }
        var pending = try MetricsTests.scrape(server)
        let accepted = ContinuousClock.now + .seconds(20)
        while pending["xpu_server_handshakes_pending"] != Double(count) && ContinuousClock.now < accepted {
            usleep(100_000)
            pending = try MetricsTests.scrape(server)
        }
        #expect(pending["xpu_server_handshakes_pending"] == Double(count), "\(pending.text)")
        let waiting = try #require(Self.threadCount(of: server.process.pid))
        #expect(waiting < 100, "\(waiting) server threads with \(count) silent connections open")

        let served = try harness.runRemote("meminfo", server: server)
        #expect(served.status == .exited(0), "\(served.stdout)\n\(served.stderr)")
        #expect(served.stdout.contains("free "), "\(served.stdout)")

        // Every silent connection is closed by the server at its deadline.
        let unclosed = Self.waitUntilClosed(silent, timeout: .seconds(90))
        #expect(unclosed == 0, "\(unclosed) of \(count) silent connections still open after the deadline")
        let after = try MetricsTests.scrape(server) { $0["xpu_server_handshakes_pending"] == 0 }
        #expect(after["xpu_server_handshakes_pending"] == 0)
        #expect(after["xpu_server_handshake_timeouts_total"] == Double(count), "\(after.text)")
        let threads = try #require(Self.threadCount(of: server.process.pid))
        #expect(threads < 100, "\(threads) server threads after the deadline")
        #expect(server.process.stderr.text.contains("handshake deadline passed"))
    }

    @Test("A Hello sent a byte at a time is cut at the handshake deadline")
    func slowLoris() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness, arguments: ["--handshake-timeout", "2", "--metrics", "127.0.0.1:0"])
        let client = try SocketTransport.connect(to: try #require(Endpoint(parsing: server.address)))
        // A header announcing a 200-byte Hello, then its payload one byte per 100 ms: the whole
        // Hello would take 20 s, far past the deadline.
        let header = FrameHeader(length: 200, call: CallID.handshake.rawValue, sequence: 0).encoded
        try header.withUnsafeBytes { try client.send($0) }
        let start = ContinuousClock.now
        var sent = 0
        var cut = false
        while sent < 200 && !cut {
            var byte: UInt8 = 0x41
            do {
                try withUnsafeBytes(of: &byte) { try client.send($0) }
                sent += 1
            } catch {
                cut = true
            }
            usleep(100_000)
            if client.peerHasClosed { cut = true }
        }
        let took = ContinuousClock.now - start
        #expect(cut, "the server kept a connection whose Hello trickled in for \(took)")
        #expect(sent < 200, "the whole Hello was sent (\(sent) bytes)")
        let scrape = try MetricsTests.scrape(server) { $0["xpu_server_handshake_timeouts_total"] == 1 }
        #expect(scrape["xpu_server_handshake_timeouts_total"] == 1, "\(scrape.text)")
        #expect(scrape["xpu_server_handshakes_pending"] == 0)
        // The server goes on serving.
        let served = try harness.runRemote("meminfo", server: server)
        #expect(served.status == .exited(0), "\(served.stdout)\n\(served.stderr)")
    }

    @Test("A TLS handshake that stalls is cut at the handshake deadline")
    func stalledTLSHandshake() throws {
        let harness = try Harness.get()
        let certificates = try TransportCertificates.shared.get()
        let server = try TransportSecurityTests.SecureServer(
            harness: harness,
            ["--tls-cert", certificates.path("server.crt"), "--tls-key", certificates.path("server.key"), "--handshake-timeout", "2"])
        let client = try SocketTransport.connect(to: try #require(Endpoint(parsing: server.hostPort)))
        // The start of a TLS record announcing a 200-byte handshake message, and nothing more.
        let record: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0xC8, 0x01, 0x00]
        try record.withUnsafeBytes { try client.send($0) }
        #expect(Self.waitUntilClosed([client], timeout: .seconds(30)) == 0, "a stalled TLS handshake was kept past the deadline")
        #expect(server.process.waitForLog(containing: "handshake deadline passed", timeout: .seconds(10)), "\(server.process.stderr.text)")
        // A real TLS client is served.
        let served = try TransportSecurityTests.run(harness, server: server.address, ["XPU_TLS_CA": certificates.path("ca.crt")])
        #expect(served.status == .exited(0), "\(served.stdout)\n\(served.stderr)")
    }

    @Test("Connections before their Hello are capped per source address and in total")
    func pendingCaps() throws {
        let harness = try Harness.get()
        let server = try Server(
            harness: harness,
            arguments: [
                "--handshake-timeout", "60", "--max-pending-per-source", "4", "--max-pending-connections", "6", "--metrics",
                "127.0.0.1:0",
            ])
        let endpoint = try #require(Endpoint(parsing: server.address))
        var silent: [SocketTransport] = []
        for _ in 0..<4 { silent.append(try Self.connect(from: "127.0.0.1", to: endpoint)) }
        _ = try MetricsTests.scrape(server) { $0["xpu_server_handshakes_pending"] == 4 }

        // A fifth from the same source is closed at once, long before the 60 s deadline.
        let overSource = try Self.connect(from: "127.0.0.1", to: endpoint)
        #expect(Self.waitUntilClosed([overSource], timeout: .seconds(20)) == 0, "over the per-source cap, still open")
        // Another source is served meanwhile.
        let other = RawClient(transport: try Self.connect(from: "127.0.0.2", to: endpoint))
        try other.openSession()
        #expect(try other.reply(CuMemGetInfo_v2Request()).total > 0)

        // 4 from 127.0.0.1 and one from each of two more sources fill the total cap of 6.
        silent.append(try Self.connect(from: "127.0.0.2", to: endpoint))
        silent.append(try Self.connect(from: "127.0.0.3", to: endpoint))
        _ = try MetricsTests.scrape(server) { $0["xpu_server_handshakes_pending"] == 6 }
        let overTotal = try Self.connect(from: "127.0.0.4", to: endpoint)
        #expect(Self.waitUntilClosed([overTotal], timeout: .seconds(20)) == 0, "over the total cap, still open")

        let scrape = try MetricsTests.scrape(server)
        #expect(scrape.value("xpu_server_connections_refused_total", "cap=\"source\"") == 1, "\(scrape.text)")
        #expect(scrape.value("xpu_server_connections_refused_total", "cap=\"total\"") == 1, "\(scrape.text)")
        #expect(scrape["xpu_server_handshakes_pending"] == 6)
        #expect(Self.waitUntilClosed(silent, timeout: .zero) == silent.count, "connections within the caps were closed")
        #expect(server.process.stderr.text.contains("connection refused before its handshake"))
    }

    /// The threads of process `pid` (/proc/PID/task).
    static func threadCount(of pid: pid_t) -> Int? {
        try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").count
    }

    /// Waits until the server has closed each of `sockets` (end of stream or reset), at most
    /// `timeout`; returns how many are still open.
    static func waitUntilClosed(_ sockets: [SocketTransport], timeout: Duration) -> Int {
        let deadline = ContinuousClock.now + timeout
        var open = sockets.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
        while true {
            let left = deadline - ContinuousClock.now
            let milliseconds = max(Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000), 0)
            let ready = poll(&open, nfds_t(open.count), milliseconds)
            if ready > 0 { open.removeAll { $0.revents != 0 } }
            if open.isEmpty || milliseconds == 0 || (ready < 0 && errno != EINTR) { return open.count }
        }
    }

    /// A TCP connection from the loopback address `source` (any of 127.0.0.0/8).
    static func connect(from source: String, to endpoint: Endpoint) throws -> SocketTransport {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(descriptor >= 0)
        let socket = SocketTransport(descriptor: descriptor)
        func address(_ host: String, _ port: UInt16) -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            _ = inet_pton(AF_INET, host, &address.sin_addr)
            return address
        }
        var local = address(source, 0)
        var remote = address(endpoint.host, endpoint.port)
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, size) } }
        try #require(bound == 0, "bind to \(source): \(String(cString: strerror(errno)))")
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, size) }
        }
        try #require(connected == 0, "connect from \(source): \(String(cString: strerror(errno)))")
        return socket
    }

    /// Raises this process's limit on open descriptors to at least `count` (the hard limit too,
    /// which root may do).
    static func raiseDescriptorLimit(to count: UInt) throws {
        var limit = rlimit()
        try #require(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        if limit.rlim_cur >= count { return }
        limit.rlim_cur = max(limit.rlim_max, rlim_t(count))
        limit.rlim_max = limit.rlim_cur
        try #require(
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0,
            "cannot raise the descriptor limit to \(count): \(String(cString: strerror(errno)))")
    }
}
