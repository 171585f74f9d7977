import Logging
import XPUServer
import XPUTransport

extension RemoteServerCommand {
    struct SecurityError: Error, CustomStringConvertible {
        var description: String
    }

    /// TLS, the policy and the safe-default check, from the command line (proto/SECURITY.md).
    func securitySettings(unixPath: String?, endpoint: Endpoint, logger: Logger) throws -> ServerSecurity {
        if (tlsCert == nil) != (tlsKey == nil) { throw SecurityError(description: "--tls-cert and --tls-key go together") }
        if tlsCert == nil && (tlsClientCa != nil || requireClientCert) {
            throw SecurityError(description: "--tls-client-ca and --require-client-cert need --tls-cert and --tls-key")
        }
        if requireClientCert && tlsClientCa == nil {
            throw SecurityError(description: "--require-client-cert needs --tls-client-ca")
        }
        if let refusal = ServerSecurity.exposureRefusal(
            listeningOn: unixPath == nil ? endpoint : nil, tls: tlsCert != nil, authentication: policy != nil)
        {
            guard insecure else { throw SecurityError(description: refusal) }
            logger.critical(
                "INSECURE: --insecure given; serving \(endpoint) without \(tlsCert == nil ? "TLS" : "")\(tlsCert == nil && policy == nil ? " and " : "")\(policy == nil ? "authentication" : ""). Anyone who can reach this address can use the device and other tenants' memory."
            )
        }
        var security = ServerSecurity(unixSocketPath: unixPath)
        if let tlsCert, let tlsKey {
            security.tls = try TLSContext.server(
                certificateFile: tlsCert, keyFile: tlsKey, clientCAFile: tlsClientCa, requireClientCertificate: requireClientCert)
        }
        if let policy {
            let loaded = try AccessPolicy(contentsOfFile: policy)
            security.authenticator = Authenticator(policy: loaded)
            logger.info("authentication on", metadata: ["policy": "\(policy)", "tenants": "\(loaded.tenants.count)"])
        }
        return security
    }
}
