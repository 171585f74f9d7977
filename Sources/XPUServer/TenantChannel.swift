import Synchronization
import XPUProtocol
import XPUTransport

/// One end of the control channel between the server and a tenant process: whole
/// `TenantMessage`s over a Unix socket pair. Several threads may send; one thread receives.
final class TenantChannel: Sendable {
    let socket: SocketTransport
    private let sending = Mutex(())

    init(socket: SocketTransport) {
        self.socket = socket
    }

    func send(_ message: TenantMessage) throws(TransportError) {
        let bytes = message.framed
        let result: Result<Void, TransportError> = sending.withLock { _ in
            bytes.withUnsafeBytes { raw in Result { () throws(TransportError) in try socket.send(raw) } }
        }
        try result.get()
    }

    /// The next message; nil when the peer is gone (or sent something that is not a message,
    /// which only a broken peer does: the channel is over either way).
    func receive() -> TenantMessage? {
        var length: UInt32 = 0
        do {
            try withUnsafeMutableBytes(of: &length) { buffer throws(TransportError) in try socket.receive(into: buffer) }
            let count = Int(UInt32(littleEndian: length))
            guard count > 0, count <= TenantMessage.maximumBytes else { return nil }
            var body = [UInt8](repeating: 0, count: count)
            let received: Result<Void, TransportError> = body.withUnsafeMutableBytes { buffer in
                Result { () throws(TransportError) in try socket.receive(into: buffer) }
            }
            try received.get()
            return try? TenantMessage(decoding: body)
        } catch {
            return nil
        }
    }
}
