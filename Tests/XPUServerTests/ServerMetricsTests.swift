import Logging
import Testing
import XPUAdmission
import XPUTransport

@testable import XPUServer

@Suite("/metrics: rendering and the HTTP responder")
struct ServerMetricsTests {
    /// The value of the series `name{labels}` in a rendered exposition, if present.
    static func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test("Sessions' series appear while they are open and are gone when they end")
    func sessionSeries() throws {
        let metrics = ServerMetrics(deviceMemory: [1 << 30])
        let usage = SessionUsage(session: 7, tenant: "team-a", slice: Slice(try SliceRequest(parsing: "mem=64MiB")))
        usage.memoryBytes.store(3 << 20, ordering: .relaxed)
        _ = usage.launches.wrappingAdd(5, ordering: .relaxed)
        usage.meteredDeviceTime.withLock { $0 = [0: 1_500_000_000] }
        metrics.open(usage)
        let text = String(decoding: metrics.render(), as: UTF8.self)
        #expect(Self.value(text, #"xpu_tenant_memory_used_bytes{session="7",tenant="team-a"}"#) == Double(3 << 20), "\(text)")
        #expect(Self.value(text, #"xpu_tenant_memory_quota_bytes{session="7",tenant="team-a"}"#) == Double(64 << 20))
        #expect(Self.value(text, #"xpu_tenant_launches_total{session="7",tenant="team-a"}"#) == 5)
        #expect(Self.value(text, #"xpu_tenant_device_seconds_total{session="7",tenant="team-a"}"#) == 1.5)
        #expect(Self.value(text, #"xpu_device_busy_seconds_total{device="0"}"#) == 1.5)
        #expect(text.contains("# TYPE xpu_tenant_launches_total counter"))
        #expect(!text.contains("queue_wait"), "only sessions with a compute share queue")

        metrics.close(usage)
        let after = String(decoding: metrics.render(), as: UTF8.self)
        #expect(!after.contains("session="), "\(after)")
        #expect(Self.value(after, #"xpu_device_busy_seconds_total{device="0"}"#) == 1.5, "an ended session's device time stays")
        #expect(Self.value(after, #"xpu_device_busy_ratio{device="0"}"#) == 0, "nothing ran since the previous scrape")
    }

    @Test("A thousand sessions leave nothing behind")
    func noGrowth() {
        let metrics = ServerMetrics(deviceMemory: [1 << 30, 1 << 30])
        let empty = metrics.render().count
        for id in 1...1000 {
            let usage = SessionUsage(session: UInt64(id), tenant: nil, slice: nil)
            metrics.open(usage)
            if id % 100 == 0 { #expect(metrics.render().count > empty) }
            metrics.close(usage)
        }
        #expect(metrics.openSessions == 0)
        #expect(metrics.render().count == empty)
    }

    @Test("The responder answers GET /metrics and nothing else")
    func responder() {
        let responder = MetricsResponder(metrics: ServerMetrics(deviceMemory: [1 << 30]), bearerToken: nil)
        let ok = responder.respond(method: .GET, uri: "/metrics", authorization: [])
        #expect(ok.status == .ok)
        #expect(ok.headers.contains { $0 == ("Content-Type", "text/plain; version=0.0.4; charset=utf-8") })
        #expect(String(decoding: ok.body, as: UTF8.self).contains("xpu_device_memory_allocated_ratio{device=\"0\"}"))
        #expect(ok.contentLength == ok.body.count)
        #expect(responder.respond(method: .GET, uri: "/metrics?x=1", authorization: []).status == .ok)
        let head = responder.respond(method: .HEAD, uri: "/metrics", authorization: [])
        #expect(head.status == .ok && head.body.isEmpty && head.contentLength == ok.contentLength)
        #expect(responder.respond(method: .GET, uri: "/", authorization: []).status == .notFound)
        let post = responder.respond(method: .POST, uri: "/metrics", authorization: [])
        #expect(post.status == .methodNotAllowed)
        #expect(post.headers.contains { $0 == ("Allow", "GET, HEAD") })
    }

    @Test("With a bearer token, only a scrape that carries it is answered")
    func bearerToken() {
        let responder = MetricsResponder(metrics: ServerMetrics(deviceMemory: [1 << 30]), bearerToken: Array("s3cret-token".utf8))
        let missing = responder.respond(method: .GET, uri: "/metrics", authorization: [])
        #expect(missing.status == .unauthorized)
        #expect(missing.headers.contains { $0.0 == "WWW-Authenticate" && $0.1.hasPrefix("Bearer") })
        #expect(!String(decoding: missing.body, as: UTF8.self).contains("xpu_device"))
        for wrong in ["Bearer s3cret-tokeX", "Bearer s3cret", "Basic s3cret-token", "Bearer"] {
            #expect(responder.respond(method: .GET, uri: "/metrics", authorization: [wrong]).status == .unauthorized)
        }
        #expect(responder.respond(method: .GET, uri: "/metrics", authorization: ["Bearer s3cret-token"]).status == .ok)
        #expect(responder.respond(method: .GET, uri: "/metrics", authorization: ["bearer  s3cret-token "]).status == .ok)
        // Other paths answer as without a token: the token guards the metrics only.
        #expect(responder.respond(method: .GET, uri: "/", authorization: []).status == .notFound)
    }

    @Test("Scrapes over HTTP/1.1: a response per request, keep-alive or close, and a stray byte stream refused")
    func overTheWire() async throws {
        let endpoint = try MetricsEndpoint(
            binding: Endpoint(host: "127.0.0.1", port: 0), metrics: ServerMetrics(deviceMemory: [1 << 30]),
            bearerToken: "s3cret-token", logger: Logger(label: "test"))
        #expect(endpoint.url == "http://127.0.0.1:\(endpoint.endpoint.port)/metrics")
        let service = Task { try await endpoint.run() }
        defer { service.cancel() }
        let socket = try SocketTransport.connect(to: endpoint.endpoint)
        defer { socket.shutdown() }
        // Two requests on one connection (the first kept alive), the second closing it.
        let requests =
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\n\r\n"
            + "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        try Array(requests.utf8).withUnsafeBytes { try socket.send($0) }
        let answer = Self.readToEnd(socket)
        let responses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst()
        #expect(responses.count == 2)
        #expect(responses.first?.hasPrefix("200 OK") == true)
        #expect(responses.first?.contains("xpu_device_memory_allocated_ratio{device=\"0\"}") == true)
        #expect(responses.last?.hasPrefix("401 Unauthorized") == true)

        let stray = try SocketTransport.connect(to: endpoint.endpoint)
        defer { stray.shutdown() }
        try Array("hello\r\n\r\n".utf8).withUnsafeBytes { try stray.send($0) }
        #expect(Self.readToEnd(stray).hasPrefix("HTTP/1.1 400"))
    }

    /// What `socket` receives until the peer closes it.
    static func readToEnd(_ socket: SocketTransport) -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while let count = try? chunk.withUnsafeMutableBytes({ try socket.receiveSome(into: $0) }) {
            received += chunk[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
