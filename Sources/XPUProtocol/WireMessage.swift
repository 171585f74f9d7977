/// A value that travels as a frame's payload.
public protocol WireMessage: Sendable {
    func encode(into writer: inout WireWriter)
    init(from reader: inout WireReader) throws(ProtocolError)
}

/// A request to the server; its `Reply` is the payload of a successful answer.
public protocol CallRequest: WireMessage {
    associatedtype Reply: WireMessage
    static var call: CallID { get }
}

/// The empty payload of calls that return nothing but a status.
public struct EmptyReply: WireMessage, Hashable {
    public init() {}
    public func encode(into writer: inout WireWriter) {}
    public init(from reader: inout WireReader) throws(ProtocolError) {}
}

extension WireMessage {
    /// Encodes a whole message (the payload of one frame).
    public var encoded: [UInt8] {
        var writer = WireWriter()
        encode(into: &writer)
        return writer.bytes
    }

    /// Decodes a whole payload, rejecting trailing bytes.
    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(bytes)
        try self.init(from: &reader)
        try reader.expectEnd()
    }
}
