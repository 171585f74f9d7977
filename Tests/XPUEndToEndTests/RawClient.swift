import Foundation
import XPUProtocol
import XPUTransport

/// A client that speaks the protocol's frames itself, to send what the shim never would:
/// malformed frames, another session's pointers and handles, a connection dropped mid-frame.
final class RawClient {
    let channel: FrameChannel
    let transport: SocketTransport
    var sequence: UInt32 = 0
    /// The context every request names in its header (the shim sends the calling thread's).
    var context: UInt64 = 0

    convenience init(_ address: String) throws {
        self.init(transport: try SocketTransport.connect(to: Endpoint(parsing: address)!))
    }

    init(transport: SocketTransport) {
        self.transport = transport
        channel = FrameChannel(transport: transport)
    }

    func handshake(_ hello: Hello = Hello(clientCUDAVersion: 13000, client: "raw test client")) throws -> (FrameHeader, Welcome) {
        try channel.send(FrameHeader(length: 0, call: 0, sequence: 0), payload: hello.encoded)
        let (header, payload) = try channel.receive()
        return (header, try Welcome(decoding: payload))
    }

    /// Opens a session as the shim does: handshake (asking for `slice`), cuInit, and the primary
    /// context of device 0, which later requests then name. Returns the session id.
    @discardableResult
    func openSession(slice: String = "", features: Features = .fireAndForget) throws -> UInt64 {
        let hello = Hello(features: features.rawValue, clientCUDAVersion: 13000, slice: slice, client: "raw test client")
        let (header, welcome) = try handshake(hello)
        guard header.status == 0 else { throw E2EError("session refused (status \(header.status)): \(welcome.reason)") }
        _ = try reply(InitializeRequest(flags: 0))
        context = try reply(PrimaryCtxRetainRequest(device: 0)).context
        return welcome.session
    }

    /// Sends a request and waits for its reply: the status, and the decoded reply on success.
    func call<R: CallRequest>(_ request: R) throws -> (UInt32, R.Reply?) {
        sequence += 1
        try channel.send(
            FrameHeader(length: 0, call: R.call.rawValue, sequence: sequence, context: context), payload: request.encoded)
        let (header, payload) = try channel.receive()
        return (header.status, header.status == 0 ? try R.Reply(decoding: payload) : nil)
    }

    /// The reply of a call that must succeed.
    func reply<R: CallRequest>(_ request: R) throws -> R.Reply {
        let (status, reply) = try call(request)
        guard status == 0, let reply else { throw E2EError("\(R.call) failed with status \(status)") }
        return reply
    }

    /// Sends a request fire-and-forget: no reply; its error comes back with the next reply.
    func post<R: CallRequest>(_ request: R) throws {
        sequence += 1
        try channel.send(
            FrameHeader(length: 0, call: R.call.rawValue, flags: .noReply, sequence: sequence, context: context),
            payload: request.encoded)
    }

    func sendRaw(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try transport.send($0) }
    }

    /// True once the server has closed the connection (reads end of stream).
    func isClosedByServer() -> Bool {
        var byte: UInt8 = 0
        do {
            try withUnsafeMutableBytes(of: &byte) { try transport.receive(into: $0) }
            return false
        } catch {
            return true
        }
    }

    /// The device's free memory as a fresh session without a slice sees it (cuMemGetInfo).
    static func freeDeviceMemory(at address: String) throws -> UInt64 {
        let client = try RawClient(address)
        try client.openSession()
        return try client.reply(CuMemGetInfo_v2Request()).free
    }
}
