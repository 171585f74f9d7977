/// Appends little-endian values to a growing byte buffer.
///
/// The writer is the only way the codec produces bytes, so every integer on the wire is
/// little-endian by construction, whatever the host's byte order.
public struct WireWriter: Sendable {
    @usableFromInline var storage: [UInt8]

    /// The bytes written so far.
    public var bytes: [UInt8] { storage }

    @inlinable
    public init(capacity: Int = 64) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    @inlinable
    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { storage.append(contentsOf: $0) }
    }

    @inlinable
    public mutating func write(_ value: Float) { write(value.bitPattern) }

    /// A length-prefixed (u32) UTF-8 string.
    public mutating func write(_ value: String) {
        var copy = value
        copy.withUTF8 { utf8 in
            write(UInt32(utf8.count))
            storage.append(contentsOf: utf8)
        }
    }

    /// A length-prefixed (u32) byte blob.
    @inlinable
    public mutating func write(bytes blob: some Collection<UInt8>) {
        write(UInt32(blob.count))
        storage.append(contentsOf: blob)
    }

    /// A length-prefixed (u32) byte blob copied from raw memory.
    @inlinable
    public mutating func write(raw: UnsafeRawBufferPointer) {
        write(UInt32(raw.count))
        storage.append(contentsOf: raw)
    }

    /// Raw bytes with no length prefix (fixed-size fields such as a UUID).
    @inlinable
    public mutating func writeFixed(_ blob: some Collection<UInt8>) {
        storage.append(contentsOf: blob)
    }
}

extension WireWriter {
    /// Appends `count` zero bytes and lets `body` fill them in place (a block written from the
    /// caller's memory with no intermediate array).
    @inlinable
    public mutating func append(count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        let start = storage.count
        // Zeros copied from memory are a memcpy; `repeatElement` would be appended element by
        // element, on every launch's frame.
        if count <= WireWriter.zeros.count {
            storage.append(contentsOf: UnsafeRawBufferPointer(rebasing: WireWriter.zeros[..<count]))
        } else {
            storage.append(contentsOf: repeatElement(0, count: count))
        }
        storage.withUnsafeMutableBytes { bytes in
            body(UnsafeMutableRawBufferPointer(rebasing: bytes[start..<start + count]))
        }
    }
}

extension WireWriter {
    /// Zero bytes to extend the buffer with before a frame is written in place: room for any
    /// launch frame (its header, fixed fields and the largest parameter block).
    /// Never written after it is made, so any thread may read it.
    @usableFromInline
    nonisolated(unsafe) static let zeros = UnsafeRawBufferPointer(
        UnsafeMutableRawBufferPointer.allocate(byteCount: (32 << 10) + 256, alignment: 16)
            .initializeMemory(as: UInt8.self, repeating: 0))
}
