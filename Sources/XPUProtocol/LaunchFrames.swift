/// The launch frame the shim queues for every `cuLaunchKernel`, written straight into its send
/// buffer: the parameter block is filled in place from the application's argument pointers, so
/// queueing a launch allocates nothing once the buffer has grown (bench/codec locks that). The
/// bytes are exactly those of an encoded `LaunchKernelRequest` (a test checks it).
extension LaunchKernelRequest {
    @inlinable
    public static func appendFrame(
        to writer: inout WireWriter, flags: FrameFlags, sequence: UInt32, context: UInt64, function: UInt64,
        grid: (UInt32, UInt32, UInt32), block: (UInt32, UInt32, UInt32), sharedMemBytes: UInt32, stream: UInt64,
        parameterBytes: Int, fillParameters: (UnsafeMutableRawBufferPointer) -> Void
    ) {
        writer.appendFrame(
            FrameHeader(length: 0, call: CallID.launchKernel.rawValue, flags: flags, sequence: sequence, context: context)
        ) { writer in
            writer.write(function)
            writer.write(grid.0)
            writer.write(grid.1)
            writer.write(grid.2)
            writer.write(block.0)
            writer.write(block.1)
            writer.write(block.2)
            writer.write(sharedMemBytes)
            writer.write(stream)
            writer.write(UInt32(parameterBytes))
            writer.append(count: parameterBytes, fillParameters)
        }
    }
}
