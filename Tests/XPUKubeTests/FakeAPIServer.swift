import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat
import Synchronization
import XPUKube

/// A Kubernetes API server for the tests, in process (Hummingbird on loopback): the few paths
/// the driver calls, over objects the test puts in. It checks the bearer token, answers 404 for
/// what it does not hold, and versions ResourceSlices as the real one does (a replace must name
/// the version it replaces: 409 otherwise; a create of a name that exists: 409).
final class FakeAPIServer: Sendable {
    struct State {
        var claims: [String: String] = [:]  // "ns/name" -> JSON
        var secrets: [String: [String: String]] = [:]  // "ns/name" -> data (base64)
        var slices: [String: ResourceSliceObject] = [:]
        var version = 1
        var requests: [String] = []
    }

    let state = Mutex(State())
    static let token = "fake-api-token"

    func putClaim(namespace: String, name: String, json: String) { state.withLock { $0.claims["\(namespace)/\(name)"] = json } }
    func putSecret(namespace: String, name: String, data: [String: String]) {
        state.withLock { $0.secrets["\(namespace)/\(name)"] = data.mapValues { Data($0.utf8).base64EncodedString() } }
    }
    var slices: [String: ResourceSliceObject] { state.withLock { $0.slices } }
    var requests: [String] { state.withLock { $0.requests } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(AuthorizationCheck(server: self))
        router.get("/apis/resource.k8s.io/v1/namespaces/:namespace/resourceclaims/:name") { _, context -> Response in
            let key = "\(context.parameters.get("namespace")!)/\(context.parameters.get("name")!)"
            guard let json = self.state.withLock({ $0.claims[key] }) else { return Self.status(404, "resourceclaims \(key) not found") }
            return Self.json(Data(json.utf8))
        }
        router.get("/api/v1/namespaces/:namespace/secrets/:name") { _, context -> Response in
            let key = "\(context.parameters.get("namespace")!)/\(context.parameters.get("name")!)"
            guard let data = self.state.withLock({ $0.secrets[key] }) else { return Self.status(404, "secrets \(key) not found") }
            return Self.json(try JSONEncoder().encode(["data": data]))
        }
        router.get("/apis/resource.k8s.io/v1/resourceslices") { request, _ -> Response in
            let selector = request.uri.queryParameters.get("fieldSelector") ?? ""
            let items = self.state.withLock { Array($0.slices.values) }.filter { selector.isEmpty || "spec.driver=\($0.spec.driver)" == selector }
            struct List: Encodable { var items: [ResourceSliceObject] }
            return Self.json(try JSONEncoder().encode(List(items: items.sorted { $0.metadata.name < $1.metadata.name })))
        }
        router.post("/apis/resource.k8s.io/v1/resourceslices") { request, _ -> Response in
            var slice = try JSONDecoder().decode(ResourceSliceObject.self, from: Data(buffer: try await request.body.collect(upTo: 1 << 20)))
            return self.state.withLock { state in
                guard state.slices[slice.metadata.name] == nil else { return Self.status(409, "already exists") }
                state.version += 1
                slice.metadata.resourceVersion = "\(state.version)"
                state.slices[slice.metadata.name] = slice
                return Self.status(201, "created")
            }
        }
        router.put("/apis/resource.k8s.io/v1/resourceslices/:name") { request, context -> Response in
            var slice = try JSONDecoder().decode(ResourceSliceObject.self, from: Data(buffer: try await request.body.collect(upTo: 1 << 20)))
            let name = context.parameters.get("name")!
            return self.state.withLock { state in
                guard let old = state.slices[name], name == slice.metadata.name else { return Self.status(404, "not found") }
                guard old.metadata.resourceVersion == slice.metadata.resourceVersion else { return Self.status(409, "conflict") }
                state.version += 1
                slice.metadata.resourceVersion = "\(state.version)"
                state.slices[name] = slice
                return Self.status(200, "replaced")
            }
        }
        router.delete("/apis/resource.k8s.io/v1/resourceslices/:name") { _, context -> Response in
            let name = context.parameters.get("name")!
            return self.state.withLock { $0.slices.removeValue(forKey: name) } == nil ? Self.status(404, "not found") : Self.status(200, "deleted")
        }
        return router
    }

    struct AuthorizationCheck: RouterMiddleware {
        let server: FakeAPIServer
        func handle(_ request: Request, context: BasicRequestContext, next: (Request, BasicRequestContext) async throws -> Response) async throws -> Response {
            server.state.withLock { $0.requests.append("\(request.method) \(request.uri.path)") }
            guard request.headers[.authorization] == "Bearer \(FakeAPIServer.token)" else { return FakeAPIServer.status(401, "Unauthorized") }
            return try await next(request, context)
        }
    }

    static func json(_ data: Data) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func status(_ code: Int, _ message: String) -> Response {
        let body = #"{"kind":"Status","apiVersion":"v1","code":\#(code),"message":"\#(message)"}"#
        return Response(status: .init(code: code), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// Runs the server on a free loopback port for the body's duration; gives the body its URL.
    func serve<T: Sendable>(_ body: (String) async throws -> T) async throws -> T {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "fake-api", factory: { _ in SwiftLogNoOpLogHandler() }))
        let task = Task { try await application.runService() }
        defer { task.cancel() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw KubeError(.io, "fake API server did not start") }
        return try await body("http://127.0.0.1:\(port)")
    }
}
