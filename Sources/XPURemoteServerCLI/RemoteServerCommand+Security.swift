import Logging
import XPUAdmission
import XPUServer
import XPUTransport

extension RemoteServerCommand {
    struct SecurityError: Error, CustomStringConvertible {
        var description: String
    }

    /// TLS, the policy and the safe-default check, from the command line (proto/SECURITY.md).
    func securitySettings(unixPath: String?, rdma: Bool = false, endpoint: Endpoint, logger: Logger) throws -> ServerSecurity {
        if rdma {
            return try rdmaSecuritySettings(endpoint: endpoint, logger: logger)
        }
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

    /// RDMA: TLS does not apply (the traffic is not encrypted), so the TLS options are refused; a
    /// listener other machines can reach needs --policy, or --insecure.
    func rdmaSecuritySettings(endpoint: Endpoint, logger: Logger) throws -> ServerSecurity {
        if tlsCert != nil || tlsKey != nil || tlsClientCa != nil || requireClientCert {
            throw SecurityError(
                description:
                    "TLS does not apply to rdma:// (RDMA traffic is not encrypted): drop the --tls-* options, or listen on TCP with TLS")
        }
        if let refusal = ServerSecurity.rdmaExposureRefusal(listeningOn: endpoint, authentication: policy != nil) {
            guard insecure else { throw SecurityError(description: refusal) }
            logger.critical(
                "INSECURE: --insecure given; serving rdma://\(endpoint) without authentication. Anyone who can reach this address can use the device and other tenants' memory."
            )
        } else if !endpoint.isLoopback {
            logger.warning(
                "rdma://\(endpoint): RDMA traffic is not encrypted (no TLS over RDMA); tokens and data cross the fabric in the clear")
        }
        var security = ServerSecurity(rdmaEndpoint: endpoint)
        if let policy {
            let loaded = try AccessPolicy(contentsOfFile: policy)
            security.authenticator = Authenticator(policy: loaded)
            logger.info("authentication on", metadata: ["policy": "\(policy)", "tenants": "\(loaded.tenants.count)"])
        }
        return security
    }
}
