/// A violation of the wire protocol: the peer sent something this side cannot accept.
///
/// The server answers any `ProtocolError` by closing that one session with the message logged;
/// other sessions are unaffected (see proto/PROTOCOL.md, "Errors").
public struct ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let truncated = Code(name: "truncated")
        public static let malformed = Code(name: "malformed")
        public static let tooLarge = Code(name: "too large")
        public static let unknownCall = Code(name: "unknown call")
        public static let badMagic = Code(name: "bad magic")
        public static let unsupportedVersion = Code(name: "unsupported version")
        public static let outOfSequence = Code(name: "out of sequence")
        public static let closed = Code(name: "connection closed")
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
