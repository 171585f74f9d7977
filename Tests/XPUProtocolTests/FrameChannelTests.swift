import Foundation
import Synchronization
import Testing
import XPUProtocol
import XPUTransport

/// Frames survive any fragmentation of the byte stream: the receiver is fed one byte at a time.
@Suite("Frame channel")
struct FrameChannelTests {
    /// A transport whose every read yields at most one byte of the one below it: the most
    /// fragmented stream a reader can meet.
    final class OneByteAtATime: Transport {
        let inner: any Transport
        /// How many reads the channel made.
        let reads = Mutex(0)

        init(_ inner: any Transport) { self.inner = inner }

        func send(_ bytes: UnsafeRawBufferPointer) throws(TransportError) { try inner.send(bytes) }
        func shutdown() { inner.shutdown() }

        func receiveSome(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
            reads.withLock { $0 += 1 }
            return try inner.receiveSome(into: UnsafeMutableRawBufferPointer(rebasing: buffer.prefix(1)))
        }
    }

    @Test("a frame delivered one byte at a time arrives whole")
    func byteAtATime() throws {
        let (sender, receiver) = try SocketTransport.pair()
        let payload = MemcpyHtoDRequest(destination: 1, remainingBytes: 3, stream: 0, asynchronous: 0, data: [7, 8, 9]).encoded
        let frame =
            FrameHeader(length: UInt32(payload.count), call: CallID.memcpyHtoD.rawValue, sequence: 9, context: 0x1000).encoded
            + payload
        try frame.withUnsafeBytes { try sender.send($0) }
        let trickle = OneByteAtATime(receiver)
        let (header, received) = try FrameChannel(transport: trickle).receive()
        #expect(header.call == CallID.memcpyHtoD.rawValue && header.sequence == 9 && header.context == 0x1000)
        #expect(try MemcpyHtoDRequest(decoding: received).data == [7, 8, 9])
        #expect(trickle.reads.withLock { $0 } == frame.count, "one read per byte")
    }

    @Test("a stream that ends inside a frame is a truncated frame, a clean end is a close")
    func truncation() throws {
        let (sender, receiver) = try SocketTransport.pair()
        try FrameHeader(length: 10, call: 1, sequence: 1).encoded.withUnsafeBytes { try sender.send($0) }
        try [UInt8]([1, 2, 3]).withUnsafeBytes { try sender.send($0) }
        sender.shutdownWrite()
        do {
            _ = try FrameChannel(transport: receiver).receive()
            Issue.record("a cut frame must not decode")
        } catch {
            guard case .protocolViolation(let violation) = error else {
                Issue.record("expected a protocol violation, got \(error)")
                return
            }
            #expect(violation.code == .truncated)
        }
        let (other, end) = try SocketTransport.pair()
        other.shutdownWrite()
        #expect(throws: FrameError.self) { try FrameChannel(transport: end).receive() }
    }
}
