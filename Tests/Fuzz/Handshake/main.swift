// libFuzzer target for the handshake as the server sees it: the first frame on a connection is
// read with the server's `FrameChannel`, must be call 0, and its payload decodes as a `Hello`
// (magic, version, strings within limits, nothing trailing). The requested slice is then parsed
// as the authenticator does (`SliceRequest`), and the same bytes are decoded as the `Welcome`
// the client reads. Any input must end in a clean error; whatever decodes must round-trip.
//
// Built by scripts/fuzz-handshake.sh in one module with Sources/XPUProtocol, the framing of
// Sources/XPUTransport and Sources/XPUAdmission/SliceRequest.swift.

final class ByteStreamTransport: Transport, @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func send(_ bytes: UnsafeRawBufferPointer) throws(TransportError) {}

    /// One byte per read, the hardest case for a reader that buffers.
    func receiveSome(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        guard buffer.count > 0 else { return 0 }
        guard position < bytes.count else { throw TransportError(.closed, "end of input") }
        buffer[0] = bytes[position]
        position += 1
        return 1
    }

    func shutdown() {}
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHandshake(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    let channel = FrameChannel(transport: ByteStreamTransport(raw))
    if let (header, payload) = try? channel.receive(), header.call == CallID.handshake.rawValue {
        if let hello = try? Hello(decoding: payload) {
            precondition(hello.magic == ProtocolLimits.magic && hello.version == ProtocolLimits.version)
            precondition(hello.slice.utf8.count <= ProtocolLimits.maximumStringBytes * 3)
            precondition((try? Hello(decoding: hello.encoded)) == hello, "Hello does not round-trip")
            if let slice = try? SliceRequest(parsing: hello.slice) {
                if let percent = slice.computePercent { precondition(percent > 0 && percent <= 100) }
                if let device = slice.device { precondition(device >= 0) }
            }
        }
        if let welcome = try? Welcome(decoding: payload) {
            precondition((try? Welcome(decoding: welcome.encoded)) == welcome, "Welcome does not round-trip")
        }
    }
    // The slice parser on arbitrary text as well, not only what survives the Hello decoder.
    _ = try? SliceRequest(parsing: String(decoding: raw, as: UTF8.self))
    return 0
}
