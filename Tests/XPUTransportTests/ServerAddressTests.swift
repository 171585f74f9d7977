import Foundation
import Testing
import XPUTransport

@Suite("Server addresses and the Unix socket transport")
struct ServerAddressTests {
    @Test("XPU_SERVER forms parse into their transports")
    func parsing() {
        #expect(ServerAddress(parsing: "gpu:7070") == .tcp(Endpoint(host: "gpu", port: 7070)))
        #expect(ServerAddress(parsing: "tcp://gpu:7070") == .tcp(Endpoint(host: "gpu", port: 7070)))
        #expect(ServerAddress(parsing: "tls://gpu:7443") == .tls(Endpoint(host: "gpu", port: 7443)))
        #expect(ServerAddress(parsing: "tls://[::1]:7443") == .tls(Endpoint(host: "::1", port: 7443)))
        #expect(ServerAddress(parsing: "unix:/run/xpu.sock") == .unix(path: "/run/xpu.sock"))
        #expect(ServerAddress(parsing: "rdma://10.0.0.2:7471") == .rdma(Endpoint(host: "10.0.0.2", port: 7471)))
        for bad in ["gpu", "http://gpu:80", "tls://gpu", "unix:", "tcp://gpu:99999"] {
            #expect(ServerAddress(parsing: bad) == nil, "\(bad)")
        }
        #expect(ServerAddress(parsing: "tls://gpu:7443")?.description == "tls://gpu:7443")
    }

    @Test("TLS settings come from XPU_TLS_*; empty values are unset")
    func tlsSettings() {
        let environment = ["XPU_TLS_CA": "/ca.pem", "XPU_TLS_CERT": "", "XPU_TLS_SERVER_NAME": "gpu"]
        let settings = ClientTLSSettings { environment[$0] }
        #expect(settings == ClientTLSSettings(caFile: "/ca.pem", serverName: "gpu"))
    }

    @Test("A Unix socket listener carries bytes both ways and removes its file")
    func unixSocket() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-unix-\(getpid()).sock").path
        var listener: UnixListener? = try UnixListener(path: path)
        #expect(listener?.address == "unix:\(path)")
        let client = try UnixSocket.connect(path: path)
        let server = try listener!.accept()
        #expect(server.peerHost == "unix")
        try [UInt8]([1, 2, 3]).withUnsafeBytes { try client.send($0) }
        var received = [UInt8](repeating: 0, count: 3)
        try received.withUnsafeMutableBytes { try server.receive(into: $0) }
        #expect(received == [1, 2, 3])
        listener = nil
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
