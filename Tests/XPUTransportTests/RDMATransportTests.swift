import Foundation
import Synchronization
import Testing
import XPUProtocol
import XPUTransport

/// The RDMA transport's state machine and credit flow control, on the in-memory fake of the
/// verbs layer (FakeVerbs.swift). The real verbs layer (VerbsConnection) is not exercised here:
/// no RDMA device is available (proto/SECURITY.md).
@Suite("RDMA transport on fake verbs")
struct RDMATransportTests {
    static func pattern(_ count: Int, seed: UInt32) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: (UInt32(truncatingIfNeeded: $0) &+ seed) &* 2_654_435_761 >> 9) }
    }

    /// Runs `body` on a thread; `wait` returns its error (nil for success), or times out.
    final class Background: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<(any Error)??>(nil)
        private let observed = Mutex<ObservedThread?>(nil)

        init(_ body: @escaping @Sendable () throws -> Void) {
            let started = DispatchSemaphore(value: 0)
            Thread { [self] in
                observed.withLock { $0 = ObservedThread.current() }
                started.signal()
                do {
                    try body()
                    outcome.withLock { $0 = .some(nil) }
                } catch {
                    outcome.withLock { $0 = .some(error) }
                }
                done.signal()
            }.start()
            started.wait()
        }

        /// The thread, as the kernel reports it.
        var thread: ObservedThread { observed.withLock { $0! } }

        func finished(within seconds: Double) -> Bool { done.wait(timeout: .now() + seconds) == .success }
        var error: (any Error)? { outcome.withLock { $0 ?? nil } }
    }

    static func send(_ bytes: [UInt8], over transport: RDMATransport) throws {
        try bytes.withUnsafeBytes { try transport.send($0) }
    }

    static func receive(_ count: Int, from transport: RDMATransport) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try transport.receive(into: $0) }
        return bytes
    }

    @Test("Frames and a message much larger than all slots cross both ways at once, with no RNR")
    func bothWays() throws {
        let link = FakeVerbsLink(slotCount: 4, slotBytes: 256)
        let client = try RDMATransport(queuePair: link.a)
        let server = try RDMATransport(queuePair: link.b)
        let up = Self.pattern(200_000, seed: 1)
        let down = Self.pattern(150_001, seed: 2)
        // Each side sends everything before it reads: only credits returned from received (and
        // buffered) messages let both finish.
        let serverSide = Background {
            try Self.send(down, over: server)
            let got = try Self.receive(up.count, from: server)
            #expect(got == up)
        }
        try Self.send(up, over: client)
        #expect(try Self.receive(down.count, from: client) == down)
        #expect(serverSide.finished(within: 20))
        #expect(serverSide.error == nil, "\(String(describing: serverSide.error))")
        #expect(link.rnrFailures == 0 && link.violations.isEmpty, "\(link.violations)")
    }

    @Test("A one-way stream gets its credits back through credit-only messages")
    func creditMessages() throws {
        let link = FakeVerbsLink(slotCount: 8, slotBytes: 128)
        let client = try RDMATransport(queuePair: link.a)
        let server = try RDMATransport(queuePair: link.b)
        let data = Self.pattern(50_000, seed: 3)
        let reader = Background {
            let got = try Self.receive(data.count, from: server)
            #expect(got == data)
        }
        try Self.send(data, over: client)
        #expect(reader.finished(within: 20) && reader.error == nil)
        #expect(server.creditMessagesSent > 0, "the receiver never sends data, so credits must come back alone")
        #expect(link.b.sendsPosted == server.creditMessagesSent)
        #expect(link.rnrFailures == 0 && link.violations.isEmpty, "\(link.violations)")
    }

    @Test("A receiver that stops reading throttles the sender through credits, and releases it when it reads")
    func backpressure() throws {
        let link = FakeVerbsLink(slotCount: 4, slotBytes: 1024)
        let client = try RDMATransport(queuePair: link.a)
        // The receiver buffers at most 2 KiB before it holds slots back.
        let server = try RDMATransport(queuePair: link.b, inboxLimit: 2048)
        let data = Self.pattern(64 << 10, seed: 4)
        let writer = Background { try Self.send(data, over: client) }
        // Let the receiver take in what fits, then stop reading.
        #expect(try Self.receive(1, from: server) == [data[0]])
        #expect(!writer.finished(within: 0.3), "the sender must be held back while the receiver does not read")
        #expect(client.sendCredits <= 1, "only the reserved credit is left (\(client.sendCredits))")
        #expect(try Self.receive(data.count - 1, from: server) == Array(data[1...]))
        #expect(writer.finished(within: 20) && writer.error == nil)
        #expect(link.rnrFailures == 0 && link.violations.isEmpty, "\(link.violations)")
    }

    @Test("FrameChannel works unchanged over RDMA")
    func frames() throws {
        let link = FakeVerbsLink(slotCount: 16, slotBytes: 4096)
        let client = FrameChannel(transport: try RDMATransport(queuePair: link.a))
        let server = FrameChannel(transport: try RDMATransport(queuePair: link.b))
        let hello = Hello(clientCUDAVersion: 13000, slice: "mem=1GiB", client: "rdma test", token: "t")
        try client.send(FrameHeader(length: 0, call: 0, sequence: 0), payload: hello.encoded)
        let (header, payload) = try server.receive()
        #expect(header.call == 0)
        #expect(try Hello(decoding: payload) == hello)
    }

    @Test("A malformed message or impossible credits from the peer fail the connection")
    func malformedPeer() throws {
        for (length, credits, kind, expected) in [
            (UInt32(99), UInt16(0), UInt8(0), "header is malformed"), (0, 0, 7, "header is malformed"),
            (0, 5, 1, "more than it could owe"),
        ] {
            let link = FakeVerbsLink(slotCount: 4, slotBytes: 64)
            let transport = try RDMATransport(queuePair: link.b)
            let raw = link.a!
            let memory = raw.sendSlot(0)
            memory.storeBytes(of: length.littleEndian, toByteOffset: 0, as: UInt32.self)
            memory.storeBytes(of: credits.littleEndian, toByteOffset: 4, as: UInt16.self)
            memory[6] = kind
            try raw.postSend(slot: 0, length: 8)
            let error = #expect(throws: TransportError.self) { _ = try Self.receive(1, from: transport) }
            #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
        }
    }

    @Test("Shutdown wakes a blocked reader, and the peer sees the connection closed")
    func shutdown() throws {
        let link = FakeVerbsLink(slotCount: 4, slotBytes: 256)
        let client = try RDMATransport(queuePair: link.a)
        let server = try RDMATransport(queuePair: link.b)
        let reader = Background { _ = try Self.receive(10, from: server) }
        try #require(reader.thread.waitUntilBlockedInFutex(), "the reader must be waiting before the shutdown")
        client.shutdown()
        #expect(reader.finished(within: 5))
        #expect((reader.error as? TransportError)?.code == .closed)
        #expect(throws: TransportError.self) { try Self.send([1], over: client) }
    }

    @Test("rdma:// without an RDMA device fails to connect with a reason")
    func noDevice() {
        let error = #expect(throws: TransportError.self) {
            _ = try ServerAddress.rdma(Endpoint(host: "127.0.0.1", port: 1)).connect()
        }
        #expect(error?.code == .connectionFailed, "\(String(describing: error))")
        #expect(error?.message.contains("rdma://127.0.0.1:1") == true)
    }
}
