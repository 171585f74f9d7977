/// The launch frame the shim queues for every `cuLaunchKernel`, written straight into its send
/// buffer: the buffer grows once by the frame's size, the fields are stored into it, and the
/// parameter block is filled in place from the application's argument pointers, so queueing a
/// launch allocates nothing once the buffer has grown (bench/codec locks that). The bytes are
/// exactly those of an encoded `LaunchKernelRequest` (a test checks it).
extension LaunchKernelRequest {
    @inlinable
    public static func appendFrame(
        to writer: inout WireWriter, flags: FrameFlags, sequence: UInt32, context: UInt64, function: UInt64,
        grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32), sharedMemBytes: UInt32, stream: UInt64,
        parameterBytes: Int, fillParameters: (UnsafeMutableRawBufferPointer) -> Void
    ) {
        let payload = LaunchKernelFrame.fixedBytes + parameterBytes
        writer.append(count: FrameHeader.size + payload) { frame in
            FrameHeader(length: UInt32(payload), call: CallID.launchKernel.rawValue, flags: flags, sequence: sequence, context: context)
                .store(into: frame)
            let fields = frame.baseAddress! + FrameHeader.size
            fields.storeBytes(of: function.littleEndian, toByteOffset: 0, as: UInt64.self)
            fields.storeBytes(of: grid.0.littleEndian, toByteOffset: 8, as: UInt32.self)
            fields.storeBytes(of: grid.1.littleEndian, toByteOffset: 12, as: UInt32.self)
            fields.storeBytes(of: grid.2.littleEndian, toByteOffset: 16, as: UInt32.self)
            fields.storeBytes(of: block.0.littleEndian, toByteOffset: 20, as: UInt32.self)
            fields.storeBytes(of: block.1.littleEndian, toByteOffset: 24, as: UInt32.self)
            fields.storeBytes(of: block.2.littleEndian, toByteOffset: 28, as: UInt32.self)
            fields.storeBytes(of: sharedMemBytes.littleEndian, toByteOffset: 32, as: UInt32.self)
            fields.storeBytes(of: stream.littleEndian, toByteOffset: 36, as: UInt64.self)
            fields.storeBytes(of: UInt32(parameterBytes).littleEndian, toByteOffset: 44, as: UInt32.self)
            fillParameters(UnsafeMutableRawBufferPointer(start: fields + LaunchKernelFrame.fixedBytes, count: parameterBytes))
        }
    }
}

extension Array where Element == KernelParameter {
    /// Bytes of the packed parameter block these parameters lay out (the end of the last one).
    public var blockBytes: Int { reduce(0) { Swift.max($0, Int($1.offset) + Int($1.size)) } }
}

/// A received launch frame read where it lies in the receive buffer: the fixed fields decoded, the
/// parameter block left in place (the server hands the driver pointers into it), so serving a
/// launch copies and allocates nothing. It accepts exactly the payloads that
/// `LaunchKernelRequest(from:)` followed by `expectEnd()` accepts (a test checks both agree).
public struct LaunchKernelFrame {
    public var function: UInt64
    public var grid: (UInt32, UInt32, UInt32)
    public var block: (UInt32, UInt32, UInt32)
    public var sharedMemBytes: UInt32
    public var stream: UInt64
    /// Valid only as long as the payload it was decoded from.
    public var parameters: UnsafeRawBufferPointer

    /// Function, grid, block, shared bytes, stream and the parameter block's length.
    public static let fixedBytes = 8 + 7 * 4 + 8 + 4

    public init(decoding payload: UnsafeRawBufferPointer) throws(ProtocolError) {
        guard payload.count >= Self.fixedBytes else {
            throw ProtocolError(.truncated, "launch frame of \(payload.count) bytes, need \(Self.fixedBytes)")
        }
        func u32(_ offset: Int) -> UInt32 { UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        func u64(_ offset: Int) -> UInt64 { UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        function = u64(0)
        grid = (u32(8), u32(12), u32(16))
        block = (u32(20), u32(24), u32(28))
        sharedMemBytes = u32(32)
        stream = u64(36)
        let count = Int(u32(44))
        guard count <= ProtocolLimits.maximumBulkBytes else {
            throw ProtocolError(.tooLarge, "blob of \(count) bytes exceeds \(ProtocolLimits.maximumBulkBytes)")
        }
        let rest = payload.count - Self.fixedBytes
        guard rest >= count else { throw ProtocolError(.truncated, "need \(count) bytes at offset \(Self.fixedBytes), have \(rest)") }
        guard rest == count else { throw ProtocolError(.malformed, "\(rest - count) unexpected trailing bytes") }
        parameters = UnsafeRawBufferPointer(rebasing: payload[Self.fixedBytes...])
    }
}
