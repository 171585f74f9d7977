import Foundation

/// Throwaway PKI made with the `openssl` command at test time: a CA, a server certificate for
/// localhost/127.0.0.1, a client certificate (CN "tenant-a"), an expired server certificate, and
/// a second, unrelated CA.
struct TestCertificates: Sendable {
    let directory: String
    var caCertificate: String { directory + "/ca.crt" }
    var otherCACertificate: String { directory + "/other-ca.crt" }
    var serverCertificate: String { directory + "/server.crt" }
    var serverKey: String { directory + "/server.key" }
    var expiredServerCertificate: String { directory + "/expired.crt" }
    var clientCertificate: String { directory + "/client.crt" }
    var clientKey: String { directory + "/client.key" }
    var strangerCertificate: String { directory + "/stranger.crt" }
    var strangerKey: String { directory + "/stranger.key" }

    static let shared: Result<TestCertificates, CertificateError> = Result { () throws(CertificateError) in
        try TestCertificates()
    }

    struct CertificateError: Error, CustomStringConvertible {
        var description: String
    }

    private init() throws(CertificateError) {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-tls-\(getpid())").path
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            cd "$1"
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
            key ca.key; key other-ca.key; key server.key; key client.key; key stranger.key
            openssl req -x509 -new -key ca.key -out ca.crt -days 2 -subj /CN=xpu-test-ca
            openssl req -x509 -new -key other-ca.key -out other-ca.crt -days 2 -subj /CN=xpu-other-ca
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            openssl req -new -key server.key -out server.csr -subj /CN=localhost
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext 2>/dev/null
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out expired.crt -days -1 -extfile server.ext 2>/dev/null
            openssl req -new -key client.key -out client.csr -subj /CN=tenant-a
            openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 -extfile client.ext 2>/dev/null
            openssl req -new -key stranger.key -out stranger.csr -subj /CN=stranger
            openssl x509 -req -in stranger.csr -CA other-ca.crt -CAkey other-ca.key -CAcreateserial -out stranger.crt -days 2 -extfile client.ext 2>/dev/null
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, "sh", directory]
        let errors = Pipe()
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw CertificateError(description: "cannot run sh: \(error)")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw CertificateError(description: "making test certificates with openssl failed: \(text)")
        }
    }
}
