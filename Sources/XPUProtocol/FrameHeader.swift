/// The fixed 24-byte header in front of every frame (proto/PROTOCOL.md, "Framing").
///
/// ```
/// offset size field
///      0    4 length    payload bytes that follow the header
///      4    2 call      CallID of the request this frame carries or answers
///      6    2 flags     FrameFlags
///      8    4 sequence  request number; a reply repeats it
///     12    4 status    CUresult of the call (replies), 0 in requests
///     16    8 context   requests: the calling thread's current context (session handle), 0 for none
/// ```
public struct FrameHeader: Hashable, Sendable {
    public static let size = 24

    public var length: UInt32
    public var call: UInt16
    public var flags: FrameFlags
    public var sequence: UInt32
    public var status: UInt32
    public var context: UInt64

    public init(
        length: UInt32, call: UInt16, flags: FrameFlags = [], sequence: UInt32, status: UInt32 = 0, context: UInt64 = 0
    ) {
        self.length = length
        self.call = call
        self.flags = flags
        self.sequence = sequence
        self.status = status
        self.context = context
    }
}

/// Bits of the header's flags field.
public struct FrameFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    // Inlinable constants: a `static let` is a global read through a once-checked accessor on
    // every use, and the launch path uses one per launch.

    /// The frame answers a request.
    @inlinable public static var reply: FrameFlags { FrameFlags(rawValue: 1 << 0) }
    /// Fire-and-forget: the sender awaits no reply; a failure is latched by the server and
    /// returned by the session's next call that does get a reply.
    @inlinable public static var noReply: FrameFlags { FrameFlags(rawValue: 1 << 1) }

    /// The frame's bulk data is LZ4-compressed: the blob is preceded by a u32 with its size
    /// before compression. Used only when both peers offered `Features.lz4` in the handshake.
    @inlinable public static var compressed: FrameFlags { FrameFlags(rawValue: 1 << 2) }

    /// Flags this version defines; any other bit set is a malformed frame.
    @inlinable public static var known: FrameFlags { [.reply, .noReply, .compressed] }
}

extension FrameHeader {
    public func encode(into writer: inout WireWriter) {
        writer.write(length)
        writer.write(call)
        writer.write(flags.rawValue)
        writer.write(sequence)
        writer.write(status)
        writer.write(context)
    }

    /// The same bytes as `encode(into:)`, stored into the first `size` bytes of `bytes`.
    @inlinable
    public func store(into bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= Self.size)
        bytes.storeBytes(of: length.littleEndian, toByteOffset: 0, as: UInt32.self)
        bytes.storeBytes(of: call.littleEndian, toByteOffset: 4, as: UInt16.self)
        bytes.storeBytes(of: flags.rawValue.littleEndian, toByteOffset: 6, as: UInt16.self)
        bytes.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt32.self)
        bytes.storeBytes(of: status.littleEndian, toByteOffset: 12, as: UInt32.self)
        bytes.storeBytes(of: context.littleEndian, toByteOffset: 16, as: UInt64.self)
    }

    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: Self.size)
        encode(into: &writer)
        return writer.bytes
    }

    /// Decodes and validates a header: unknown flags or an oversized length fail here, before the
    /// receiver allocates room for the payload.
    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count >= Self.size else {
            throw ProtocolError(.truncated, "frame header of \(bytes.count) bytes, need \(Self.size)")
        }
        try self.init(decodingRaw: bytes.withUnsafeBytes { UnsafeRawBufferPointer($0) })
    }

    /// The same from raw memory (the receiver's buffer), with no intermediate array.
    public init(decodingRaw bytes: UnsafeRawBufferPointer) throws(ProtocolError) {
        guard bytes.count >= Self.size else {
            throw ProtocolError(.truncated, "frame header of \(bytes.count) bytes, need \(Self.size)")
        }
        length = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        call = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        flags = FrameFlags(rawValue: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self)))
        sequence = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        status = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        context = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        guard FrameFlags.known.isSuperset(of: flags) else {
            throw ProtocolError(.malformed, "unknown flag bits 0x\(String(flags.rawValue, radix: 16))")
        }
        guard Int(length) <= ProtocolLimits.maximumFrameBytes else {
            throw ProtocolError(.tooLarge, "frame of \(length) bytes exceeds \(ProtocolLimits.maximumFrameBytes)")
        }
    }
}

extension WireWriter {
    /// Appends a whole frame: the header with its length filled in, then the payload the body
    /// writes. Frames queue back to back in one buffer and leave in one send.
    @inlinable
    public mutating func appendFrame(_ header: FrameHeader, payload body: (inout WireWriter) -> Void) {
        let start = storage.count
        header.encode(into: &self)
        body(&self)
        let length = UInt32(storage.count - start - FrameHeader.size)
        withUnsafeBytes(of: length.littleEndian) { bytes in
            for index in 0..<4 { storage[start + index] = bytes[index] }
        }
    }

    /// Forgets the bytes written, keeping the capacity (the buffer is reused for the next batch).
    @inlinable
    public mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
    }

    @inlinable
    public var count: Int { storage.count }
}
