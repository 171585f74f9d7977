import Foundation
import Testing
import XPUTransport

#if canImport(Glibc)
    import Glibc
#endif

/// `/metrics` and the server's limits, end to end: a real `xpu-remote-server --metrics`, tenants
/// running Tests/programs/metered_tenant.c through the shim, and scrapes over a plain socket.
@Suite("Metrics and limits", .serialized)
struct MetricsTests {
    /// One scrape: the series of the exposition by name with labels, e.g.
    /// `xpu_tenant_launches_total{session="1"}`.
    struct Scrape {
        var series: [String: Double] = [:]
        var text = ""

        subscript(_ name: String) -> Double? { series[name] }

        /// The series of `name` whose labels include `label` (`session="3"`).
        func value(_ name: String, _ label: String) -> Double? {
            series.first { $0.key.hasPrefix(name + "{") && $0.key.contains(label) }?.value
        }

        /// Session ids that have a series now.
        var sessions: Set<String> {
            Set(series.keys.compactMap { key in
                guard let range = key.range(of: "session=\"") else { return nil }
                return String(key[range.upperBound...].prefix { $0 != "\"" })
            })
        }
    }

    /// GET /metrics with nothing but a socket.
    static func scrape(_ server: Server) throws -> Scrape {
        try scrape(address: try #require(server.metricsAddress, "the server printed no metrics address"))
    }

    /// GET /metrics at HOST:PORT.
    static func scrape(address: String) throws -> Scrape {
        let socket = try SocketTransport.connect(to: try #require(Endpoint(parsing: address)))
        let request = Array("GET /metrics HTTP/1.1\r\nHost: \(address)\r\n\r\n".utf8)
        try request.withUnsafeBytes { try socket.send($0) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            do {
                let count = try chunk.withUnsafeMutableBytes { try socket.receiveSome(into: $0) }
                response += chunk[..<count]
            } catch {
                break  // the server closes after one response
            }
        }
        let text = String(decoding: response, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        try #require(parts.count == 2 && parts[0].hasPrefix("HTTP/1.1 200 OK"), "response:\n\(text)")
        #expect(parts[0].contains("Content-Type: text/plain; version=0.0.4"))
        var scrape = Scrape(text: parts[1])
        for line in parts[1].split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            scrape.series[String(line[..<space])] = value
        }
        return scrape
    }

    /// The status line of GET /metrics at HOST:PORT, sent with `authorization` as its header.
    static func statusLine(address: String, authorization: String?) throws -> String {
        let socket = try SocketTransport.connect(to: try #require(Endpoint(parsing: address)))
        let header = authorization.map { "Authorization: \($0)\r\n" } ?? ""
        let request = Array("GET /metrics HTTP/1.1\r\nHost: \(address)\r\n\(header)\r\n".utf8)
        try request.withUnsafeBytes { try socket.send($0) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while let count = try? chunk.withUnsafeMutableBytes({ try socket.receiveSome(into: $0) }) { response += chunk[..<count] }
        // ("\r\n" is one Character in Swift: split on newlines.)
        return String(String(decoding: response, as: UTF8.self).split(whereSeparator: \.isNewline).first ?? "")
    }

    @Test("--metrics-token-file: a scrape without the bearer token gets 401, with it the metrics")
    func metricsToken() throws {
        let harness = try Harness.get()
        let file = harness.workDirectory.appendingPathComponent("metrics-token-\(getpid())").path
        try "  9f2c-scrape-token\n".write(toFile: file, atomically: true, encoding: .utf8)
        let server = try Server(harness: harness, arguments: ["--metrics", "127.0.0.1:0", "--metrics-token-file", file])
        defer { server.stop() }
        let address = try #require(server.metricsAddress)
        for (authorization, expected) in [
            (nil, "HTTP/1.1 401 Unauthorized"), ("Bearer wrong", "HTTP/1.1 401 Unauthorized"),
            ("Bearer 9f2c-scrape-token", "HTTP/1.1 200 OK"),
        ] {
            let line = try Self.statusLine(address: address, authorization: authorization)
            #expect(line == expected, "\(authorization ?? "no token"): '\(line)'")
        }
        // Without --metrics the flag is a mistake, said at start.
        #expect(throws: (any Error).self) { try Server(harness: harness, arguments: ["--metrics-token-file", file]) }
    }

    /// Scrapes until `condition` holds (sessions end asynchronously on the server) or 10 s pass.
    static func scrape(_ server: Server, until condition: (Scrape) -> Bool) throws -> Scrape {
        var last = try scrape(server)
        for _ in 0..<100 where !condition(last) {
            usleep(100_000)
            last = try scrape(server)
        }
        return last
    }

    static func start(_ harness: Harness, _ server: Server, mib: Int, launches: Int, slice: String, token: String? = nil) throws
        -> ChildProcess
    {
        var environment = ["XPU_SLICE": slice]
        if let token { environment["XPU_TOKEN"] = token }
        let tenant = try harness.startRemote("metered_tenant", ["\(mib)", "\(launches)"], server: server, environment: environment)
        try #require(
            tenant.waitForOutput(containing: "ready", timeout: .seconds(120)),
            "tenant (\(slice)) did not get ready:\n\(tenant.stdout.text)\n\(tenant.stderr.text)")
        return tenant
    }

    static func kill(_ tenant: ChildProcess) {
        tenant.signalGroup(SIGKILL)
        _ = tenant.wait(timeout: .seconds(10))
    }

    @Test("per-tenant memory, launches, device time and queueing, per-device fractions; series leave with their session")
    func usage() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness, arguments: ["--metrics", "127.0.0.1:0"])
        defer { server.stop() }
        let empty = try Self.scrape(server)
        #expect(empty.sessions.isEmpty)
        #expect(empty[#"xpu_device_memory_allocated_ratio{device="0"}"#] == 0, "\(empty.text)")
        #expect(empty[#"xpu_device_tenants{device="0"}"#] == 0)

        let plain = try Self.start(harness, server, mib: 64, launches: 100, slice: "mem=256MiB")
        defer { Self.kill(plain) }
        let shared = try Self.start(harness, server, mib: 32, launches: 10, slice: "mem=128MiB,compute=30%")
        defer { Self.kill(shared) }

        let both = try Self.scrape(server) { $0.sessions.count == 2 }
        let ids = both.sessions.sorted { Int($0)! < Int($1)! }
        try #require(ids.count == 2, "\(both.text)")
        let (first, second) = ("session=\"\(ids[0])\"", "session=\"\(ids[1])\"")
        #expect(both.value("xpu_tenant_memory_used_bytes", first) == Double(64 << 20), "\(both.text)")
        #expect(both.value("xpu_tenant_memory_used_bytes", second) == Double(32 << 20))
        #expect(both.value("xpu_tenant_memory_quota_bytes", first) == Double(256 << 20))
        #expect(both.value("xpu_tenant_memory_quota_bytes", second) == Double(128 << 20))
        #expect(both.value("xpu_tenant_launches_total", first) == 100)
        #expect(both.value("xpu_tenant_launches_total", second) == 10)
        #expect((both.value("xpu_tenant_device_seconds_total", first) ?? 0) > 0, "metered by events")
        #expect((both.value("xpu_tenant_device_seconds_total", second) ?? 0) > 0, "measured by the scheduler")
        #expect(both.value("xpu_tenant_compute_share_ratio", second) == 0.3)
        #expect(both.value("xpu_tenant_queue_wait_seconds_total", first) == nil, "unscheduled sessions do not queue")
        #expect((both.value("xpu_tenant_queue_wait_seconds_total", second) ?? -1) >= 0)
        #expect(both[#"xpu_device_memory_allocated_ratio{device="0"}"#] == 0.375, "(256 + 128) MiB of 1 GiB")
        #expect(both[#"xpu_device_compute_allocated_ratio{device="0"}"#] == 0.3)
        #expect(both[#"xpu_device_tenants{device="0"}"#] == 2)
        let busy = try #require(both[#"xpu_device_busy_seconds_total{device="0"}"#])
        #expect(busy > 0)
        let fraction = try #require(both[#"xpu_device_busy_ratio{device="0"}"#])
        #expect(fraction >= 0 && fraction <= 1)

        // A session's series go first, then its grant (both as its connection ends).
        Self.kill(plain)
        let one = try Self.scrape(server) {
            $0.sessions.count == 1 && $0[#"xpu_device_tenants{device="0"}"#] == 1
        }
        #expect(one.sessions == [ids[1]], "\(one.text)")
        #expect(one[#"xpu_device_memory_allocated_ratio{device="0"}"#] == 0.125)
        #expect((one[#"xpu_device_busy_seconds_total{device="0"}"#] ?? 0) >= busy, "an ended session's device time stays counted")

        Self.kill(shared)
        let none = try Self.scrape(server) { $0.sessions.isEmpty && $0[#"xpu_device_tenants{device="0"}"#] == 0 }
        #expect(none.sessions.isEmpty, "\(none.text)")
        #expect(none[#"xpu_device_memory_allocated_ratio{device="0"}"#] == 0)
        #expect(none[#"xpu_device_compute_allocated_ratio{device="0"}"#] == 0)
        #expect(none[#"xpu_device_tenants{device="0"}"#] == 0)
    }

    @Test("max tenants per device and allowed slice sizes: refused at cuInit with the reason, admitted once a tenant leaves")
    func limits() throws {
        let harness = try Harness.get()
        let server = try Server(
            harness: harness, arguments: ["--max-tenants-per-device", "2", "--slice-min-memory", "64MiB", "--slice-max-memory", "512MiB"])
        defer { server.stop() }
        let first = try Self.start(harness, server, mib: 16, launches: 0, slice: "mem=128MiB")
        defer { Self.kill(first) }
        let second = try Self.start(harness, server, mib: 16, launches: 0, slice: "mem=128MiB")
        defer { Self.kill(second) }

        let third = try harness.runRemote("meminfo", server: server, environment: ["XPU_SLICE": "mem=128MiB"])
        #expect(third.status != .exited(0))
        #expect(third.stdout.contains("CUDA_ERROR_DEVICE_UNAVAILABLE"), "stdout:\n\(third.stdout)")
        #expect(third.stderr.contains("device 0 already serves 2 sessions"), "the client's log gives the reason:\n\(third.stderr)")

        Self.kill(first)
        #expect(server.waitUntilSessionsReleased(leavingOpen: 1), "the killed tenant's session must be released (the second's stays open)")
        let admitted = try harness.runRemote("meminfo", server: server, environment: ["XPU_SLICE": "mem=128MiB"])
        #expect(admitted.status == .exited(0), "a tenant that leaves makes room:\n\(admitted.stderr)")

        for (slice, reason) in [
            ("mem=1GiB", "mem=1073741824 bytes is outside the slice sizes this server allows (67108864 to 536870912 bytes)"),
            ("mem=1MiB", "outside the slice sizes"),
            ("compute=50%", "ask for one with XPU_SLICE=mem=SIZE"),
        ] {
            let refused = try harness.runRemote("meminfo", server: server, environment: ["XPU_SLICE": slice])
            #expect(refused.status != .exited(0))
            #expect(refused.stdout.contains("CUDA_ERROR_NOT_PERMITTED"), "\(slice): stdout:\n\(refused.stdout)")
            #expect(refused.stderr.contains(reason), "\(slice): stderr:\n\(refused.stderr)")
        }
        let log = server.process.stderr.text
        #expect(log.contains("slice refused") && log.contains("outside the slice sizes"), "the server logs the reason:\n\(log)")
        #expect(log.contains("already serves 2 sessions"))
    }

    @Test("a tenant's sessions carry its name in /metrics and are limited by its maxSessions")
    func tenantSessions() throws {
        let harness = try Harness.get()
        let token = "metrics-tenant-token-0123456789"
        let digest = try Harness.runTool("sh", ["-c", "printf %s \"$0\" | sha256sum", token], timeout: .seconds(10)).stdout.prefix(64)
        let policy = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-metrics-policy-\(getpid()).json").path
        try #"{ "tenants": [ { "name": "team-a", "tokenSHA256": "\#(digest)", "maxSessions": 1 } ] }"#
            .write(toFile: policy, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: policy) }
        let server = try Server(harness: harness, arguments: ["--policy", policy, "--metrics", "127.0.0.1:0"])
        defer { server.stop() }

        let holder = try Self.start(harness, server, mib: 8, launches: 3, slice: "", token: token)
        defer { Self.kill(holder) }
        let scrape = try Self.scrape(server) { $0.sessions.count == 1 }
        #expect(scrape.value("xpu_tenant_launches_total", #"tenant="team-a""#) == 3, "\(scrape.text)")
        #expect(scrape.value("xpu_tenant_memory_used_bytes", #"tenant="team-a""#) == Double(8 << 20))
        #expect(scrape.value("xpu_tenant_memory_quota_bytes", "session=") == nil, "no slice, no quota")

        let second = try harness.runRemote("meminfo", server: server, environment: ["XPU_TOKEN": token])
        #expect(second.status != .exited(0))
        #expect(second.stdout.contains("CUDA_ERROR_NOT_PERMITTED"), "stdout:\n\(second.stdout)")
        #expect(second.stderr.contains("tenant 'team-a' already has 1 sessions open (policy allows 1)"), "stderr:\n\(second.stderr)")

        Self.kill(holder)
        #expect(server.waitUntilSessionsReleased(), "the killed tenant's session must be released")
        let admitted = try harness.runRemote("meminfo", server: server, environment: ["XPU_TOKEN": token])
        #expect(admitted.status == .exited(0), "the tenant's session count is given back when its session ends:\n\(admitted.stderr)")
    }
}
