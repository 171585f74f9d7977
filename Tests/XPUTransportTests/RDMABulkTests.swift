import Foundation
import Logging
import Synchronization
import Testing
import XPUProtocol
import XPUServer
import XPUTransport

/// The RDMA transport's bulk path (RDMA WRITE into the peer's landing slots) and the server-side
/// listener, on the in-memory fake of the verbs layer (FakeVerbs.swift). The real verbs layer is
/// not exercised (proto/SECURITY.md).
@Suite("RDMA bulk path and listener on fake verbs")
struct RDMABulkTests {
    typealias Background = RDMATransportTests.Background

    static func pattern(_ count: Int, seed: UInt32) -> [UInt8] { RDMATransportTests.pattern(count, seed: seed) }
    static func send(_ bytes: [UInt8], over transport: RDMATransport) throws { try RDMATransportTests.send(bytes, over: transport) }
    static func receive(_ count: Int, from transport: RDMATransport) throws -> [UInt8] {
        try RDMATransportTests.receive(count, from: transport)
    }

    /// Message sizes around the threshold (4 KiB), the landing slot (16 KiB) and far above both.
    static let sizes = [1, 100, 4096, 4097, 16_384, 16_385, 10, 50_000, 3, 300_001, 1 << 20 | 3, 7, 65_536]

    static func bulkLink() -> FakeVerbsLink {
        FakeVerbsLink(slotCount: 8, slotBytes: 1024, bulkSlotCount: 3, bulkSlotBytes: 16 << 10)
    }

    @Test("Large payloads of several sizes cross by RDMA WRITE intact, interleaved with small frames, both ways at once")
    func bulkBothWays() throws {
        let link = Self.bulkLink()
        let client = try RDMATransport(queuePair: link.a, bulkThreshold: 4096)
        let server = try RDMATransport(queuePair: link.b, bulkThreshold: 4096)
        let up = Self.sizes.enumerated().map { Self.pattern($0.element, seed: UInt32($0.offset)) }
        let down = Self.sizes.reversed().enumerated().map { Self.pattern($0.element, seed: UInt32(100 + $0.offset)) }
        // Both sides send every message before they read any: only credits and landing slots
        // returned from received (and buffered) messages let both finish.
        let serverSide = Background {
            for message in down { try Self.send(message, over: server) }
            for message in up {
                let intact = try Self.receive(message.count, from: server) == message
                #expect(intact, "a \(message.count)-byte message arrived changed")
            }
        }
        for message in up { try Self.send(message, over: client) }
        for message in down {
            let intact = try Self.receive(message.count, from: client) == message
            #expect(intact, "a \(message.count)-byte message arrived changed")
        }
        #expect(serverSide.finished(within: 30))
        #expect(serverSide.error == nil, "\(String(describing: serverSide.error))")
        #expect(client.bulkMessagesSent > 0 && server.bulkMessagesSent > 0)
        // Everything above the threshold went by WRITE, in landing-slot-sized pieces.
        let bulkBytes = Self.sizes.filter { $0 > 4096 }.reduce(0, +)
        #expect(link.a.bytesWritten >= bulkBytes - 4096 * Self.sizes.count && link.b.bytesWritten >= bulkBytes - 4096 * Self.sizes.count)
        #expect(link.rnrFailures == 0 && link.violations.isEmpty, "\(link.violations)")
    }

    @Test("Without bulk regions on the queue pair every byte goes through the slots")
    func noBulkRegions() throws {
        let link = FakeVerbsLink(slotCount: 4, slotBytes: 512)
        let client = try RDMATransport(queuePair: link.a, bulkThreshold: 1024)
        let server = try RDMATransport(queuePair: link.b)
        let data = Self.pattern(100_000, seed: 9)
        let reader = Background {
            let intact = try Self.receive(data.count, from: server) == data
            #expect(intact)
        }
        try Self.send(data, over: client)
        #expect(reader.finished(within: 20) && reader.error == nil)
        #expect(client.bulkMessagesSent == 0 && link.a.writesPosted == 0)
    }

    @Test("A slow receiver holds the bulk sender back through landing slots, and releases it when it reads")
    func bulkBackpressure() throws {
        let link = Self.bulkLink()
        let client = try RDMATransport(queuePair: link.a, bulkThreshold: 4096)
        // The receiver buffers at most 20 KiB before it holds slots back.
        let server = try RDMATransport(queuePair: link.b, inboxLimit: 20 << 10)
        let data = Self.pattern(1 << 20, seed: 5)
        let writer = Background { try Self.send(data, over: client) }
        #expect(try Self.receive(1, from: server) == [data[0]])
        #expect(!writer.finished(within: 0.3), "the sender must be held back while the receiver does not read")
        // At most the landing slots plus what fits in the slots can have been taken in.
        #expect(client.bulkCredits == 0 || client.sendCredits <= 1, "bulk \(client.bulkCredits), credits \(client.sendCredits)")
        #expect(link.a.bytesWritten <= (20 << 10) + 3 * (16 << 10) + 16 << 10, "\(link.a.bytesWritten) bytes written")
        let restIntact = try Self.receive(data.count - 1, from: server) == Array(data[1...])
        #expect(restIntact)
        #expect(writer.finished(within: 20) && writer.error == nil)
        #expect(link.rnrFailures == 0 && link.violations.isEmpty, "\(link.violations)")
    }

    @Test("A receiver that disappears mid-transfer fails the bulk sender cleanly")
    func receiverDisappears() throws {
        let link = Self.bulkLink()
        let client = try RDMATransport(queuePair: link.a, bulkThreshold: 4096)
        let server = try RDMATransport(queuePair: link.b, inboxLimit: 32 << 10)
        let data = Self.pattern(4 << 20, seed: 6)
        let writer = Background { try Self.send(data, over: client) }
        let startIntact = try Self.receive(100_000, from: server) == Array(data[..<100_000])
        #expect(startIntact)
        link.b.disconnect()  // the peer's machine is gone
        #expect(writer.finished(within: 5), "the sender must not hang")
        let error = writer.error as? TransportError
        #expect(error?.code == .closed || error?.code == .io, "\(String(describing: writer.error))")
        // And the transport stays failed.
        #expect(throws: TransportError.self) { try Self.send([1, 2, 3], over: client) }
        #expect(link.violations.isEmpty, "\(link.violations)")
    }

    @Test("A sender that disappears mid-message leaves the receiver with closedMidMessage")
    func senderDisappears() throws {
        let link = Self.bulkLink()
        let client = try RDMATransport(queuePair: link.a, bulkThreshold: 4096)
        let server = try RDMATransport(queuePair: link.b)
        let part = Self.pattern(200_000, seed: 7)
        let reader = Background {
            let error = #expect(throws: TransportError.self) { _ = try Self.receive(1 << 20, from: server) }
            #expect(error?.code == .closedMidMessage, "\(String(describing: error))")
        }
        try Self.send(part, over: client)
        client.shutdown()
        #expect(reader.finished(within: 5) && reader.error == nil, "\(String(describing: reader.error))")
    }

    @Test("Bulk messages the receiver could not have allowed fail the connection")
    func malformedBulk() throws {
        // (bulk regions, announced bytes, bulk messages in a row, expected)
        for (bulk, announced, count, expected) in [
            (false, UInt32(100), 1, "bulk message is malformed"), (true, 16 << 10 + 1, 1, "a landing slot holds"),
            (true, 0, 1, "announces 0 bytes"), (true, 10, 4, "more landing slots than it was given"),
        ] {
            let link = bulk ? Self.bulkLink() : FakeVerbsLink(slotCount: 8, slotBytes: 1024)
            // A receiver that holds every landing slot (its inbox is over the limit at once).
            let transport = try RDMATransport(queuePair: link.b, inboxLimit: 1)
            let raw = link.a!
            for slot in 0..<count {
                let memory = raw.sendSlot(slot)
                memory.storeBytes(of: UInt32(4).littleEndian, toByteOffset: 0, as: UInt32.self)
                memory.storeBytes(of: UInt16(0).littleEndian, toByteOffset: 4, as: UInt16.self)
                memory[6] = 2
                memory[7] = 0
                memory.storeBytes(of: announced.littleEndian, toByteOffset: 8, as: UInt32.self)
                try raw.postSend(slot: slot, length: 12)
            }
            let error = #expect(throws: TransportError.self) { _ = try Self.receive(1 << 20, from: transport) }
            #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
        }
    }

    @Test("Landing slots released beyond those written fail the connection")
    func impossibleRelease() throws {
        let link = Self.bulkLink()
        let transport = try RDMATransport(queuePair: link.b)
        let memory = link.a.sendSlot(0)
        memory.storeBytes(of: UInt32(0), toByteOffset: 0, as: UInt32.self)
        memory.storeBytes(of: UInt16(0), toByteOffset: 4, as: UInt16.self)
        memory[6] = 1
        memory[7] = 1
        try link.a.postSend(slot: 0, length: 8)
        let error = #expect(throws: TransportError.self) { _ = try Self.receive(1, from: transport) }
        #expect(error?.message.contains("landing slots") == true, "\(String(describing: error))")
    }

    // MARK: The server-side listener

    /// Serves one connection like a session: echoes length-prefixed messages until the peer closes.
    static func echo(_ transport: RDMATransport) -> TransportError.Code? {
        do {
            while true {
                let header = try receive(4, from: transport)
                let count = Int(header.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
                let body = try receive(count, from: transport)
                try send(header + body, over: transport)
            }
        } catch {
            return (error as? TransportError)?.code ?? .io
        }
    }

    static func roundTrip(_ message: [UInt8], over transport: RDMATransport) throws -> [UInt8] {
        try send(withUnsafeBytes(of: UInt32(message.count)) { Array($0) } + message, over: transport)
        let header = try receive(4, from: transport)
        #expect(header.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } == UInt32(message.count))
        return try receive(message.count, from: transport)
    }

    @Test("The RDMA listener accepts clients, serves each until it closes, survives a failed client and stops on shutdown")
    func listener() throws {
        let acceptor = FakeVerbsAcceptor()
        let listener = RDMAListener(acceptor: acceptor, bulkThreshold: 4096)
        #expect(listener.address == "rdma://fake:1")
        let sessionsEnded = Mutex<[TransportError.Code?]>([])
        /// Signalled once per session that ended.
        let sessionEnded = DispatchSemaphore(value: 0)
        let accepting = Background {
            while true {
                let accepted: (transport: RDMATransport, peerHost: String)
                do {
                    accepted = try listener.accept()
                } catch {
                    if (error as? TransportError)?.code == .closed { throw error }
                    continue  // one client failed; keep accepting, as RemoteServer does
                }
                #expect(accepted.peerHost == "fake-peer")
                Thread {
                    let ended = Self.echo(accepted.transport)
                    sessionsEnded.withLock { $0.append(ended) }
                    sessionEnded.signal()
                }.start()
            }
        }
        // A client the listener refuses (other slot settings on hardware) does not stop it.
        acceptor.failNext = true
        let refused = try RDMATransport(queuePair: acceptor.connect())
        #expect(throws: TransportError.self) { _ = try Self.roundTrip([1], over: refused) }

        let first = try RDMATransport(queuePair: acceptor.connect(), bulkThreshold: 4096)
        let second = try RDMATransport(queuePair: acceptor.connect(), bulkThreshold: 4096)
        for size in [1, 5000, 100_000, 20] {
            let one = Self.pattern(size, seed: UInt32(size)), two = Self.pattern(size, seed: UInt32(size + 1))
            let oneIntact = try Self.roundTrip(one, over: first) == one
            let twoIntact = try Self.roundTrip(two, over: second) == two
            #expect(oneIntact && twoIntact, "\(size)-byte echo")
        }
        #expect(first.bulkMessagesSent > 0)
        // A client that closes ends its session only.
        first.shutdown()
        #expect(sessionEnded.wait(timeout: .now() + 30) == .success)
        #expect(sessionsEnded.withLock { $0 } == [.closed])
        #expect(try Self.roundTrip([9, 8, 7], over: second) == [9, 8, 7])
        // Shutdown wakes the accepting thread.
        listener.shutdown()
        #expect(accepting.finished(within: 5))
        #expect((accepting.error as? TransportError)?.code == .closed)
        second.shutdown()
        #expect(sessionEnded.wait(timeout: .now() + 30) == .success)
        #expect(sessionsEnded.withLock { $0.count } == 2)
        for link in acceptor.links { #expect(link.violations.isEmpty && link.rnrFailures == 0, "\(link.violations)") }
    }
}

/// `RemoteServer`'s accept path over RDMA, with the fake acceptor and the simulator driver.
@Suite("RemoteServer over fake RDMA")
struct RDMAServerTests {
    /// libxpusim.so from this build, beside the test bundle (`swift build` makes it).
    static let simulatorPath: String? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidate = root.appendingPathComponent(".build/debug/libxpusim.so").path
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }()

    @Test("The server accepts an RDMA client, opens its session with the handshake, and ends it when the client closes",
        .enabled(if: simulatorPath != nil, "needs .build/debug/libxpusim.so"))
    func session() async throws {
        let driver = try Driver(path: Self.simulatorPath!)
        let acceptor = FakeVerbsAcceptor(slotCount: 16, slotBytes: 4096, bulkSlotCount: 2, bulkSlotBytes: 64 << 10)
        let server = try RemoteServer(
            configuration: ServerConfiguration(listen: Endpoint(host: "127.0.0.1", port: 0), device: .sim),
            driver: driver, logger: Logger(label: "rdma-server-test"),
            security: ServerSecurity(rdmaEndpoint: Endpoint(host: "127.0.0.1", port: 7471)), rdmaAcceptor: acceptor)
        #expect(server.address == "rdma://fake:1")
        let running = Task { try await server.run() }
        for session in 1...2 {
            let transport = try RDMATransport(queuePair: acceptor.connect())
            let client = FrameChannel(transport: transport)
            let hello = Hello(clientCUDAVersion: 13000, slice: "", client: "rdma server test", token: "")
            try client.send(FrameHeader(length: 0, call: 0, sequence: 0), payload: hello.encoded)
            let (header, payload) = try client.receive()
            let welcome = try Welcome(decoding: payload)
            #expect(header.status == 0 && welcome.reason.isEmpty, "\(welcome.reason)")
            #expect(welcome.session == UInt64(session))
            transport.shutdown()
        }
        running.cancel()
        try await running.value
        for link in acceptor.links { #expect(link.violations.isEmpty && link.rnrFailures == 0, "\(link.violations)") }
    }
}
