import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCertificateReloading
import NIOCore
import NIOFoundationCompat
import NIOSSL
import XPUKube

/// The mutating admission webhook (the fallback for clusters without DRA): `POST /mutate` takes an
/// AdmissionReview v1 and answers it with `PodInjection`'s patch; `GET /healthz` answers 200.
/// HTTPS only. The certificate and key are files (a mounted Secret) read again every
/// `reloadInterval`: a renewed certificate is served from the next handshake on, without a
/// restart (swift-nio-extras' TimedCertificateReloader; a file that fails to load keeps the last
/// good pair).
public enum AdmissionWebhook {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var certificateFile: String
        public var keyFile: String
        public var reloadInterval: Duration
        public var injection: PodInjection

        public init(host: String, port: Int, certificateFile: String, keyFile: String, reloadInterval: Duration = .seconds(30), injection: PodInjection) {
            self.host = host
            self.port = port
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.reloadInterval = reloadInterval
            self.injection = injection
        }
    }

    /// The webhook's routes.
    public static func router(_ injection: PodInjection) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("healthz") { _, _ in "ok" }
        router.post("mutate") { request, context -> Response in
            let body = try await request.body.collect(upTo: 4 << 20)
            let review: AdmissionReview
            do {
                review = try JSONDecoder().decode(AdmissionReview.self, from: Data(buffer: body))
            } catch {
                throw HTTPError(.badRequest, message: "not an AdmissionReview: \(error)")
            }
            let answer = injection.review(review)
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let data = try encoder.encode(answer)
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        return router
    }

    /// The reloader and the application serving HTTPS with it; run both (a ServiceGroup).
    /// `onServerRunning` hears of the listening channel (its local address has the port).
    public static func make(
        _ settings: Settings, logger: Logger, onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> (TimedCertificateReloader, some ApplicationProtocol) {
        let reloader = try TimedCertificateReloader.makeReloaderValidatingSources(
            refreshInterval: settings.reloadInterval,
            certificateSource: .init(location: .file(path: settings.certificateFile), format: .pem),
            privateKeySource: .init(location: .file(path: settings.keyFile), format: .pem),
            logger: logger)
        let tls = try TLSConfiguration.makeServerConfiguration(certificateReloader: reloader)
        let application = Application(
            router: router(settings.injection),
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "xpu-kube-webhook"),
            onServerRunning: onServerRunning, logger: logger)
        return (reloader, application)
    }
}
