#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import ServiceLifecycle
import XPUTransport

/// Serves `GET /metrics` over HTTP/1.1 for Prometheus (`--metrics HOST:PORT`).
///
/// A scrape is one small request every few seconds, so this is a minimal responder on the
/// server's own socket code rather than a web framework: one request per connection (answered
/// with `Connection: close`), one connection at a time, on a thread of its own. A client that
/// stalls is dropped after `timeoutSeconds`, so it cannot hold the endpoint for long.
public final class MetricsEndpoint: Service, Sendable {
    let listener: Listener
    let metrics: ServerMetrics
    let logger: Logger
    /// When set, a scrape must carry `Authorization: Bearer <token>` (`--metrics-token-file`).
    let bearerToken: [UInt8]?
    static let timeoutSeconds = 5
    /// A request line and headers longer than this are refused (431).
    static let maximumRequestBytes = 16 << 10

    /// Binds `endpoint` now, so that a bad address fails before the server starts.
    public init(binding endpoint: Endpoint, metrics: ServerMetrics, bearerToken: String? = nil, logger: Logger) throws(TransportError) {
        listener = try Listener(binding: endpoint, backlog: 16)
        self.metrics = metrics
        self.bearerToken = bearerToken.map { Array($0.utf8) }
        self.logger = logger
    }

    /// The bound address (the real port when 0 was asked for).
    public var endpoint: Endpoint { listener.endpoint }

    public func run() async throws {
        Thread.start(named: "xpu-metrics") { [self] in acceptLoop() }
        try? await gracefulShutdown()
        listener.shutdown()
    }

    private func acceptLoop() {
        while true {
            let client: SocketTransport
            do {
                client = try listener.accept()
            } catch {
                return  // shut down
            }
            var timeout = timeval(tv_sec: Self.timeoutSeconds, tv_usec: 0)
            for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
                _ = setsockopt(client.descriptor, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size))
            }
            serve(client)
            client.shutdown()
        }
    }

    private func serve(_ client: SocketTransport) {
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while Self.headerEnd(in: request) == nil && request.count <= Self.maximumRequestBytes {
            let count: Int
            do {
                count = try chunk.withUnsafeMutableBytes { try client.receiveSome(into: $0) }
            } catch {
                return  // gone, or stalled past the timeout
            }
            request += chunk[..<count]
        }
        let response = respond(to: request)
        try? response.withUnsafeBytes { try client.send($0) }
    }

    /// The full response to the bytes of a request (its line and headers; a body is ignored).
    func respond(to request: [UInt8]) -> [UInt8] {
        guard let end = Self.headerEnd(in: request) else {
            return Self.response(status: "431 Request Header Fields Too Large", body: Array("request too large\n".utf8))
        }
        let head = String(decoding: request[..<end], as: UTF8.self)
        // ("\r\n" is one Character in Swift, so split on newlines rather than look for "\r".)
        let line = (head.split(whereSeparator: \.isNewline).first ?? "").split(separator: " ")
        guard line.count == 3, line[2].hasPrefix("HTTP/1.") else {
            return Self.response(status: "400 Bad Request", body: Array("not an HTTP/1.x request\n".utf8))
        }
        let path = line[1].prefix { $0 != "?" }
        guard path == "/metrics" else {
            return Self.response(status: "404 Not Found", body: Array("only /metrics is served here\n".utf8))
        }
        if let bearerToken, !Self.carries(bearerToken, in: head) {
            return Self.response(
                status: "401 Unauthorized", body: Array("a bearer token is required\n".utf8),
                extra: "WWW-Authenticate: Bearer realm=\"xpu-remote metrics\"\r\n")
        }
        guard line[0] == "GET" || line[0] == "HEAD" else {
            return Self.response(status: "405 Method Not Allowed", body: Array("use GET\n".utf8), extra: "Allow: GET, HEAD\r\n")
        }
        let body = metrics.render()
        return Self.response(
            status: "200 OK", body: line[0] == "HEAD" ? [] : body, contentLength: body.count,
            contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    /// Whether the request's headers carry `Authorization: Bearer <token>` (the header name and
    /// the scheme in any case). The token is compared in time that does not depend on where it
    /// first differs.
    static func carries(_ token: [UInt8], in head: String) -> Bool {
        for line in head.split(whereSeparator: \.isNewline).dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "authorization" else { continue }
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            guard value.lowercased().hasPrefix("bearer ") else { return false }
            let given = Array(value.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces).utf8)
            guard given.count == token.count else { return false }
            var difference: UInt8 = 0
            for (a, b) in zip(given, token) { difference |= a ^ b }
            return difference == 0
        }
        return false
    }

    /// The offset of the blank line that ends the headers; nil before it has arrived.
    static func headerEnd(in request: [UInt8]) -> Int? {
        let crlf: [UInt8] = Array("\r\n\r\n".utf8)
        guard request.count >= crlf.count else { return nil }
        for start in 0...(request.count - crlf.count) where request[start..<start + crlf.count].elementsEqual(crlf) {
            return start
        }
        return nil
    }

    private static func response(
        status: String, body: [UInt8], contentLength: Int? = nil, contentType: String = "text/plain; charset=utf-8",
        extra: String = ""
    ) -> [UInt8] {
        let head =
            "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(contentLength ?? body.count)\r\n"
            + "Connection: close\r\n\(extra)\r\n"
        return Array(head.utf8) + body
    }
}
