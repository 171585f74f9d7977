import Foundation
import Testing
import XPUProtocol
import XPUTransport

#if canImport(Glibc)
    import Glibc
#endif

/// TLS, authentication, policy and the safe default, end to end: the real `xpu-remote-server`
/// (from `XPU_DIST`, default dist/) and C programs through the shim, with throwaway certificates
/// made by `openssl` at test time (proto/SECURITY.md).
@Suite("Transport security", .serialized)
struct TransportSecurityTests {
    static let tokenA = "tenant-a-token-0123456789"

    /// A server with extra flags; `address` is what it printed (`tls://127.0.0.1:PORT` with TLS).
    final class SecureServer {
        let process: ChildProcess
        let address: String

        init(harness: Harness, _ arguments: [String], listen: String = "127.0.0.1:0") throws {
            process = try ChildProcess(
                harness.serverBinary, ["--listen", listen, "--device", "sim", "--sim-memory", "1GiB"] + arguments,
                environment: Harness.differentialServerEnvironment())
            let prefix = "xpu-remote-server listening on "
            guard process.waitForOutput(containing: prefix, timeout: .seconds(60)) else {
                let status = process.stop()
                throw E2EError("server did not start (\(status.map(String.init(describing:)) ?? "running")):\n\(process.stderr.text)")
            }
            /// The address in the listening line, once the server has printed it whole.
            func listening(_ text: String) -> String? {
                guard let range = text.range(of: prefix), let end = text[range.upperBound...].firstIndex(of: "\n") else { return nil }
                return String(text[range.upperBound..<end])
            }
            _ = process.waitForOutput(where: { listening($0) != nil }, timeout: .seconds(5))
            address = listening(process.stdout.text) ?? ""
        }

        /// host:port without the scheme.
        var hostPort: String { address.hasPrefix("tls://") ? String(address.dropFirst(6)) : address }

        deinit { process.stop(terminateFirst: true, grace: .seconds(5)) }
    }

    /// Runs a test program through xpu-run with `XPU_SERVER` and the given environment.
    static func run(_ harness: Harness, _ program: String = "meminfo", server: String, _ environment: [String: String] = [:])
        throws -> ProgramOutput
    {
        var env = Harness.baseEnvironment().merging(environment) { $1 }
        env["XPU_SERVER"] = server
        for key in ["XPU_TOKEN", "XPU_TLS_CA", "XPU_TLS_CERT", "XPU_TLS_KEY"] where environment[key] == nil { env[key] = nil }
        return try ChildProcess(harness.runBinary, ["--", harness.program(program)], environment: env)
            .finish(timeout: .seconds(120))
    }

    static func writePolicy(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-policy-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func sha256Hex(_ text: String) throws -> String {
        let result = try Harness.runTool("sh", ["-c", "printf %s \"$0\" | sha256sum", text], timeout: .seconds(10))
        return String(result.stdout.prefix(64))
    }

    static func policy() throws -> String {
        try writePolicy(
            """
            { "tenants": [
                { "name": "tenant-a", "tokenSHA256": "\(try sha256Hex(tokenA))", "maxMemory": "1GiB", "maxPriority": "normal" },
                { "name": "cert-tenant", "certificateCommonName": "tenant-a", "maxMemory": "512MiB" } ] }
            """)
    }

    // MARK: - Safe default

    @Test("A server on 0.0.0.0 without TLS and authentication exits with an explanation unless --insecure")
    func safeDefault() throws {
        let harness = try Harness.get()
        let refused = try ChildProcess(
            harness.serverBinary, ["--listen", "0.0.0.0:0", "--device", "sim"], environment: Harness.baseEnvironment())
            .finish(timeout: .seconds(30))
        #expect(refused.status != .exited(0) && refused.status != nil)
        #expect(refused.stderr.contains("refusing to listen on 0.0.0.0:0"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--insecure") && refused.stderr.contains("--tls-cert") && refused.stderr.contains("--policy"))
        #expect(!refused.stdout.contains("listening on"))

        let onlyTLS = try ChildProcess(
            harness.serverBinary, ["--listen", "0.0.0.0:0", "--device", "sim", "--tls-cert", "/x", "--tls-key", "/y"],
            environment: Harness.baseEnvironment()
        ).finish(timeout: .seconds(30))
        #expect(onlyTLS.status != .exited(0) && onlyTLS.stderr.contains("authentication (--policy FILE)"), "\(onlyTLS.stderr)")

        let insecure = try SecureServer(harness: harness, ["--insecure"], listen: "0.0.0.0:0")
        #expect(insecure.process.stderr.text.contains("INSECURE"), "\(insecure.process.stderr.text)")
        let port = insecure.address.split(separator: ":").last.map(String.init) ?? ""
        let output = try Self.run(harness, server: "127.0.0.1:\(port)")
        #expect(output.status == .exited(0), "\(output.stderr)")
    }

    // MARK: - Tokens and policy

    @Test("A valid token is served; a wrong token is refused with a clear error while the server keeps serving others")
    func tokens() throws {
        let harness = try Harness.get()
        let server = try SecureServer(harness: harness, ["--policy", try Self.policy()])
        // A session that is open before and after the refusals.
        let bystander = FrameChannel(transport: try SocketTransport.connect(to: Endpoint(parsing: server.address)!))
        try bystander.send(
            FrameHeader(length: 0, call: 0, sequence: 0),
            payload: Hello(clientCUDAVersion: 13000, client: "bystander", token: Self.tokenA).encoded)
        #expect(try bystander.receive().0.status == 0)

        let good = try Self.run(harness, server: server.address, ["XPU_TOKEN": Self.tokenA])
        #expect(good.status == .exited(0), "\(good.stderr)")
        #expect(good.stdout.contains("total"))

        let wrong = "wrong-token-\(UInt32.random(in: 0...UInt32.max))"
        let refused = try Self.run(harness, server: server.address, ["XPU_TOKEN": wrong, "XPU_LOG": "error"])
        #expect(refused.status != .exited(0))
        #expect(refused.stderr.contains("authentication failed: the token is not valid"), "\(refused.stderr)")

        let anonymous = try Self.run(harness, server: server.address, ["XPU_LOG": "error"])
        #expect(anonymous.status != .exited(0))
        #expect(anonymous.stderr.contains("authentication required"), "\(anonymous.stderr)")

        #expect(server.process.waitForLog(containing: "session refused", timeout: .seconds(5)))
        #expect(!server.process.stderr.text.contains(wrong), "the server must never log a token")
        #expect(!server.process.stderr.text.contains(Self.tokenA), "the server must never log a token")

        let after = try Self.run(harness, server: server.address, ["XPU_TOKEN": Self.tokenA])
        #expect(after.status == .exited(0), "the server keeps serving: \(after.stderr)")
        try bystander.send(FrameHeader(length: 0, call: CallID.initialize.rawValue, sequence: 1), payload: InitializeRequest(flags: 0).encoded)
        #expect(try bystander.receive().0.status == 0, "the session opened before the refusals keeps working")
    }

    @Test("A token may not request more than its policy allows")
    func overPolicy() throws {
        let harness = try Harness.get()
        let server = try SecureServer(harness: harness, ["--policy", try Self.policy()])
        for slice in ["mem=2GiB", "priority=high"] {
            let refused = try Self.run(harness, server: server.address, ["XPU_TOKEN": Self.tokenA, "XPU_SLICE": slice, "XPU_LOG": "error"])
            #expect(refused.status != .exited(0), "\(slice)")
            #expect(refused.stderr.contains("not authorized: tenant 'tenant-a' may not request"), "\(slice): \(refused.stderr)")
        }
        let within = try Self.run(harness, server: server.address, ["XPU_TOKEN": Self.tokenA, "XPU_SLICE": "mem=1GiB,priority=low"])
        #expect(within.status == .exited(0), "\(within.stderr)")
    }

    // MARK: - TLS

    @Test("TLS end to end, and wrong CA, expired certificate and plaintext clients refused while others are served")
    func tls() throws {
        let harness = try Harness.get()
        let pki = try TransportCertificates.shared.get()
        let server = try SecureServer(harness: harness, ["--tls-cert", pki.path("server.crt"), "--tls-key", pki.path("server.key")])
        #expect(server.address.hasPrefix("tls://127.0.0.1:"))
        let trusted = ["XPU_TLS_CA": pki.path("ca.crt")]

        let good = try Self.run(harness, server: server.address, trusted)
        #expect(good.status == .exited(0), "\(good.stderr)")
        let direct = try harness.runDirect("meminfo")
        #expect(good.stdout == direct.stdout)

        let wrongCA = try Self.run(harness, server: server.address, ["XPU_TLS_CA": pki.path("other-ca.crt"), "XPU_LOG": "error"])
        #expect(wrongCA.status != .exited(0))
        #expect(wrongCA.stderr.contains("certificate verify failed"), "\(wrongCA.stderr)")

        let plaintext = try Self.run(harness, server: server.hostPort, ["XPU_LOG": "error"])
        #expect(plaintext.status != .exited(0))
        #expect(plaintext.stderr.contains("this server requires TLS"), "\(plaintext.stderr)")
        #expect(server.process.waitForLog(containing: "plaintext client refused", timeout: .seconds(5)))

        let again = try Self.run(harness, server: server.address, trusted)
        #expect(again.status == .exited(0), "the server keeps serving: \(again.stderr)")

        let expired = try SecureServer(harness: harness, ["--tls-cert", pki.path("expired.crt"), "--tls-key", pki.path("server.key")])
        let expiredRun = try Self.run(harness, server: expired.address, trusted.merging(["XPU_LOG": "error"]) { $1 })
        #expect(expiredRun.status != .exited(0))
        #expect(expiredRun.stderr.contains("certificate has expired"), "\(expiredRun.stderr)")
    }

    @Test("Mutual TLS: the client certificate identifies the tenant; a client without one is refused")
    func mutualTLS() throws {
        let harness = try Harness.get()
        let pki = try TransportCertificates.shared.get()
        let server = try SecureServer(
            harness: harness,
            [
                "--tls-cert", pki.path("server.crt"), "--tls-key", pki.path("server.key"), "--tls-client-ca", pki.path("ca.crt"),
                "--require-client-cert", "--policy", try Self.policy(),
            ], listen: "0.0.0.0:0")
        #expect(!server.process.stderr.text.contains("INSECURE"))
        let address = "tls://127.0.0.1:\(server.address.split(separator: ":").last!)"
        let withCertificate = ["XPU_TLS_CA": pki.path("ca.crt"), "XPU_TLS_CERT": pki.path("client.crt"), "XPU_TLS_KEY": pki.path("client.key")]

        let good = try Self.run(harness, server: address, withCertificate)
        #expect(good.status == .exited(0), "\(good.stderr)")
        #expect(server.process.waitForLog(containing: "tenant=cert-tenant", timeout: .seconds(5)), "\(server.process.stderr.text)")

        let tooMuch = try Self.run(harness, server: address, withCertificate.merging(["XPU_SLICE": "mem=1GiB", "XPU_LOG": "error"]) { $1 })
        #expect(tooMuch.status != .exited(0))
        #expect(tooMuch.stderr.contains("may not request"), "\(tooMuch.stderr)")

        let without = try Self.run(harness, server: address, ["XPU_TLS_CA": pki.path("ca.crt"), "XPU_LOG": "error"])
        #expect(without.status != .exited(0))
        #expect(without.stderr.contains("alert certificate required"), "\(without.stderr)")
        #expect(server.process.waitForLog(containing: "peer did not return a certificate", timeout: .seconds(5)), "\(server.process.stderr.text)")

        let stranger = try Self.run(
            harness, server: address,
            ["XPU_TLS_CA": pki.path("ca.crt"), "XPU_TLS_CERT": pki.path("stranger.crt"), "XPU_TLS_KEY": pki.path("stranger.key"), "XPU_LOG": "error"])
        #expect(stranger.status != .exited(0))

        let again = try Self.run(harness, server: address, withCertificate)
        #expect(again.status == .exited(0), "the server keeps serving: \(again.stderr)")
    }

    // MARK: - Unix socket

    @Test("A client on this node reaches the server through XPU_SERVER=unix:/path")
    func unixSocket() throws {
        let harness = try Harness.get()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-e2e-\(getpid()).sock").path
        let server = try SecureServer(harness: harness, [], listen: "unix:\(path)")
        #expect(server.address == "unix:\(path)")
        let output = try Self.run(harness, "memory", server: server.address)
        let direct = try harness.runDirect("memory")
        expectSameBehaviour("memory over unix socket", direct: direct, remote: output)
    }

    @Test("A shared-memory client killed between calls is noticed at once: the server's session, asleep on its rings, is released")
    func killedSharedMemoryClient() throws {
        let harness = try Harness.get()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-e2e-kill-\(getpid()).sock").path
        let server = try SecureServer(harness: harness, [], listen: "unix:\(path)")
        var environment = Harness.baseEnvironment()
        environment["XPU_SERVER"] = server.address
        // pool_hold holds memory and makes a call every 200 ms: between calls the server's
        // reader sleeps on the futex with no timeout, and only the client's socket can wake it.
        let holder = try ChildProcess(harness.runBinary, ["--", harness.program("pool_hold"), "16"], environment: environment)
        try #require(holder.waitForOutput(containing: "alive 1", timeout: .seconds(60)), "\(holder.stderr.text)")
        holder.signalGroup(SIGKILL)
        #expect(holder.wait(timeout: .seconds(30)) == .signaled(SIGKILL))
        #expect(
            server.process.waitForLog(containing: "session released", timeout: .seconds(10)),
            "the server must notice the killed client\n\(server.process.stderr.text)")
        let after = try Self.run(harness, "meminfo", server: server.address)
        #expect(after.status == .exited(0), "the server keeps serving: \(after.stderr)")
    }
}

/// The same throwaway PKI as the transport unit tests, made with `openssl` for this process.
struct TransportCertificates: Sendable {
    let directory: String
    func path(_ name: String) -> String { directory + "/" + name }

    static let shared: Result<TransportCertificates, E2EError> = Result { () throws(E2EError) in
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-e2e-tls-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            cd "$0"
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
            key ca.key; key other-ca.key; key server.key; key client.key; key stranger.key
            openssl req -x509 -new -key ca.key -out ca.crt -days 2 -subj /CN=xpu-test-ca
            openssl req -x509 -new -key other-ca.key -out other-ca.crt -days 2 -subj /CN=xpu-other-ca
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext
            openssl req -new -key server.key -out server.csr -subj /CN=localhost
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext 2>/dev/null
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out expired.crt -days -1 -extfile server.ext 2>/dev/null
            openssl req -new -key client.key -out client.csr -subj /CN=tenant-a
            openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 2>/dev/null
            openssl req -new -key stranger.key -out stranger.csr -subj /CN=stranger
            openssl x509 -req -in stranger.csr -CA other-ca.crt -CAkey other-ca.key -CAcreateserial -out stranger.crt -days 2 2>/dev/null
            """
        let result = try Harness.runTool("sh", ["-c", script, directory], timeout: .seconds(60))
        guard result.status == .exited(0) else { throw E2EError("openssl failed: \(result.stderr)") }
        return TransportCertificates(directory: directory)
    }
}
