/// Bulk requests whose data the sender does not copy: the frame is this prefix followed by the
/// data, sent from the caller's memory as a second buffer. The bytes are exactly what encoding a
/// `MemcpyHtoDRequest` with that data would give (the golden vectors check it).
extension MemcpyHtoDRequest {
    /// With `rawCount` (flags then include `.compressed`), `dataCount` bytes of LZ4 data follow
    /// that inflate to `rawCount` bytes; the u32 `rawCount` sits before the blob's own count.
    public static func framePrefix(
        sequence: UInt32, flags: FrameFlags, context: UInt64, destination: UInt64, remainingBytes: UInt64, stream: UInt64,
        asynchronous: Bool, dataCount: Int, rawCount: Int? = nil
    ) -> [UInt8] {
        var writer = WireWriter(capacity: FrameHeader.size + 32)
        let fields = 8 + 8 + 8 + 1 + 4 + (rawCount == nil ? 0 : 4)
        FrameHeader(
            length: UInt32(fields + dataCount), call: CallID.memcpyHtoD.rawValue, flags: flags, sequence: sequence,
            context: context
        ).encode(into: &writer)
        writer.write(destination)
        writer.write(remainingBytes)
        writer.write(stream)
        writer.write(UInt8(asynchronous ? 1 : 0))
        if let rawCount { writer.write(UInt32(rawCount)) }
        writer.write(UInt32(dataCount))
        return writer.bytes
    }
}
