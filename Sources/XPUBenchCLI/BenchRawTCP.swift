import Foundation
import XPUProtocol
import XPUTransport

#if canImport(Glibc)
import Glibc
#endif

/// The raw TCP baseline: a peer thread in this process on loopback, or a peer in another process
/// (`xpu-bench echo-peer`, on this host or the server's), with the same socket options as
/// xpu-remote's transport (it is `XPUTransport`'s `Listener` and `SocketTransport`: TCP_NODELAY,
/// 4 MiB socket buffers) and plain blocking reads. It does nothing but move bytes, so it is the
/// floor for what a frame of the same size can cost over this network stack.
///
/// Each exchange: the client sends a 24-byte header (u64 bytes that follow from the client, u64
/// bytes to send back, u64 zero) and those bytes; the peer reads them all, then writes the asked
/// number of bytes back. The header plays the part of the frame header, so a call whose request
/// frame is 24 bytes and whose reply frame is 40 is mirrored by `exchange(request: 24, reply: 40)`.
final class RawTCPBaseline: @unchecked Sendable {
    static let headerBytes = 24
    private let client: SocketTransport
    private var scratch: UnsafeMutableRawBufferPointer
    /// The kernel's id of the peer thread, when it is a thread of this process.
    private(set) var peerThread: pid_t?

    /// With a peer thread in this process, on loopback.
    init() throws {
        let listener = try Listener(binding: Endpoint(host: "127.0.0.1", port: 0))
        let endpoint = listener.endpoint
        let accepted = ManagedAccept()
        let peerID = PeerThreadID()
        let peer = Thread {
            peerID.value = currentThreadID()
            do {
                let connection = try listener.accept()
                accepted.signal()
                try RawTCPBaseline.serve(connection)
            } catch {
                accepted.signal()
            }
        }
        peer.start()
        client = try SocketTransport.connect(to: endpoint)
        accepted.wait()
        peerThread = peerID.value
        scratch = .allocate(byteCount: 4 << 20, alignment: 64)
    }

    /// With a peer in another process (`xpu-bench echo-peer`) at `endpoint`.
    init(peer endpoint: Endpoint) throws {
        client = try SocketTransport.connect(to: endpoint)
        scratch = .allocate(byteCount: 4 << 20, alignment: 64)
    }

    deinit {
        client.shutdown()
        scratch.deallocate()
    }

    /// One request of `request` bytes (at least the 24-byte header) and its reply of `reply` bytes;
    /// the request's bytes after the header come from `data` when given (bulk uploads), and reply
    /// bytes land in `into` when given (bulk downloads), else in a scratch buffer.
    func exchange(
        request: Int, reply: Int, data: UnsafeRawBufferPointer? = nil, into: UnsafeMutableRawBufferPointer? = nil
    ) throws {
        precondition(request >= Self.headerBytes)
        let upload = request - Self.headerBytes
        var header: (UInt64, UInt64, UInt64) = (UInt64(upload).littleEndian, UInt64(reply).littleEndian, 0)
        try withUnsafeBytes(of: &header) { try client.send($0) }
        if upload > 0 {
            if let data {
                try client.send(UnsafeRawBufferPointer(rebasing: data[0..<upload]))
            } else {
                try RawTCPBaseline.sendFill(upload, from: UnsafeRawBufferPointer(scratch), over: client)
            }
        }
        if let into, into.count >= reply {
            try client.receive(into: UnsafeMutableRawBufferPointer(rebasing: into[0..<reply]))
        } else {
            try RawTCPBaseline.drain(reply, into: scratch, from: client)
        }
    }

    /// The peer stands for the server and takes, for each direction, the faster of two buffer
    /// sizes (so the baseline is the stronger one): it receives into a buffer as large as the
    /// transfer, as the server receives into device memory (draining into a 4 MiB one is slower
    /// at 16-256 MiB), and sends from a 4 MiB buffer that stays in cache (sending from a
    /// full-size one is slower at 128-256 MiB).
    static func serve(_ connection: SocketTransport) throws {
        let cached = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
        cached.initializeMemory(as: UInt8.self, repeating: 0)
        var memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
        memory.initializeMemory(as: UInt8.self, repeating: 0)
        defer {
            memory.deallocate()
            cached.deallocate()
        }
        var header: (UInt64, UInt64, UInt64) = (0, 0, 0)
        while true {
            do {
                try withUnsafeMutableBytes(of: &header) { try connection.receive(into: $0) }
            } catch {
                return  // the client closed: the run is over
            }
            let (upload, reply) = (Int(UInt64(littleEndian: header.0)), Int(UInt64(littleEndian: header.1)))
            if upload > memory.count {
                memory.deallocate()
                memory = .allocate(byteCount: upload, alignment: 4096)
                memory.initializeMemory(as: UInt8.self, repeating: 0)
            }
            try drain(upload, into: memory, from: connection)
            try sendFill(reply, from: UnsafeRawBufferPointer(cached), over: connection)
        }
    }

    /// Bytes per send or receive call: the shim's copy chunk, so both sides make as many calls.
    static let step = ProtocolLimits.copyChunkBytes

    /// Receives `count` bytes into `buffer` from its start, one step at a time (wrapping around
    /// when `count` is larger than the buffer).
    private static func drain(_ count: Int, into buffer: UnsafeMutableRawBufferPointer, from transport: SocketTransport) throws {
        var (left, at) = (count, 0)
        while left > 0 {
            if at == buffer.count { at = 0 }
            let piece = min(left, step, buffer.count - at)
            try transport.receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[at..<(at + piece)]))
            (left, at) = (left - piece, at + piece)
        }
    }

    /// Sends `count` bytes from `buffer`, as `drain` receives them.
    private static func sendFill(_ count: Int, from buffer: UnsafeRawBufferPointer, over transport: SocketTransport) throws {
        var (left, at) = (count, 0)
        while left > 0 {
            if at == buffer.count { at = 0 }
            let piece = min(left, step, buffer.count - at)
            try transport.send(UnsafeRawBufferPointer(rebasing: buffer[at..<(at + piece)]))
            (left, at) = (left - piece, at + piece)
        }
    }
}

/// The peer thread's id, written by it before it signals `ManagedAccept` (which orders the two).
private final class PeerThreadID: @unchecked Sendable {
    var value: pid_t?
}

/// A one-shot signal from the peer thread once it has accepted the connection.
private final class ManagedAccept: @unchecked Sendable {
    private var semaphore = sem_t()
    init() { sem_init(&semaphore, 0, 0) }
    deinit { sem_destroy(&semaphore) }
    func signal() { sem_post(&semaphore) }
    func wait() { while sem_wait(&semaphore) != 0 && errno == EINTR {} }
}
