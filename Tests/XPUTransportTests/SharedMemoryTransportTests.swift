import CXPUShm
import Foundation
import Synchronization
import Testing
import XPUProtocol

@testable import XPUTransport

/// The same-node transport: rings in a sealed memfd, set up over a Unix socket.
@Suite("Shared-memory transport")
struct SharedMemoryTransportTests {
    /// A listening socket and one connected pair of shared-memory transports.
    final class Pair {
        let listener: UnixListener
        let client: SharedMemoryTransport
        let server: SharedMemoryTransport

        init(capacity: Int = SharedMemoryTransport.defaultCapacity) throws {
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("xpu-shm-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock").path
            listener = try UnixListener(path: path)
            let accepted = Mutex<Result<SharedMemoryTransport, TransportError>?>(nil)
            let done = DispatchSemaphore(value: 0)
            let listener = listener
            Thread {
                accepted.withLock { result in
                    result = Result { () throws(TransportError) in try SharedMemoryTransport.accept(listener.accept()) }
                }
                done.signal()
            }.start()
            client = try SharedMemoryTransport.connect(path: path, capacity: capacity)
            _ = done.wait(timeout: .now() + 10)
            server = try accepted.withLock { $0! }.get()
        }
    }

    static func pattern(_ count: Int, seed: UInt32) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: (UInt32(truncatingIfNeeded: $0) &+ seed) &* 2_654_435_761 >> 11) }
    }

    @Test("Bytes cross in both directions, including messages far larger than the ring")
    func largerThanTheRing() throws {
        let pair = try Pair(capacity: 64 << 10)
        let up = Self.pattern(3 << 20 + 17, seed: 1)
        let down = Self.pattern(2 << 20 + 5, seed: 2)
        let serverGot = Mutex<[UInt8]>([])
        let done = DispatchSemaphore(value: 0)
        let server = pair.server
        // Both sides send and receive at once, so each ring wraps many times while full.
        Thread {
            var buffer = [UInt8](repeating: 0, count: up.count)
            let sender = Thread { _ = try? down.withUnsafeBytes { try server.send($0) } }
            sender.start()
            _ = try? buffer.withUnsafeMutableBytes { try server.receive(into: $0) }
            serverGot.withLock { $0 = buffer }
            done.signal()
        }.start()
        try up.withUnsafeBytes { bytes in
            try pair.client.send(parts: [UnsafeRawBufferPointer(rebasing: bytes[0..<100]), UnsafeRawBufferPointer(rebasing: bytes[100...])])
        }
        var received = [UInt8](repeating: 0, count: down.count)
        try received.withUnsafeMutableBytes { try pair.client.receive(into: $0) }
        #expect(done.wait(timeout: .now() + 20) == .success)
        #expect(received == down)
        #expect(serverGot.withLock { $0 } == up)
    }

    @Test("Frames travel through FrameChannel as over a socket")
    func frames() throws {
        let pair = try Pair()
        let client = FrameChannel(transport: pair.client)
        let server = FrameChannel(transport: pair.server)
        for sequence in 1...100 as ClosedRange<UInt32> {
            let request = CuMemAlloc_v2Request(bytesize: UInt64(sequence) << 20)
            try client.send(FrameHeader(length: 0, call: CallID.cuMemAlloc_v2.rawValue, sequence: sequence), payload: request.encoded)
            let (header, payload) = try server.receive()
            let decoded = try CuMemAlloc_v2Request(decoding: payload)
            #expect(header.sequence == sequence && decoded == request)
            try server.send(FrameHeader(length: 0, call: header.call, flags: .reply, sequence: sequence), payload: [])
            let reply = try client.receive().0
            #expect(reply.sequence == sequence)
        }
    }

    @Test("The server's side goes on in another transport from its position, as a tenant process takes a session over; a memfd of another size or a plain file is refused")
    func resume() throws {
        let pair = try Pair(capacity: 64 << 10)
        #expect(pair.client.memory == -1 && pair.server.memory >= 0)
        /// Sends `bytes` from one side while the other receives them (more than a ring holds).
        func cross(_ bytes: [UInt8], from sender: SharedMemoryTransport, to receiver: SharedMemoryTransport) throws -> [UInt8] {
            let thread = Thread { _ = try? bytes.withUnsafeBytes { try sender.send($0) } }
            thread.start()
            var got = [UInt8](repeating: 0, count: bytes.count)
            try got.withUnsafeMutableBytes { try receiver.receive(into: $0) }
            return got
        }
        // Traffic first, so that both counters are past zero and both rings have wrapped.
        let up = Self.pattern(150_001, seed: 3), down = Self.pattern(70_007, seed: 4)
        #expect(try cross(up, from: pair.client, to: pair.server) == up)
        #expect(try cross(down, from: pair.server, to: pair.client) == down)

        // Copies of the descriptors, as the tenant process inherits them.
        let moved = try SharedMemoryTransport.resume(
            socket: SocketTransport(descriptor: dup(pair.server.socket.descriptor)), memory: dup(pair.server.memory),
            position: pair.server.position)
        let later = Self.pattern(200_003, seed: 5), back = Self.pattern(90_001, seed: 6)
        #expect(try cross(later, from: pair.client, to: moved) == later)
        #expect(try cross(back, from: moved, to: pair.client) == back)

        var wrongSize = pair.server.position
        wrongSize.capacity = 128 << 10
        let refused = #expect(throws: TransportError.self) {
            _ = try SharedMemoryTransport.resume(
                socket: SocketTransport(descriptor: dup(pair.server.socket.descriptor)), memory: dup(pair.server.memory),
                position: wrongSize)
        }
        #expect(refused?.message.contains("sealed memfd") == true)
        #expect(throws: TransportError.self) {
            _ = try SharedMemoryTransport.resume(
                socket: SocketTransport(descriptor: dup(pair.server.socket.descriptor)), memory: open("/dev/null", O_RDWR),
                position: pair.server.position)
        }
    }

    @Test("After shutdown the peer reads what was sent, then end of stream")
    func shutdown() throws {
        let pair = try Pair()
        try [UInt8]([7, 8, 9]).withUnsafeBytes { try pair.client.send($0) }
        pair.client.shutdown()
        var three = [UInt8](repeating: 0, count: 3)
        try three.withUnsafeMutableBytes { try pair.server.receive(into: $0) }
        #expect(three == [7, 8, 9])
        let error = #expect(throws: TransportError.self) {
            var byte: UInt8 = 0
            try withUnsafeMutableBytes(of: &byte) { try pair.server.receive(into: $0) }
        }
        #expect(error?.code == .closed)
        #expect(throws: TransportError.self) { try [UInt8]([1]).withUnsafeBytes { try pair.client.send($0) } }
    }

    /// A thread that reads one byte from a transport.
    final class Reader: Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let outcome = Mutex<Result<UInt8, TransportError>?>(nil)
        private let observed = Mutex<ObservedThread?>(nil)

        init(_ transport: SharedMemoryTransport) {
            let started = DispatchSemaphore(value: 0)
            Thread { [self] in
                observed.withLock { $0 = ObservedThread.current() }
                started.signal()
                var byte: UInt8 = 0
                let result = Result { () throws(TransportError) in
                    try withUnsafeMutableBytes(of: &byte) { buffer throws(TransportError) in try transport.receive(into: buffer) }
                    return byte
                }
                outcome.withLock { $0 = result }
                done.signal()
            }.start()
            started.wait()
        }

        /// The reading thread, as the kernel reports it.
        var thread: ObservedThread { observed.withLock { $0! } }

        /// The byte or the error, once the read ended within `seconds`; nil if it did not.
        func result(within seconds: Double) -> Result<UInt8, TransportError>? {
            guard done.wait(timeout: .now() + seconds) == .success else { return nil }
            return outcome.withLock { $0 }
        }
    }

    @Test("An idle session's reader sleeps on the futex without waking until data comes")
    func idleReaderStaysAsleep() throws {
        let pair = try Pair()
        let reader = Reader(pair.server)
        try #require(reader.thread.waitUntilBlockedInFutex(), "the reader must stop spinning and sleep")
        let before = try #require(reader.thread.voluntarySwitches)
        // Time is what this test is about: an idle second. A sleeper that looked at its peer
        // every 100 ms would have woken about ten times.
        Thread.sleep(forTimeInterval: 1)
        let after = try #require(reader.thread.voluntarySwitches)
        #expect(after - before == 0, "the idle reader woke \(after - before) times in one second")
        #expect(reader.thread.isBlockedInFutex)
        try [UInt8]([42]).withUnsafeBytes { try pair.client.send($0) }
        let result = try #require(reader.result(within: 20), "data wakes the reader")
        #expect(try result.get() == 42)
    }

    @Test("A peer that vanishes without shutting down wakes a reader asleep on the futex")
    func vanishedPeer() throws {
        var pair: Pair? = try Pair()
        let reader = Reader(pair!.server)
        try #require(reader.thread.waitUntilBlockedInFutex(), "the reader must be asleep before its peer goes")
        // Dropping the client closes its socket and unmaps its side, as a killed process would:
        // the server's hang-up watch sees the socket end and shuts the rings.
        pair = nil
        let result = try #require(reader.result(within: 5), "the reader must wake up")
        let error = #expect(throws: TransportError.self) { try result.get() }
        #expect(error?.code == .closed)
    }

    @Test("A reader in a process that cannot watch its socket still notices a vanished peer by looking")
    func vanishedPeerUnwatched() throws {
        var pair: Pair? = try Pair()
        let server = pair!.server
        server.stopWatchingPeer()
        let reader = Reader(server)
        try #require(reader.thread.waitUntilBlockedInFutex())
        pair = nil
        let result = try #require(reader.result(within: 5), "the reader must wake up")
        let error = #expect(throws: TransportError.self) { try result.get() }
        #expect(error?.code == .closed)
    }

    @Test("The server refuses a unix client that does not set up shared memory, or passes a file that is not a sealed memfd")
    func refusedSetups() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-shm-bad-\(getpid()).sock").path
        let listener = try UnixListener(path: path)
        // A plaintext frame instead of the setup message.
        let plain = try UnixSocket.connect(path: path)
        try FrameHeader(length: 0, call: 0, sequence: 0).encoded.withUnsafeBytes { try plain.send(UnsafeRawBufferPointer(rebasing: $0[0..<16])) }
        let first = #expect(throws: TransportError.self) { _ = try SharedMemoryTransport.accept(try listener.accept()) }
        #expect(first?.message.contains("did not set up shared memory") == true, "\(String(describing: first))")
        // The right message with an ordinary file attached (it could be truncated under the server).
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-shm-file-\(getpid())").path
        _ = FileManager.default.createFile(atPath: file, contents: Data(count: 4096 + 2 * 65536))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let descriptor = open(file, O_RDWR)
        defer { close(descriptor) }
        let forged = try UnixSocket.connect(path: path)
        var setup = Array("XPUSHM01".utf8) + [0, 0, 1, 0] + [0, 0, 0, 0]  // capacity 65536
        _ = setup.withUnsafeMutableBytes { xpu_send_with_fd(forged.descriptor, $0.baseAddress, $0.count, descriptor) }
        let second = #expect(throws: TransportError.self) { _ = try SharedMemoryTransport.accept(try listener.accept()) }
        #expect(second?.message.contains("not a sealed memfd") == true, "\(String(describing: second))")
    }

    @Test("Small calls round-trip intact and in order over shared memory and loopback TCP alike")
    func smallCallRoundTrips() throws {
        // Which of the two is faster is measured by `xpu-bench transports` (bench/transports),
        // not here: a unit test on a shared machine cannot compare timings without flaking.
        func roundTrips(client: any Transport, server: any Transport) throws {
            let rounds = 2000
            let serverThread = Thread {
                var frame = [UInt8](repeating: 0, count: 32)
                for _ in 0..<rounds {
                    guard (try? frame.withUnsafeMutableBytes { try server.receive(into: $0) }) != nil else { return }
                    // The reply is the request with each byte incremented: an echo that proves
                    // the server read this round's frame.
                    for index in frame.indices { frame[index] &+= 1 }
                    guard (try? frame.withUnsafeBytes { try server.send($0) }) != nil else { return }
                }
            }
            serverThread.start()
            for round in 0..<rounds {
                var frame = (0..<32).map { UInt8(truncatingIfNeeded: round &+ $0) }
                let expected = frame.map { $0 &+ 1 }
                try frame.withUnsafeBytes { try client.send($0) }
                try frame.withUnsafeMutableBytes { try client.receive(into: $0) }
                #expect(frame == expected, "round \(round)")
                if frame != expected { return }
            }
        }
        let pair = try Pair()
        try roundTrips(client: pair.client, server: pair.server)
        let listener = try Listener(binding: Endpoint(host: "127.0.0.1", port: 0))
        let tcpClient = try SocketTransport.connect(to: listener.endpoint)
        let tcpServer = try listener.accept()
        try roundTrips(client: tcpClient, server: tcpServer)
        tcpClient.shutdown()
        tcpServer.shutdown()
        listener.shutdown()
    }
}
