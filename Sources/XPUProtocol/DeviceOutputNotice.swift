/// What a session's kernels printed (device-side printf), sent by the server right before the
/// reply to the synchronizing call that flushed it (proto/PROTOCOL.md, "Device output"): a frame
/// the server sends unasked, with call `DeviceOutputNotice.call`, the `reply` flag, sequence 0 and
/// status 0. The client writes the bytes to its stdout and goes on reading for its reply. Sent
/// only in sessions that negotiated `Features.deviceOutput`.
public struct DeviceOutputNotice: Hashable, Sendable {
    /// The call id of the notice: beside `SessionEnd`'s, outside the ranges of calls (API file)
    /// and pool calls (300s).
    public static let call: UInt16 = 0xFFFE

    public var text: [UInt8]

    public init(text: [UInt8]) { self.text = text }

    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: 4 + text.count)
        writer.write(bytes: text)
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(bytes)
        text = try reader.readBytes()
        try reader.expectEnd()
    }
}
