import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import NIOCore
import NIOFoundationCompat
import Synchronization
import XPUKube

/// A Kubernetes API server for the tests, in process (Hummingbird on loopback): the few paths
/// the driver calls, over objects the test puts in. It checks the bearer token, answers 404 for
/// what it does not hold, and versions ResourceSlices as the real one does (a replace must name
/// the version it replaces: 409 otherwise; a create of a name that exists: 409; the list carries
/// the version a watch starts from). A watch (`watch=true`) streams one JSON event a line: the
/// changes after its `resourceVersion`, then each change as it is made, until the server stops
/// (it does not end watches at `timeoutSeconds`).
final class FakeAPIServer: Sendable {
    struct State {
        var claims: [String: String] = [:]  // "ns/name" -> JSON
        var secrets: [String: [String: String]] = [:]  // "ns/name" -> data (base64)
        var slices: [String: ResourceSliceObject] = [:]
        var version = 1
        var requests: [String] = []
        /// Every ResourceSlice change, for watches that start in the past.
        var events: [(version: Int, driver: String, line: ByteBuffer)] = []
        var watches: [Int: (driver: String, stream: AsyncStream<ByteBuffer>.Continuation)] = [:]
        var nextWatch = 0
        /// Tests waiting for the slices to satisfy a condition.
        var waiters: [(condition: @Sendable ([String: ResourceSliceObject]) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []

        /// Records a change of `slice` (its version already set), sends it to the watches and
        /// wakes the waiters it satisfies.
        mutating func changed(_ type: String, _ slice: ResourceSliceObject) {
            struct Event: Encodable {
                var type: String
                var object: ResourceSliceObject
            }
            var line = ByteBuffer(data: (try? JSONEncoder().encode(Event(type: type, object: slice))) ?? Data())
            line.writeString("\n")
            events.append((version, slice.spec.driver, line))
            for watch in watches.values where watch.driver == slice.spec.driver { watch.stream.yield(line) }
            let current = slices
            waiters.removeAll { waiter in
                guard waiter.condition(current) else { return false }
                waiter.continuation.resume()
                return true
            }
        }
    }

    let state = Mutex(State())
    static let token = "fake-api-token"

    func putClaim(namespace: String, name: String, json: String) { state.withLock { $0.claims["\(namespace)/\(name)"] = json } }
    func putSecret(namespace: String, name: String, data: [String: String]) {
        state.withLock { $0.secrets["\(namespace)/\(name)"] = data.mapValues { Data($0.utf8).base64EncodedString() } }
    }
    var slices: [String: ResourceSliceObject] { state.withLock { $0.slices } }
    var requests: [String] { state.withLock { $0.requests } }

    /// Returns once the published slices satisfy `condition` (at once if they do now).
    func waitForSlices(_ condition: @escaping @Sendable ([String: ResourceSliceObject]) -> Bool) async {
        await withCheckedContinuation { continuation in
            state.withLock { state in
                if condition(state.slices) {
                    continuation.resume()
                } else {
                    state.waiters.append((condition, continuation))
                }
            }
        }
    }

    /// Deletes a slice as someone else would (kubectl delete): the watches see it.
    func deleteSlice(_ name: String) {
        state.withLock { state in
            guard var slice = state.slices.removeValue(forKey: name) else { return }
            state.version += 1
            slice.metadata.resourceVersion = "\(state.version)"
            state.changed("DELETED", slice)
        }
    }

    /// Ends every watch (the server is stopping).
    func endWatches() {
        let streams = state.withLock { state in
            defer { state.watches = [:] }
            return state.watches.values.map(\.stream)
        }
        for stream in streams { stream.finish() }
    }

    /// A watch's event stream: the changes after `version`, then each new one.
    func watch(driver: String, after version: Int) -> AsyncStream<ByteBuffer> {
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        let id = state.withLock { state in
            for event in state.events where event.version > version && event.driver == driver { continuation.yield(event.line) }
            state.nextWatch += 1
            state.watches[state.nextWatch] = (driver, continuation)
            return state.nextWatch
        }
        continuation.onTermination = { _ in self.state.withLock { _ = $0.watches.removeValue(forKey: id) } }
        return stream
    }

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
            let query = request.uri.queryParameters
            let selector = query.get("fieldSelector") ?? ""
            if query.get("watch") == "true" {
                guard selector.hasPrefix("spec.driver="), let version = query.get("resourceVersion").flatMap({ Int($0) }) else {
                    return Self.status(400, "this fake watches one driver from a resourceVersion")
                }
                let events = self.watch(driver: String(selector.dropFirst("spec.driver=".count)), after: version)
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(asyncSequence: events))
            }
            let (all, version) = self.state.withLock { (Array($0.slices.values), $0.version) }
            let items = all.filter { selector.isEmpty || "spec.driver=\($0.spec.driver)" == selector }
            struct List: Encodable {
                var metadata: [String: String]
                var items: [ResourceSliceObject]
            }
            let list = List(metadata: ["resourceVersion": "\(version)"], items: items.sorted { $0.metadata.name < $1.metadata.name })
            return Self.json(try JSONEncoder().encode(list))
        }
        router.post("/apis/resource.k8s.io/v1/resourceslices") { request, _ -> Response in
            var slice = try JSONDecoder().decode(ResourceSliceObject.self, from: Data(buffer: try await request.body.collect(upTo: 1 << 20)))
            return self.state.withLock { state in
                guard state.slices[slice.metadata.name] == nil else { return Self.status(409, "already exists") }
                state.version += 1
                slice.metadata.resourceVersion = "\(state.version)"
                state.slices[slice.metadata.name] = slice
                state.changed("ADDED", slice)
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
                state.changed("MODIFIED", slice)
                return Self.status(200, "replaced")
            }
        }
        router.delete("/apis/resource.k8s.io/v1/resourceslices/:name") { _, context -> Response in
            let name = context.parameters.get("name")!
            return self.state.withLock { state in
                guard var slice = state.slices.removeValue(forKey: name) else { return Self.status(404, "not found") }
                state.version += 1
                slice.metadata.resourceVersion = "\(state.version)"
                state.changed("DELETED", slice)
                return Self.status(200, "deleted")
            }
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
    /// The server then ends its watches and shuts down gracefully (it stops accepting before it
    /// lets go of its connections: cancelling it instead can drop a connection accepted at that
    /// moment, which NIO traps on), and is gone when this returns.
    func serve<T: Sendable>(_ body: (String) async throws -> T) async throws -> T {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: Logger(label: "fake-api", factory: { _ in SwiftLogNoOpLogHandler() }))
        let group = ServiceGroup(
            configuration: .init(services: [application], logger: Logger(label: "fake-api", factory: { _ in SwiftLogNoOpLogHandler() })))
        let task = Task { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw KubeError(.io, "fake API server did not start")
        }
        let result: Result<T, any Error>
        do {
            result = .success(try await body("http://127.0.0.1:\(port)"))
        } catch {
            result = .failure(error)
        }
        endWatches()
        await group.triggerGracefulShutdown()
        try await task.value
        return try result.get()
    }
}
