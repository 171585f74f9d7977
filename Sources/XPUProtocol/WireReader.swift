/// Reads little-endian values from a received payload, failing cleanly on truncation.
///
/// Every read is bounds-checked: a malformed or truncated frame becomes a `ProtocolError`, never
/// an out-of-bounds access.
public struct WireReader: Sendable {
    public let bytes: [UInt8]
    @usableFromInline var position: Int

    /// Bytes consumed so far.
    public var offset: Int { position }

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.position = offset
    }

    @inlinable
    public var remaining: Int { bytes.count - position }

    @inlinable
    public mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) throws(ProtocolError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw ProtocolError(.truncated, "need \(size) bytes at offset \(offset)") }
        var value = T.zero
        withUnsafeMutableBytes(of: &value) { destination in
            bytes.withUnsafeBytes { source in
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[position..<position + size]))
            }
        }
        position += size
        return T(littleEndian: value)
    }

    public mutating func read(_: Float.Type) throws(ProtocolError) -> Float {
        Float(bitPattern: try read(UInt32.self))
    }

    /// A length-prefixed byte blob, at most `limit` bytes long.
    public mutating func readBytes(limit: Int = ProtocolLimits.maximumBulkBytes) throws(ProtocolError) -> [UInt8] {
        let count = Int(try read(UInt32.self))
        guard count <= limit else { throw ProtocolError(.tooLarge, "blob of \(count) bytes exceeds \(limit)") }
        return try readFixed(count)
    }

    /// Exactly `count` raw bytes with no length prefix.
    public mutating func readFixed(_ count: Int) throws(ProtocolError) -> [UInt8] {
        guard count >= 0, remaining >= count else {
            throw ProtocolError(.truncated, "need \(count) bytes at offset \(offset), have \(remaining)")
        }
        defer { position += count }
        return Array(bytes[offset..<offset + count])
    }

    /// A length-prefixed UTF-8 string of at most `ProtocolLimits.maximumStringBytes`.
    public mutating func readString() throws(ProtocolError) -> String {
        let utf8 = try readBytes(limit: ProtocolLimits.maximumStringBytes)
        return String(decoding: utf8, as: UTF8.self)
    }

    /// Fails unless the whole payload was consumed: trailing garbage is a malformed frame.
    public func expectEnd() throws(ProtocolError) {
        guard remaining == 0 else { throw ProtocolError(.malformed, "\(remaining) unexpected trailing bytes") }
    }
}
