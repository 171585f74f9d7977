import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import XPUKube

/// The few Kubernetes API calls the driver makes, over HTTPS with the pod's service account
/// (in-cluster) or an explicit server, token and CA (tests, out-of-cluster). Each call is one
/// request; errors say which object and what the server answered.
public final class KubeAPIClient: Sendable {
    public struct Configuration: Sendable {
        /// `https://host:port` (or `http://` for a test server).
        public var server: String
        /// The bearer token's file, read at every request (service account tokens rotate).
        public var tokenFile: String?
        /// The API server's CA; nil: the system's trust store.
        public var certificateAuthorityFile: String?

        public init(server: String, tokenFile: String? = nil, certificateAuthorityFile: String? = nil) {
            self.server = server
            self.tokenFile = tokenFile
            self.certificateAuthorityFile = certificateAuthorityFile
        }

        /// The pod's own: `KUBERNETES_SERVICE_HOST`/`_PORT` and the service account's token and CA.
        public static func inCluster() throws(KubeError) -> Configuration {
            let environment = ProcessInfo.processInfo.environment
            guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
                throw KubeError(.io, "not in a cluster (KUBERNETES_SERVICE_HOST unset): give --kube-api")
            }
            let account = "/var/run/secrets/kubernetes.io/serviceaccount"
            let bracketed = host.contains(":") ? "[\(host)]" : host
            return Configuration(server: "https://\(bracketed):\(port)", tokenFile: account + "/token", certificateAuthorityFile: account + "/ca.crt")
        }
    }

    let configuration: Configuration
    let client: HTTPClient

    public init(_ configuration: Configuration) throws {
        self.configuration = configuration
        var tls = TLSConfiguration.makeClientConfiguration()
        if let file = configuration.certificateAuthorityFile {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    public func shutdown() async throws { try await client.shutdown() }

    /// A ResourceClaim by namespace and name.
    public func claim(namespace: String, name: String) async throws(KubeError) -> ResourceClaim {
        let (status, body) = try await call(.GET, "/apis/resource.k8s.io/v1/namespaces/\(namespace)/resourceclaims/\(name)")
        guard status == 200 else { throw KubeError(.badAnswer, "reading claim \(namespace)/\(name): HTTP \(status) \(Self.message(body))") }
        return try decode(ResourceClaim.self, body, "claim \(namespace)/\(name)")
    }

    /// A Secret's data by key, nil when there is no such Secret.
    public func secret(namespace: String, name: String) async throws(KubeError) -> [String: Data]? {
        let (status, body) = try await call(.GET, "/api/v1/namespaces/\(namespace)/secrets/\(name)")
        if status == 404 { return nil }
        guard status == 200 else { throw KubeError(.badAnswer, "reading secret \(namespace)/\(name): HTTP \(status) \(Self.message(body))") }
        struct Secret: Decodable { var data: [String: String]? }
        let secret = try decode(Secret.self, body, "secret \(namespace)/\(name)")
        return (secret.data ?? [:]).compactMapValues { Data(base64Encoded: $0) }
    }

    /// The ResourceSlices of one driver.
    public func resourceSlices(driver: String) async throws(KubeError) -> [ResourceSliceObject] {
        try await resourceSliceList(driver: driver).items
    }

    /// The ResourceSlices of one driver and the list's `resourceVersion`, where a watch of them
    /// starts.
    public func resourceSliceList(driver: String) async throws(KubeError) -> (items: [ResourceSliceObject], resourceVersion: String?) {
        let (status, body) = try await call(.GET, "/apis/resource.k8s.io/v1/resourceslices?fieldSelector=\(Self.driverSelector(driver))")
        guard status == 200 else { throw KubeError(.badAnswer, "listing ResourceSlices: HTTP \(status) \(Self.message(body))") }
        struct List: Decodable {
            struct Metadata: Decodable { var resourceVersion: String? }
            var metadata: Metadata?
            var items: [ResourceSliceObject]?
        }
        let list = try decode(List.self, body, "ResourceSlice list")
        return (list.items ?? [], list.metadata?.resourceVersion)
    }

    /// Watches one driver's ResourceSlices from `resourceVersion` (the API's watch: one JSON event
    /// a line) and calls `changed` for each change; returns the last version seen when the API
    /// server ends the watch (at `timeoutSeconds`), from which the next watch goes on. Bookmarks
    /// move the version without a call. Throws `.expired` when the version is too old to
    /// watch from (HTTP 410, or an ERROR event with code 410): list again.
    public func watchResourceSlices(
        driver: String, from resourceVersion: String, timeoutSeconds: Int, changed: () async -> Void
    ) async throws(KubeError) -> String {
        let path =
            "/apis/resource.k8s.io/v1/resourceslices?fieldSelector=\(Self.driverSelector(driver))&watch=true"
            + "&allowWatchBookmarks=true&timeoutSeconds=\(timeoutSeconds)&resourceVersion=\(resourceVersion)"
        var request = try makeRequest(.GET, path)
        request.headers.replaceOrAdd(name: "Accept", value: "application/json")
        var version = resourceVersion
        struct Event: Decodable {
            struct Object: Decodable {
                struct Metadata: Decodable { var resourceVersion: String? }
                var metadata: Metadata?
                var code: Int?
                var message: String?
            }
            var type: String
            var object: Object?
        }
        do {
            // The API server ends the watch at timeoutSeconds; the deadline is a backstop.
            let response = try await client.execute(request, timeout: .seconds(Int64(timeoutSeconds) + 30))
            guard response.status == .ok else {
                let body = try await response.body.collect(upTo: 1 << 20)
                let code = response.status.code
                throw KubeError(code == 410 ? .expired : .badAnswer, "watching ResourceSlices: HTTP \(code) \(Self.message(Data(body.readableBytesView)))")
            }
            var pending = Data()
            for try await chunk in response.body {
                pending.append(contentsOf: chunk.readableBytesView)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<newline]
                    pending = Data(pending[pending.index(after: newline)...])
                    guard !line.isEmpty else { continue }
                    let event = try decode(Event.self, Data(line), "ResourceSlice watch event")
                    if event.type == "ERROR" {
                        let code = event.object?.code ?? 0
                        throw KubeError(code == 410 ? .expired : .badAnswer, "watching ResourceSlices: \(code) \(event.object?.message ?? "")")
                    }
                    if let next = event.object?.metadata?.resourceVersion { version = next }
                    if event.type != "BOOKMARK" { await changed() }
                }
            }
        } catch let error as KubeError {
            throw error
        } catch {
            throw KubeError(.io, "watching ResourceSlices: \(error)")
        }
        return version
    }

    static func driverSelector(_ driver: String) -> String {
        "spec.driver=\(driver)".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
    }

    /// Creates the slice, or replaces it when `resourceVersion` (of the one there) is given.
    public func write(_ slice: ResourceSliceObject) async throws(KubeError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let body = (try? encoder.encode(slice)) ?? Data()
        let name = slice.metadata.name
        let replacing = slice.metadata.resourceVersion != nil
        let (status, answer) =
            replacing
            ? try await call(.PUT, "/apis/resource.k8s.io/v1/resourceslices/\(name)", body: body)
            : try await call(.POST, "/apis/resource.k8s.io/v1/resourceslices", body: body)
        guard (200..<300).contains(status) else {
            throw KubeError(.badAnswer, "\(replacing ? "replacing" : "creating") ResourceSlice \(name): HTTP \(status) \(Self.message(answer))")
        }
    }

    public func deleteResourceSlice(_ name: String) async throws(KubeError) {
        let (status, body) = try await call(.DELETE, "/apis/resource.k8s.io/v1/resourceslices/\(name)")
        guard (200..<300).contains(status) || status == 404 else {
            throw KubeError(.badAnswer, "deleting ResourceSlice \(name): HTTP \(status) \(Self.message(body))")
        }
    }

    func call(_ method: HTTPMethod, _ path: String, body: Data? = nil) async throws(KubeError) -> (UInt, Data) {
        var request = try makeRequest(method, path)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await client.execute(request, timeout: .seconds(15))
            let buffer = try await response.body.collect(upTo: 32 << 20)
            return (response.status.code, Data(buffer.readableBytesView))
        } catch {
            throw KubeError(.io, "\(method) \(path): \(error)")
        }
    }

    /// A request to the API server with the bearer token, read anew (service account tokens rotate).
    func makeRequest(_ method: HTTPMethod, _ path: String) throws(KubeError) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: configuration.server + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if let tokenFile = configuration.tokenFile {
            guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw KubeError(.io, "cannot read the API token \(tokenFile)")
            }
            request.headers.add(name: "Authorization", value: "Bearer \(token.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return request
    }

    func decode<T: Decodable>(_ type: T.Type, _ body: Data, _ what: String) throws(KubeError) -> T {
        do {
            return try JSONDecoder().decode(type, from: body)
        } catch {
            throw KubeError(.badAnswer, "\(what): \(error)")
        }
    }

    /// The `message` of a Kubernetes Status answer, for errors.
    static func message(_ body: Data) -> String {
        struct Status: Decodable { var message: String? }
        return (try? JSONDecoder().decode(Status.self, from: body))?.message ?? String(decoding: body.prefix(200), as: UTF8.self)
    }
}
