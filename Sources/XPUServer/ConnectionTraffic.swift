import XPUProtocol
import XPUTransport

/// What crossed one session's connection, counted by the connection as it reads and writes
/// frames (a class, so that `BufferedLaunches` counts the frames it hands on in the same place).
final class ConnectionTraffic {
    var calls = 0
    var bytesReceived = 0
    var bytesSent = 0
    var compressedChunksReceived = 0
    var compressedChunksSent = 0
}

/// The fire-and-forget launch frames the connection has already received in full behind the one
/// being served: what a compute turn takes to run several launches in one turn
/// (Session+ComputeTurn.swift). The session reads them from here; it never reaches back into the
/// connection. Each frame is read where it lies in the receive buffer, valid until the connection
/// next receives.
struct BufferedLaunches {
    let channel: FrameChannel
    let traffic: ConnectionTraffic

    /// The next frame, consumed, if it is a fire-and-forget launch whose header names a context
    /// `accepts`; nil for anything else (another call, other flags or context, a launch that does
    /// not decode), which stays for the connection's serve loop to handle as usual.
    func next(accepting accepts: (_ context: UInt64) -> Bool) -> LaunchKernelFrame? {
        guard let (header, payload) = channel.bufferedFrame(), header.call == CallID.launchKernel.rawValue,
            header.flags == .noReply, accepts(header.context),
            let frame = try? LaunchKernelFrame(decoding: payload)
        else { return nil }
        channel.skip(header)
        traffic.calls += 1
        traffic.bytesReceived += FrameHeader.size + payload.count
        return frame
    }
}
