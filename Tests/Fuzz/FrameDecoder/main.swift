// libFuzzer target for the server's receive path: the input is a byte stream as a client could
// send it after the handshake. Frames are read with the server's own `FrameChannel` (header
// validation before any payload allocation), then every frame goes through the checks
// `Connection.serve` makes (no reply frames, known call id) and the generated request decoder of
// its call, which must consume the payload exactly (a launch is also read in place, as the server
// serves it, and both readers must agree). Any input must end in a clean error, within
// bounded time and memory; a decoded request must survive an encode/decode round trip unchanged.
//
// Built by scripts/fuzz-frames.sh in one module with Sources/XPUProtocol, FrameChannel.swift,
// Transport.swift and `RequestDecoders.swift`, which the script generates from
// Sources/XPUProtocol/Generated/Calls.swift so that every call id is covered as the API grows.

/// The fuzzer's input as a transport: receive hands out the bytes in order, then reports the end
/// of stream the way a socket does (`.closed` at a boundary, `.closedMidMessage` inside a read).
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
public func fuzzFrameDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let channel = FrameChannel(transport: ByteStreamTransport(UnsafeRawBufferPointer(start: data, count: size)))
    // The server closes a session at its first violation; so does this loop.
    while true {
        let header: FrameHeader
        let payload: [UInt8]
        do {
            (header, payload) = try channel.receive()
        } catch {
            return 0
        }
        precondition(Int(header.length) == payload.count && payload.count <= ProtocolLimits.maximumFrameBytes)
        precondition(FrameFlags.known.isSuperset(of: header.flags))
        guard !header.flags.contains(.reply), let call = CallID(rawValue: header.call), call != .handshake else {
            return 0
        }
        if call == .launchKernel { checkLaunchReadInPlace(payload) }
        var reader = WireReader(payload)
        do {
            guard try decodeRequestRoundTrip(call, &reader) else { return 0 }
            try reader.expectEnd()
        } catch {
            return 0
        }
    }
}

/// The server reads launch frames in place (`LaunchKernelFrame`): it must accept exactly the
/// payloads the generated decoder accepts, with the same fields.
func checkLaunchReadInPlace(_ payload: [UInt8]) {
    var reader = WireReader(payload)
    let decoded = try? { () throws(ProtocolError) -> LaunchKernelRequest in
        let request = try LaunchKernelRequest(from: &reader)
        try reader.expectEnd()
        return request
    }()
    let inPlace = payload.withUnsafeBytes { raw in
        (try? LaunchKernelFrame(decoding: raw)).map { frame in
            LaunchKernelRequest(
                function: frame.function, gridX: frame.grid.0, gridY: frame.grid.1, gridZ: frame.grid.2, blockX: frame.block.0,
                blockY: frame.block.1, blockZ: frame.block.2, sharedMemBytes: frame.sharedMemBytes, stream: frame.stream,
                parameters: Array(frame.parameters))
        }
    }
    precondition(decoded == inPlace, "the in-place launch reader disagrees with the generated decoder")
}
