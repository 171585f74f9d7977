import Logging
import Testing
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
    func responder() throws {
        let endpoint = try MetricsEndpoint(
            binding: Endpoint(host: "127.0.0.1", port: 0), metrics: ServerMetrics(deviceMemory: [1 << 30]), logger: Logger(label: "test"))
        func answer(_ request: String) -> String { String(decoding: endpoint.respond(to: Array(request.utf8)), as: UTF8.self) }
        let ok = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(ok.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(ok.contains("xpu_device_memory_allocated_ratio{device=\"0\"}"))
        let body = ok.components(separatedBy: "\r\n\r\n")[1]
        #expect(ok.contains("Content-Length: \(body.utf8.count)\r\n"))
        #expect(answer("GET /metrics?x=1 HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.1 200 OK"))
        #expect(answer("HEAD /metrics HTTP/1.1\r\n\r\n").hasSuffix("\r\n\r\n"))
        #expect(answer("GET / HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 404"))
        #expect(answer("POST /metrics HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 405"))
        #expect(answer("hello\r\n\r\n").hasPrefix("HTTP/1.1 400"))
        #expect(answer("GET /metrics HTTP/1.1\r\n").hasPrefix("HTTP/1.1 431"))
    }

    @Test("With a bearer token, only a scrape that carries it is answered")
    func bearerToken() throws {
        let endpoint = try MetricsEndpoint(
            binding: Endpoint(host: "127.0.0.1", port: 0), metrics: ServerMetrics(deviceMemory: [1 << 30]),
            bearerToken: "s3cret-token", logger: Logger(label: "test"))
        func answer(_ request: String) -> String { String(decoding: endpoint.respond(to: Array(request.utf8)), as: UTF8.self) }
        let missing = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(missing.hasPrefix("HTTP/1.1 401 Unauthorized"))
        #expect(missing.contains("WWW-Authenticate: Bearer"))
        #expect(!missing.contains("xpu_device"))
        #expect(answer("GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret-tokeX\r\n\r\n").hasPrefix("HTTP/1.1 401"))
        #expect(answer("GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n").hasPrefix("HTTP/1.1 401"))
        #expect(answer("GET /metrics HTTP/1.1\r\nAuthorization: Basic s3cret-token\r\n\r\n").hasPrefix("HTTP/1.1 401"))
        #expect(answer("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\n\r\n").hasPrefix("HTTP/1.1 200 OK"))
        #expect(answer("GET /metrics HTTP/1.1\r\nauthorization: bearer s3cret-token\r\n\r\n").hasPrefix("HTTP/1.1 200 OK"))
        // Other paths answer as before: the token guards the metrics only.
        #expect(answer("GET / HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 404"))
    }
}
