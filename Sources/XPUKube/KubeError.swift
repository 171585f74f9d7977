/// A request the Kubernetes integration refuses: a bad annotation, a claim it cannot serve, an
/// object it cannot read. The message says what was wrong and is what the kubelet, the pod's
/// events or the admission response show.
public struct KubeError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A pod annotation or a claim asks for a slice we cannot parse or do not offer.
        public static let badSlice = Code(name: "bad slice")
        /// A claim's allocation or configuration is not one this driver can prepare.
        public static let badClaim = Code(name: "bad claim")
        /// The Kubernetes API server or the pool directory answered something unusable.
        public static let badAnswer = Code(name: "bad answer")
        /// A watch's resource version is too old for the API server to go on from: list again.
        public static let expired = Code(name: "expired")
        /// A file or socket of the node could not be written or read.
        public static let io = Code(name: "io")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
