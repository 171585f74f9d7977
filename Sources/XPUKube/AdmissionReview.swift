/// `admission.k8s.io/v1` AdmissionReview, the parts a mutating webhook reads and writes.
public struct AdmissionReview: Hashable, Sendable, Codable {
    public var apiVersion: String
    public var kind: String
    public var request: Request?
    public var response: Response?

    public struct Request: Hashable, Sendable, Codable {
        public var uid: String
        public var namespace: String?
        public var operation: String?
        public var object: JSONValue?
        public init(uid: String, namespace: String? = nil, operation: String? = nil, object: JSONValue? = nil) {
            self.uid = uid
            self.namespace = namespace
            self.operation = operation
            self.object = object
        }
    }

    public struct Response: Hashable, Sendable, Codable {
        public var uid: String
        public var allowed: Bool
        public var patchType: String?
        /// The JSON patch, base64-encoded.
        public var patch: String?
        public var status: Status?
        public var warnings: [String]?
    }

    public struct Status: Hashable, Sendable, Codable {
        public var code: Int
        public var message: String
    }

    public static let apiVersion = "admission.k8s.io/v1"

    public init(request: Request) {
        apiVersion = Self.apiVersion
        kind = "AdmissionReview"
        self.request = request
    }

    public init(response: Response) {
        apiVersion = Self.apiVersion
        kind = "AdmissionReview"
        self.response = response
    }
}

/// One JSON patch operation (RFC 6902); the webhook only adds.
public struct JSONPatchOperation: Hashable, Sendable, Codable {
    public var op: String
    public var path: String
    public var value: JSONValue

    public static func add(_ path: String, _ value: JSONValue) -> Self { Self(op: "add", path: path, value: value) }

    /// A JSON pointer token: `~` and `/` escaped (RFC 6901).
    public static func escape(_ token: String) -> String {
        token.replacing("~", with: "~0").replacing("/", with: "~1")
    }
}
