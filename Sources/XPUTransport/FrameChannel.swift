import XPUProtocol

/// Frames over a transport: a 24-byte header, then `length` payload bytes.
///
/// Incoming bytes go through a buffer, so a batch of small frames that arrived together is taken
/// with one read; a large payload is read straight to its destination. Not synchronized: each
/// side gives a channel to one user at a time (the shim's lane lock, the server's session thread).
public final class FrameChannel: @unchecked Sendable {
    public let transport: any Transport
    @usableFromInline let input: UnsafeMutableRawBufferPointer
    /// Buffered bytes not consumed yet: input[start..<end].
    @usableFromInline var start = 0
    @usableFromInline var end = 0

    static let inputCapacity = 256 << 10
    /// Payload bytes from which a read goes straight to its destination, not through the buffer.
    public static let bulkThreshold = inputCapacity / 4

    public init(transport: any Transport) {
        self.transport = transport
        input = .allocate(byteCount: Self.inputCapacity, alignment: 16)
    }

    /// A channel whose first input is `buffered`, bytes another channel read from the same
    /// stream and did not consume (a session handed to a tenant process continues this way).
    public convenience init(transport: any Transport, buffered: [UInt8]) {
        self.init(transport: transport)
        let count = min(buffered.count, Self.inputCapacity)
        guard count > 0 else { return }
        buffered.withUnsafeBytes { input.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: count) }
        end = count
    }

    deinit {
        input.deallocate()
    }

    /// Bytes received and not consumed yet (read past the last frame taken).
    public var unconsumed: [UInt8] { Array(UnsafeRawBufferPointer(rebasing: input[start..<end])) }

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
        let header = try receiveHeader()
        return (header, try receivePayload(count: Int(header.length)))
    }

    /// The next `count` payload bytes (after `receiveHeader`), as an array.
    public func receivePayload(count: Int) throws(FrameError) -> [UInt8] {
        var outcome: Result<Void, FrameError> = .success(())
        // Uninitialized: the payload is written once, by the copy from the socket.
        let payload = [UInt8](unsafeUninitializedCapacity: count) { buffer, written in
            outcome = Result { () throws(FrameError) in try receivePayload(into: UnsafeMutableRawBufferPointer(buffer)) }
            written = (try? outcome.get()) != nil ? buffer.count : 0
        }
        try outcome.get()
        return payload
    }

    /// Hands `body` the next `count` payload bytes where they lie in the receive buffer (after
    /// `receiveHeader`), consumed: for small frames served without copying them out. The view is
    /// valid only inside `body`, which must not receive from this channel (`bufferedFrame` and
    /// `skip` are fine). Nil, with nothing read, when `count` exceeds the buffer.
    /// Inlinable, so that it is specialized for what `body` returns (a launch frame's hot path).
    @inlinable
    public func withPayloadInPlace<Result>(count: Int, _ body: (UnsafeRawBufferPointer) -> Result) throws(FrameError) -> Result? {
        guard count <= input.count else { return nil }
        do {
            try buffer(atLeast: count, midMessage: true)
        } catch {
            guard error.code == .closed || error.code == .closedMidMessage else { throw .transport(error) }
            throw .protocolViolation(ProtocolError(.truncated, "payload cut short: \(error.message)"))
        }
        let payload = UnsafeRawBufferPointer(rebasing: input[start..<start + count])
        start += count
        return body(payload)
    }

    /// The next frame when it is already entirely in the buffer (nil otherwise, or when its
    /// header is invalid: `receive` reports that). The payload view is valid until the next
    /// read; `skip(_:)` consumes the frame.
    public func bufferedFrame() -> (FrameHeader, UnsafeRawBufferPointer)? {
        guard end - start >= FrameHeader.size else { return nil }
        let headerBytes = UnsafeRawBufferPointer(rebasing: input[start..<start + FrameHeader.size])
        guard let header = try? FrameHeader(decodingRaw: headerBytes) else { return nil }
        let payloadStart = start + FrameHeader.size
        guard end - payloadStart >= Int(header.length) else { return nil }
        return (header, UnsafeRawBufferPointer(rebasing: input[payloadStart..<payloadStart + Int(header.length)]))
    }

    /// Consumes the frame `bufferedFrame()` returned.
    public func skip(_ header: FrameHeader) {
        start += FrameHeader.size + Int(header.length)
    }

    /// Reads just a frame's header; the caller then reads exactly `length` payload bytes with
    /// `receivePayload(into:)` (to land bulk data where it belongs without a copy).
    ///
    /// `readAhead: false` reads no byte past the header from the transport (bytes already buffered
    /// stay usable): for a frame known to carry bulk data, which then goes straight from the socket
    /// to its destination instead of partly through the buffer (up to its 256 KiB) and a copy.
    public func receiveHeader(readAhead: Bool = true) throws(FrameError) -> FrameHeader {
        do {
            try buffer(atLeast: FrameHeader.size, readAhead: readAhead)
        } catch {
            guard error.code == .closedMidMessage else { throw .transport(error) }
            throw .protocolViolation(ProtocolError(.truncated, "frame header cut short: \(error.message)"))
        }
        let bytes = UnsafeRawBufferPointer(rebasing: input[start..<start + FrameHeader.size])
        start += FrameHeader.size
        do {
            return try FrameHeader(decodingRaw: bytes)
        } catch {
            throw .protocolViolation(error)
        }
    }

    /// Fills `destination` with the next payload bytes: first from the buffer, the rest read
    /// directly into it (`readAhead: false`: a short rest is read exactly, not buffered beyond).
    public func receivePayload(into destination: UnsafeMutableRawBufferPointer, readAhead: Bool = true) throws(FrameError) {
        let buffered = min(end - start, destination.count)
        if buffered > 0 {
            destination.baseAddress!.copyMemory(from: input.baseAddress! + start, byteCount: buffered)
            start += buffered
        }
        guard buffered < destination.count else { return }
        let rest = UnsafeMutableRawBufferPointer(rebasing: destination[buffered...])
        do {
            if rest.count >= Self.bulkThreshold {
                try transport.receive(into: rest)
            } else {
                try buffer(atLeast: rest.count, midMessage: true, readAhead: readAhead)
                rest.baseAddress!.copyMemory(from: input.baseAddress! + start, byteCount: rest.count)
                start += rest.count
            }
        } catch {
            guard error.code == .closed || error.code == .closedMidMessage else { throw .transport(error) }
            throw .protocolViolation(ProtocolError(.truncated, "payload cut short: \(error.message)"))
        }
    }

    /// Reads until at least `count` bytes are buffered (count <= capacity); without `readAhead`,
    /// no more than that. A stream that ends before the first byte is a clean close, after it a
    /// message cut short.
    @usableFromInline
    func buffer(atLeast count: Int, midMessage: Bool = false, readAhead: Bool = true) throws(TransportError) {
        guard end - start < count else { return }
        if start > 0 {
            // Keep the unread bytes at the front so the rest of the buffer can fill.
            let unread = end - start
            if unread > 0 { input.baseAddress!.copyMemory(from: input.baseAddress! + start, byteCount: unread) }
            start = 0
            end = unread
        }
        while end < count {
            do {
                let limit = readAhead ? input.count : count
                let free = UnsafeMutableRawBufferPointer(rebasing: input[end..<limit])
                // Nothing of the next message here yet: the wait for it may busy-poll.
                end += try end == 0 && !midMessage ? transport.receiveMessageStart(into: free) : transport.receiveSome(into: free)
            } catch {
                guard error.code == .closed, end > 0 || midMessage else { throw error }
                throw TransportError(.closedMidMessage, "peer closed the connection after \(end) of \(count) bytes")
            }
        }
    }

    static func send(_ bytes: [UInt8], over transport: any Transport) throws(TransportError) {
        let result: Result<Void, TransportError> = bytes.withUnsafeBytes { raw in
            Result { () throws(TransportError) in try transport.send(raw) }
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
}
