/// The server's notice that it ends a session on its own (proto/PROTOCOL.md, "The server ends a
/// session"): the one frame a server sends unasked. Its header has call `SessionEnd.call`,
/// the `reply` flag, sequence 0 and, in `status`, the CUresult the client's calls return from
/// then on; the payload says why. The server closes the connection after it.
///
/// The only cause is preemption by the pool (`xpu-pool --preempt`), with status
/// `CUDA_ERROR_DEVICE_UNAVAILABLE`: the same status a client sees when its server goes away, so
/// that a client that misses the notice (the connection broke first) sees the same thing.
public struct SessionEnd: Hashable, Sendable {
    /// The call id of the notice: outside the ranges of calls (API file) and pool calls (300s).
    public static let call: UInt16 = 0xFFFF

    public var reason: String

    public init(reason: String) { self.reason = reason }

    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: 8 + reason.utf8.count)
        writer.write(reason)
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(bytes)
        reason = try reader.readString()
        try reader.expectEnd()
    }
}
