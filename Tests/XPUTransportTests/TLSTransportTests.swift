import Foundation
import Synchronization
import Testing
import XPUTransport

/// TLS 1.3 between a `Listener` on loopback and a client, both in this process, with certificates
/// made by `openssl` at test time.
@Suite("TLS transport")
struct TLSTransportTests {
    /// Accepts one connection on a thread, runs the server handshake, echoes one message back.
    final class EchoServer: Sendable {
        let listener: Listener
        let outcome = Mutex<Result<String?, TransportError>?>(nil)
        let done = DispatchSemaphore(value: 0)

        init(context: TLSContext) throws {
            listener = try Listener(binding: Endpoint(host: "127.0.0.1", port: 0))
            let thread = Thread { [self] in
                defer { done.signal() }
                do {
                    let socket = try listener.accept()
                    let tls = try TLSTransport(socket: socket, context: context, expectedHost: nil)
                    var bytes = [UInt8](repeating: 0, count: 5)
                    try bytes.withUnsafeMutableBytes { try tls.receive(into: $0) }
                    try bytes.withUnsafeBytes { try tls.send($0) }
                    outcome.withLock { $0 = .success(tls.peerCommonName) }
                } catch let error as TransportError {
                    outcome.withLock { $0 = .failure(error) }
                } catch {
                    outcome.withLock { $0 = .failure(TransportError(.io, "\(error)")) }
                }
            }
            thread.start()
        }

        var endpoint: Endpoint { listener.endpoint }

        /// The server's result: the client's certificate name, or why the server failed.
        func result() -> Result<String?, TransportError>? {
            _ = done.wait(timeout: .now() + 10)
            return outcome.withLock { $0 }
        }
    }

    static func echo(over transport: any Transport) throws {
        let message: [UInt8] = Array("hello".utf8)
        try message.withUnsafeBytes { try transport.send($0) }
        var reply = [UInt8](repeating: 0, count: 5)
        try reply.withUnsafeMutableBytes { try transport.receive(into: $0) }
        #expect(reply == message)
    }

    @Test("A client that trusts the CA talks to the server over TLS 1.3")
    func roundTrip() throws {
        let pki = try TestCertificates.shared.get()
        let server = try EchoServer(context: .server(certificateFile: pki.serverCertificate, keyFile: pki.serverKey))
        let client = try TLSTransport.connect(to: server.endpoint, context: .client(caFile: pki.caCertificate))
        #expect(client.protocolVersion == "TLSv1.3")
        try Self.echo(over: client)
        let result = try #require(server.result())
        #expect(try result.get() == nil, "no client certificate was presented")
    }

    @Test("The server's name is checked: localhost matches, another name does not")
    func hostnameCheck() throws {
        let pki = try TestCertificates.shared.get()
        let server = try EchoServer(context: .server(certificateFile: pki.serverCertificate, keyFile: pki.serverKey))
        let wrongName = #expect(throws: TransportError.self) {
            _ = try TLSTransport.connect(to: server.endpoint, context: .client(caFile: pki.caCertificate), serverName: "gpu-node.example")
        }
        #expect(wrongName?.message.contains("certificate verify failed") == true, "\(String(describing: wrongName))")
        let named = try EchoServer(context: .server(certificateFile: pki.serverCertificate, keyFile: pki.serverKey))
        let client = try TLSTransport.connect(
            to: named.endpoint, context: .client(caFile: pki.caCertificate), serverName: "localhost")
        try Self.echo(over: client)
    }

    @Test("A server certificate from another CA is rejected by the client")
    func wrongCA() throws {
        let pki = try TestCertificates.shared.get()
        let server = try EchoServer(context: .server(certificateFile: pki.serverCertificate, keyFile: pki.serverKey))
        let error = #expect(throws: TransportError.self) {
            _ = try TLSTransport.connect(to: server.endpoint, context: .client(caFile: pki.otherCACertificate))
        }
        #expect(error?.code == .tls)
        #expect(error?.message.contains("unable to get local issuer certificate") == true, "\(String(describing: error))")
        if case .failure(let serverError)? = server.result() {
            #expect(serverError.message.contains("unknown ca"), "server side: \(serverError)")
        } else {
            Issue.record("the server must see the handshake fail")
        }
    }

    @Test("An expired server certificate is rejected by the client")
    func expiredCertificate() throws {
        let pki = try TestCertificates.shared.get()
        let server = try EchoServer(context: .server(certificateFile: pki.expiredServerCertificate, keyFile: pki.serverKey))
        let error = #expect(throws: TransportError.self) {
            _ = try TLSTransport.connect(to: server.endpoint, context: .client(caFile: pki.caCertificate))
        }
        #expect(error?.message.contains("certificate has expired") == true, "\(String(describing: error))")
    }

    @Test("Mutual TLS: the server sees the client certificate's name")
    func mutualTLS() throws {
        let pki = try TestCertificates.shared.get()
        let server = try EchoServer(
            context: .server(
                certificateFile: pki.serverCertificate, keyFile: pki.serverKey, clientCAFile: pki.caCertificate,
                requireClientCertificate: true))
        let client = try TLSTransport.connect(
            to: server.endpoint,
            context: .client(caFile: pki.caCertificate, certificateFile: pki.clientCertificate, keyFile: pki.clientKey))
        try Self.echo(over: client)
        #expect(try server.result()?.get() == "tenant-a")
    }

    @Test("Mutual TLS: a client without a certificate, or with one from another CA, is refused")
    func clientCertificateRequired() throws {
        let pki = try TestCertificates.shared.get()
        let context = try TLSContext.server(
            certificateFile: pki.serverCertificate, keyFile: pki.serverKey, clientCAFile: pki.caCertificate,
            requireClientCertificate: true)
        for (certificate, key, serverReason) in [
            (nil, nil, "peer did not return a certificate"),
            (pki.strangerCertificate, pki.strangerKey, "certificate verify failed"),
        ] as [(String?, String?, String)] {
            let server = try EchoServer(context: context)
            // TLS 1.3 finishes the client's handshake before the server checks its certificate:
            // the refusal arrives as an alert on the client's first read.
            let error = #expect(throws: TransportError.self) {
                let client = try TLSTransport.connect(
                    to: server.endpoint, context: .client(caFile: pki.caCertificate, certificateFile: certificate, keyFile: key))
                try Self.echo(over: client)
            }
            #expect(error != nil)
            guard case .failure(let serverError)? = server.result() else {
                Issue.record("the server must refuse the handshake")
                continue
            }
            #expect(serverError.message.contains(serverReason), "server side: \(serverError)")
        }
    }

    @Test("A plaintext client against a TLS server fails the handshake on the server")
    func plaintextClient() throws {
        let pki = try TestCertificates.shared.get()
        let server = try EchoServer(context: .server(certificateFile: pki.serverCertificate, keyFile: pki.serverKey))
        let plain = try SocketTransport.connect(to: server.endpoint)
        try? Self.echo(over: plain)
        guard case .failure(let error)? = server.result() else {
            Issue.record("a plaintext peer must not complete a TLS handshake")
            return
        }
        #expect(error.code == .tls, "\(error)")
    }

    @Test("Bad settings fail when the context is made, with the file named")
    func badSettings() throws {
        let pki = try TestCertificates.shared.get()
        let missing = #expect(throws: TransportError.self) {
            _ = try TLSContext.server(certificateFile: "/nonexistent/server.crt", keyFile: pki.serverKey)
        }
        #expect(missing?.message.contains("/nonexistent/server.crt") == true)
        let mismatched = #expect(throws: TransportError.self) {
            _ = try TLSContext.server(certificateFile: pki.serverCertificate, keyFile: pki.clientKey)
        }
        #expect(mismatched?.message.isEmpty == false)
        let badCA = #expect(throws: TransportError.self) { _ = try TLSContext.client(caFile: "/nonexistent/ca.crt") }
        #expect(badCA?.message.contains("/nonexistent/ca.crt") == true)
    }

    @Test("Large transfers in both directions arrive intact")
    func largeTransfer() throws {
        let pki = try TestCertificates.shared.get()
        let listener = try Listener(binding: Endpoint(host: "127.0.0.1", port: 0))
        let context = try TLSContext.server(certificateFile: pki.serverCertificate, keyFile: pki.serverKey)
        let size = 3 << 20
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { finished.signal() }
            guard let socket = try? listener.accept(), let tls = try? TLSTransport(socket: socket, context: context, expectedHost: nil)
            else { return }
            var buffer = [UInt8](repeating: 0, count: size)
            guard (try? buffer.withUnsafeMutableBytes { try tls.receive(into: $0) }) != nil else { return }
            _ = try? buffer.withUnsafeBytes { try tls.send($0) }
        }
        thread.start()
        let client = try TLSTransport.connect(to: listener.endpoint, context: .client(caFile: pki.caCertificate))
        let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try data.withUnsafeBytes { bytes in
            try client.send(parts: [UnsafeRawBufferPointer(rebasing: bytes[0..<1000]), UnsafeRawBufferPointer(rebasing: bytes[1000...])])
        }
        var echoed = [UInt8](repeating: 0, count: size)
        try echoed.withUnsafeMutableBytes { try client.receive(into: $0) }
        #expect(echoed == data)
        _ = finished.wait(timeout: .now() + 10)
    }
}
