import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOSSL
import Testing
import XPUKube
import XPUKubeDriver

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl CLI).
func makeCertificate(in directory: String, name: String) throws -> (ca: String, cert: String, key: String) {
    let ca = "\(directory)/\(name)-ca", server = "\(directory)/\(name)"
    let commands = [
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=\(name) test CA",
            "-keyout", ca + ".key", "-out", ca + ".crt"],
        ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=xpu-kube-webhook", "-keyout", server + ".key",
            "-out", server + ".csr"],
        ["x509", "-req", "-in", server + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial", "-days", "1",
            "-extfile", server + ".ext", "-out", server + ".crt"],
    ]
    try "subjectAltName=IP:127.0.0.1\n".write(toFile: server + ".ext", atomically: true, encoding: .utf8)
    for arguments in commands {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw KubeError(.io, "openssl \(arguments[0]) failed") }
    }
    return (ca + ".crt", server + ".crt", server + ".key")
}

@Suite("admission webhook over TLS", .serialized)
struct WebhookTests {
    func client(trusting ca: String) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    func post(_ review: AdmissionReview, to url: String, with client: HTTPClient) async throws -> AdmissionReview {
        var request = HTTPClientRequest(url: url + "/mutate")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(review)))
        let response = try await client.execute(request, timeout: .seconds(20))
        #expect(response.status == .ok)
        return try JSONDecoder().decode(AdmissionReview.self, from: Data(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    @Test func reviewsRoundTripAndARenewedCertificateIsServedWithoutRestart() async throws {
        let scratch = try Scratch()
        let first = try makeCertificate(in: scratch.path, name: "first")
        let second = try makeCertificate(in: scratch.path, name: "second")
        let certFile = scratch.path + "/tls.crt", keyFile = scratch.path + "/tls.key"
        try FileManager.default.copyItem(atPath: first.cert, toPath: certFile)
        try FileManager.default.copyItem(atPath: first.key, toPath: keyFile)

        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let (reloader, application) = try AdmissionWebhook.make(
            .init(
                host: "127.0.0.1", port: 0, certificateFile: certFile, keyFile: keyFile, reloadInterval: .seconds(3600),
                injection: PodInjection(poolAddress: "pool:7071", shimImage: "xpu-remote:test")),
            logger: quiet, onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) })
        let task = Task { try await application.runService() }
        defer { task.cancel() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let url = "https://127.0.0.1:\(port)"

        let pod: JSONValue = [
            "metadata": ["name": "p", "annotations": ["xpu-remote.io/slice": "mem=2GiB,compute=20%"]],
            "spec": ["containers": [["name": "app", "image": "cuda"]]],
        ]
        let trustFirst = try client(trusting: first.ca)
        let answer = try await post(AdmissionReview(request: .init(uid: "review-1", namespace: "team-a", operation: "CREATE", object: pod)), to: url, with: trustFirst)
        let response = try #require(answer.response)
        #expect(answer.apiVersion == "admission.k8s.io/v1" && answer.kind == "AdmissionReview")
        #expect(response.uid == "review-1" && response.allowed && response.patchType == "JSONPatch")
        let patch = String(decoding: Data(base64Encoded: response.patch ?? "") ?? Data(), as: UTF8.self)
        #expect(patch.contains("XPU_SLICE") && patch.contains("mem=2GiB,compute=20%"))

        let refused = try await post(
            AdmissionReview(request: .init(uid: "review-2", object: ["metadata": ["annotations": ["xpu-remote.io/slice": "compute=500%"]], "spec": ["containers": []]])),
            to: url, with: trustFirst)
        #expect(refused.response?.allowed == false && refused.response?.status?.code == 400)

        // Renew: new files, one reload (what the timer does), and new connections get the new
        // certificate: a client trusting only the new CA connects, one trusting only the old fails.
        try FileManager.default.removeItem(atPath: certFile)
        try FileManager.default.removeItem(atPath: keyFile)
        try FileManager.default.copyItem(atPath: second.cert, toPath: certFile)
        try FileManager.default.copyItem(atPath: second.key, toPath: keyFile)
        try reloader.reload()
        let trustSecond = try client(trusting: second.ca)
        let renewed = try await post(AdmissionReview(request: .init(uid: "review-3", object: pod)), to: url, with: trustSecond)
        #expect(renewed.response?.allowed == true)
        let stale = try client(trusting: first.ca)
        await #expect(throws: (any Error).self) {
            _ = try await stale.execute(HTTPClientRequest(url: url + "/healthz"), timeout: .seconds(20))
        }
        for client in [trustFirst, trustSecond, stale] { try await client.shutdown() }
    }
}
