import Foundation
import XPUProtocol
import XPUTransport

/// A session of xpu-bench's own with the server, for the protocol's round trip: `Ping` frames,
/// which the server answers without the driver. It crosses the same transport as the shim (the
/// same `XPU_SERVER`, TLS settings and busy-poll setting) and the server's frame loop, and nothing
/// of the shim: the floor of a synchronous call on this path.
final class ProtocolPing: @unchecked Sendable {
    private let channel: FrameChannel
    private var sequence: UInt32 = 0

    init(server: String, busyPoll: BusyPoll.Settings) throws {
        guard let address = ServerAddress(parsing: server) else { throw BenchError("not a server address: \(server)") }
        let transport = try address.connect(tls: ClientTLSSettings { ProcessInfo.processInfo.environment[$0] })
        transport.setBusyPoll(busyPoll)
        channel = FrameChannel(transport: transport)
        let hello = Hello(
            clientCUDAVersion: 13000, client: "xpu-bench ping pid \(getpid())",
            token: ProcessInfo.processInfo.environment["XPU_TOKEN"] ?? "")
        try channel.send(FrameHeader(length: 0, call: CallID.handshake.rawValue, sequence: 0), payload: hello.encoded)
        let (header, payload) = try channel.receive()
        guard header.status == 0 else {
            let reason = (try? Welcome(decoding: payload))?.reason ?? "no reason given"
            throw BenchError("the server refused xpu-bench's ping session: \(reason)")
        }
    }

    deinit { channel.transport.shutdown() }

    /// One `Ping` and its reply.
    func ping() throws {
        sequence &+= 1
        try channel.send(FrameHeader(length: 0, call: CallID.ping.rawValue, sequence: sequence), payload: [])
        let (header, _) = try channel.receive()
        guard header.flags.contains(.reply), header.sequence == sequence, header.status == 0 else {
            throw BenchError("ping \(sequence): reply \(header.sequence) with status \(header.status)")
        }
    }
}
