import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import XPUTransport

/// Serves `GET /metrics` for Prometheus (`--metrics HOST:PORT`): HTTP/1.1 from swift-nio, in the
/// clear or, with `--metrics-tls-cert` and `--metrics-tls-key`, over TLS from swift-nio-ssl.
///
/// A scrape is one small request every few seconds, so one event-loop thread serves them all; a
/// connection idle for `idleTimeout` is closed, so a client that stalls cannot hold it open.
public final class MetricsEndpoint: Service, Sendable {
    let group: MultiThreadedEventLoopGroup
    let listener: any Channel
    /// The bound address (the real port when 0 was asked for).
    public let endpoint: Endpoint
    /// Whether scrapes must use TLS (`https://`).
    public let usesTLS: Bool
    static let idleTimeout = TimeAmount.seconds(5)

    /// Where the endpoint's certificate chain and private key are (PEM files).
    public struct TLSFiles: Sendable {
        public var certificateFile: String
        public var keyFile: String

        public init(certificateFile: String, keyFile: String) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// Binds `endpoint` now, so that a bad address or unreadable TLS files fail before the server
    /// starts. With `bearerToken`, a scrape must carry `Authorization: Bearer <token>`.
    public init(
        binding endpoint: Endpoint, metrics: ServerMetrics, bearerToken: String? = nil, tls: TLSFiles? = nil, logger: Logger
    ) throws(TransportError) {
        let context: NIOSSLContext?
        if let tls {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(tls.certificateFile).map { NIOSSLCertificateSource.certificate($0) }
                let key = try NIOSSLPrivateKey(file: tls.keyFile, format: .pem)
                context = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
            } catch {
                throw TransportError(.io, "metrics TLS (\(tls.certificateFile), \(tls.keyFile)): \(error)")
            }
        } else {
            context = nil
        }
        let responder = MetricsResponder(metrics: metrics, bearerToken: bearerToken.map { Array($0.utf8) })
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let context { try pipeline.addHandler(NIOSSLServerHandler(context: context)) }
                    try pipeline.addHandler(IdleStateHandler(allTimeout: Self.idleTimeout))
                    try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                    try pipeline.addHandler(MetricsHTTPHandler(responder: responder))
                }
            }
        do {
            listener = try bootstrap.bind(host: endpoint.host, port: Int(endpoint.port)).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw TransportError(.badAddress, "cannot serve metrics on \(endpoint): \(error)")
        }
        self.group = group
        self.endpoint = Endpoint(host: endpoint.host, port: UInt16(listener.localAddress?.port ?? Int(endpoint.port)))
        usesTLS = context != nil
        logger.debug("metrics endpoint bound", metadata: ["url": "\(url)"])
    }

    /// The address as a scraper writes it.
    public var url: String { "\(usesTLS ? "https" : "http")://\(endpoint)/metrics" }

    public func run() async throws {
        try? await gracefulShutdown()
        try? await listener.close()
        try? await group.shutdownGracefully()
    }
}

/// What a request is answered with: pure, so that every path is tested without a socket.
struct MetricsResponder: Sendable {
    let metrics: ServerMetrics
    let bearerToken: [UInt8]?

    struct Response {
        var status: HTTPResponseStatus
        var headers: [(String, String)] = []
        var body: [UInt8]
        /// The length a HEAD response announces (that of the body it leaves out).
        var contentLength: Int
    }

    func respond(method: HTTPMethod, uri: String, authorization: [String]) -> Response {
        let path = uri.prefix { $0 != "?" }
        guard path == "/metrics" else { return Self.text(.notFound, "only /metrics is served here\n") }
        if let bearerToken, !Self.carries(bearerToken, in: authorization) {
            var response = Self.text(.unauthorized, "a bearer token is required\n")
            response.headers.append(("WWW-Authenticate", "Bearer realm=\"xpu-remote metrics\""))
            return response
        }
        guard method == .GET || method == .HEAD else {
            var response = Self.text(.methodNotAllowed, "use GET\n")
            response.headers.append(("Allow", "GET, HEAD"))
            return response
        }
        let body = metrics.render()
        return Response(
            status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
            body: method == .HEAD ? [] : body, contentLength: body.count)
    }

    /// Whether one of the request's `Authorization` values is `Bearer <token>` (the scheme in any
    /// case). The token is compared in time that does not depend on where it first differs.
    static func carries(_ token: [UInt8], in values: [String]) -> Bool {
        var matched = false
        for value in values {
            let value = value.trimmingSpaces
            guard value.count > 7, value.prefix(7).lowercased() == "bearer " else { continue }
            let given = Array(value.dropFirst(7).trimmingSpaces.utf8)
            guard given.count == token.count else { continue }
            var difference: UInt8 = 0
            for (a, b) in zip(given, token) { difference |= a ^ b }
            if difference == 0 { matched = true }
        }
        return matched
    }

    private static func text(_ status: HTTPResponseStatus, _ message: String) -> Response {
        let body = Array(message.utf8)
        return Response(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: body, contentLength: body.count)
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: Substring {
        var result = Substring(self)
        while result.first == " " || result.first == "\t" { result = result.dropFirst() }
        while result.last == " " || result.last == "\t" { result = result.dropLast() }
        return result
    }
}

/// One HTTP/1.1 connection's requests, each answered by `MetricsResponder` once it has ended
/// (a body, if any, is read and ignored). Idle connections are closed.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let responder: MetricsResponder
    private var request: HTTPRequestHead?

    init(responder: MetricsResponder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            let response = responder.respond(method: head.method, uri: head.uri, authorization: head.headers["Authorization"])
            var headers = HTTPHeaders(response.headers)
            headers.add(name: "Content-Length", value: "\(response.contentLength)")
            let keepAlive = head.isKeepAlive
            headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
            if !response.body.isEmpty {
                var buffer = context.channel.allocator.buffer(capacity: response.body.count)
                buffer.writeBytes(response.body)
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            let ended = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let channel = context.channel
                ended.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
