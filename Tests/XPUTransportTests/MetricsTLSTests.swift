import Logging
import Testing
import XPUTransport

@testable import XPUServer

/// `/metrics` over TLS (`--metrics-tls-cert`, `--metrics-tls-key`), scraped by the project's own
/// TLS client with certificates made by `openssl` at test time.
@Suite("/metrics over TLS")
struct MetricsTLSTests {
    static func endpoint(_ certificates: TestCertificates) throws -> MetricsEndpoint {
        try MetricsEndpoint(
            binding: Endpoint(host: "127.0.0.1", port: 0), metrics: ServerMetrics(deviceMemory: [1 << 30]),
            tls: MetricsEndpoint.TLSFiles(certificateFile: certificates.serverCertificate, keyFile: certificates.serverKey),
            logger: Logger(label: "test"))
    }

    @Test("A client that trusts the certificate's CA scrapes over TLS; plain HTTP gets no metrics")
    func scrapeOverTLS() async throws {
        let certificates = try TestCertificates.shared.get()
        let endpoint = try Self.endpoint(certificates)
        #expect(endpoint.usesTLS)
        #expect(endpoint.url == "https://127.0.0.1:\(endpoint.endpoint.port)/metrics")
        let service = Task { try await endpoint.run() }
        defer { service.cancel() }

        let tls = try TLSTransport.connect(
            to: endpoint.endpoint, context: try TLSContext.client(caFile: certificates.caCertificate), serverName: "localhost")
        defer { tls.shutdown() }
        try Array("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8).withUnsafeBytes { try tls.send($0) }
        let answer = Self.readToEnd(tls)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"))
        #expect(answer.contains("xpu_device_memory_allocated_ratio{device=\"0\"}"))

        // The same port in the clear: the TLS server reads no HTTP request from it.
        let plain = try SocketTransport.connect(to: endpoint.endpoint)
        defer { plain.shutdown() }
        try Array("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8).withUnsafeBytes { try plain.send($0) }
        #expect(!Self.readToEnd(plain).contains("xpu_device"))
    }

    @Test("A client that does not trust the certificate's CA is refused")
    func untrustedCertificate() async throws {
        let certificates = try TestCertificates.shared.get()
        let endpoint = try Self.endpoint(certificates)
        let service = Task { try await endpoint.run() }
        defer { service.cancel() }
        #expect(throws: TransportError.self) {
            _ = try TLSTransport.connect(
                to: endpoint.endpoint, context: try TLSContext.client(caFile: certificates.otherCACertificate), serverName: "localhost")
        }
    }

    @Test("Unreadable certificate or key files fail when the endpoint is made")
    func badFiles() throws {
        let certificates = try TestCertificates.shared.get()
        #expect(throws: TransportError.self) {
            _ = try MetricsEndpoint(
                binding: Endpoint(host: "127.0.0.1", port: 0), metrics: ServerMetrics(deviceMemory: [1 << 30]),
                tls: MetricsEndpoint.TLSFiles(certificateFile: certificates.serverCertificate, keyFile: "/nonexistent/key.pem"),
                logger: Logger(label: "test"))
        }
    }

    /// What `transport` receives until the peer closes it (or the TLS session fails).
    static func readToEnd(_ transport: some Transport) -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while let count = try? chunk.withUnsafeMutableBytes({ try transport.receiveSome(into: $0) }) {
            received += chunk[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
