import XPUProtocol

/// Frames over a transport: a 24-byte header, then `length` payload bytes.
///
/// Not synchronized: each side gives a channel to one user at a time (the shim's lane lock, the
/// server's session thread).
public final class FrameChannel: @unchecked Sendable {
    public let transport: any Transport

    public init(transport: any Transport) {
        self.transport = transport
    }

    public func send(_ header: FrameHeader, payload: [UInt8]) throws(TransportError) {
        var header = header
        header.length = UInt32(payload.count)
        var writer = WireWriter(capacity: FrameHeader.size + payload.count)
        header.encode(into: &writer)
        writer.writeFixed(payload)
        let bytes = writer.bytes
        try Self.send(bytes, over: transport)
    }

    /// The next frame. A header that fails validation throws `ProtocolError` before any payload
    /// is read or allocated.
    public func receive() throws(FrameError) -> (FrameHeader, [UInt8]) {
        var headerBytes = [UInt8](repeating: 0, count: FrameHeader.size)
        do {
            try Self.fill(&headerBytes, from: transport)
        } catch {
            guard error.code == .closedMidMessage else { throw .transport(error) }
            throw .protocolViolation(ProtocolError(.truncated, "frame header cut short: \(error.message)"))
        }
        let header: FrameHeader
        do {
            header = try FrameHeader(decoding: headerBytes)
        } catch {
            throw .protocolViolation(error)
        }
        var payload = [UInt8](repeating: 0, count: Int(header.length))
        do {
            try Self.fill(&payload, from: transport)
        } catch {
            guard error.code == .closed || error.code == .closedMidMessage else { throw .transport(error) }
            throw .protocolViolation(ProtocolError(.truncated, "frame of \(header.length) bytes cut short: \(error.message)"))
        }
        return (header, payload)
    }

    static func send(_ bytes: [UInt8], over transport: any Transport) throws(TransportError) {
        let result: Result<Void, TransportError> = bytes.withUnsafeBytes { raw in
            Result { () throws(TransportError) in try transport.send(raw) }
        }
        try result.get()
    }

    static func fill(_ bytes: inout [UInt8], from transport: any Transport) throws(TransportError) {
        guard !bytes.isEmpty else { return }
        let result: Result<Void, TransportError> = bytes.withUnsafeMutableBytes { raw in
            Result { () throws(TransportError) in try transport.receive(into: raw) }
        }
        try result.get()
    }
}

/// Why a frame could not be received.
public enum FrameError: Error, Hashable, Sendable, CustomStringConvertible {
    case transport(TransportError)
    case protocolViolation(ProtocolError)

    public var description: String {
        switch self {
        case .transport(let error): "\(error)"
        case .protocolViolation(let error): "\(error)"
        }
    }
}

extension FrameChannel {
    /// Sends bytes that already hold whole encoded frames (a batch queued by the shim).
    public func sendRaw(_ bytes: [UInt8]) throws(TransportError) {
        try Self.send(bytes, over: transport)
    }
}

extension FrameChannel {
    /// Sends a frame whose payload is `payload` followed by `bulk`, read straight from memory the
    /// caller owns (copy data, a device-to-host reply) with no intermediate copy.
    public func send(_ header: FrameHeader, payload: [UInt8], bulk: UnsafeRawBufferPointer) throws(TransportError) {
        var header = header
        header.length = UInt32(payload.count + bulk.count)
        let prefix = header.encoded + payload
        let result: Result<Void, TransportError> = prefix.withUnsafeBytes { prefix in
            Result { () throws(TransportError) in try transport.send(parts: [prefix, bulk]) }
        }
        try result.get()
    }

    /// Reads just a frame's header; the caller then reads exactly `length` payload bytes with
    /// `receivePayload(into:)` (to land bulk data where it belongs without a copy).
    public func receiveHeader() throws(FrameError) -> FrameHeader {
        var headerBytes = [UInt8](repeating: 0, count: FrameHeader.size)
        do {
            try Self.fill(&headerBytes, from: transport)
        } catch {
            guard error.code == .closedMidMessage else { throw .transport(error) }
            throw .protocolViolation(ProtocolError(.truncated, "frame header cut short: \(error.message)"))
        }
        do {
            return try FrameHeader(decoding: headerBytes)
        } catch {
            throw .protocolViolation(error)
        }
    }

    public func receivePayload(into buffer: UnsafeMutableRawBufferPointer) throws(FrameError) {
        guard buffer.count > 0 else { return }
        do {
            try transport.receive(into: buffer)
        } catch {
            guard error.code == .closed || error.code == .closedMidMessage else { throw .transport(error) }
            throw .protocolViolation(ProtocolError(.truncated, "payload cut short: \(error.message)"))
        }
    }
}
