import Foundation
import Testing
import XPUProtocol
import XPUTransport

/// The busy-poll state machine, driven by the outcomes a reader would report (no clock), and the
/// socket and TLS transports reading with it turned on.
@Suite("Busy-poll")
struct BusyPollTests {
    static let settings = BusyPoll.Settings(limit: 80_000, minimumBudget: 10_000, probeInterval: 4)

    @Test("Off: no spin, nothing counted")
    func off() {
        var poll = BusyPoll(.off)
        #expect(!poll.isEnabled)
        #expect(poll.spinForNextWait() == 0)
        poll.finish(.caught, spun: 5)
        #expect(poll.waits == 0 && poll.caught == 0 && poll.spunNanoseconds == 0)
    }

    @Test("Caught waits keep the full budget")
    func caughtKeepsBudget() {
        var poll = BusyPoll(Self.settings)
        for _ in 0..<10 {
            #expect(poll.spinForNextWait() == 80_000)
            poll.finish(.caught, spun: 3_000)
        }
        #expect(poll.waits == 10 && poll.caught == 10 && poll.spunNanoseconds == 30_000)
    }

    @Test("Waits that outlast the spin halve the budget, then stop the spinning")
    func blockedHalves() {
        var poll = BusyPoll(Self.settings)
        var spins: [UInt64] = []
        for _ in 0..<4 {
            let spin = poll.spinForNextWait()
            spins.append(spin)
            poll.finish(.blocked, spun: spin)
        }
        // 80 → 40 → 20 → 10 µs, then 5 would be under the 10 µs minimum: no spin.
        #expect(spins == [80_000, 40_000, 20_000, 10_000])
        #expect(poll.budget == 0)
        #expect(poll.spinForNextWait() == 0)
    }

    @Test("A wait that did not spin teaches nothing")
    func blockedWithoutSpin() {
        var poll = BusyPoll(Self.settings)
        _ = poll.spinForNextWait()
        poll.finish(.blocked, spun: 0)
        #expect(poll.budget == 80_000)
    }

    @Test("A wait on a crowded machine blocks without spinning, is counted, and leaves the budget as it was")
    func crowdedKeepsBudget() {
        var poll = BusyPoll(Self.settings)
        _ = poll.spinForNextWait()
        poll.finish(.blocked, spun: 80_000)
        #expect(poll.budget == 40_000)
        for _ in 0..<3 {
            _ = poll.spinForNextWait()
            poll.finish(.crowded, spun: 0)
        }
        #expect(poll.crowded == 3 && poll.caught == 0)
        #expect(poll.budget == 40_000)
        #expect(poll.spinForNextWait() == 40_000)
    }

    @Test("Without a budget, every probeInterval-th wait probes with the full limit; a caught probe restores the budget")
    func probes() {
        var poll = BusyPoll(Self.settings)
        while poll.budget > 0 {
            let spin = poll.spinForNextWait()
            poll.finish(.blocked, spun: spin)
        }
        // Three waits without a spin, then the probe.
        var spins: [UInt64] = []
        for _ in 0..<4 {
            let spin = poll.spinForNextWait()
            spins.append(spin)
            if spin == 0 { poll.finish(.blocked, spun: 0) }
        }
        #expect(spins == [0, 0, 0, 80_000])
        poll.finish(.caught, spun: 2_000)
        #expect(poll.budget == 80_000)
        #expect(poll.spinForNextWait() == 80_000)
    }

    @Test("A probe that misses leaves the reader blocking until the next probe")
    func missedProbe() {
        var poll = BusyPoll(Self.settings)
        while poll.budget > 0 {
            let spin = poll.spinForNextWait()
            poll.finish(.blocked, spun: spin)
        }
        for _ in 0..<3 {
            #expect(poll.spinForNextWait() == 0)
            poll.finish(.blocked, spun: 0)
        }
        let probe = poll.spinForNextWait()
        #expect(probe == 80_000)
        poll.finish(.blocked, spun: probe)
        #expect(poll.budget == 0)
        #expect(poll.waitsWithoutSpin == 0)
        #expect(poll.spinForNextWait() == 0)
    }

    @Test("XPU_POLL_US and --busy-poll-us values: whole microseconds up to one second")
    func parsing() {
        #expect(BusyPoll.Settings(parsingMicroseconds: "50")?.limit == 50_000)
        #expect(BusyPoll.Settings(parsingMicroseconds: "0")?.limit == 0)
        #expect(BusyPoll.Settings(parsingMicroseconds: "-1") == nil)
        #expect(BusyPoll.Settings(parsingMicroseconds: "2000000") == nil)
        #expect(BusyPoll.Settings(parsingMicroseconds: "fast") == nil)
    }

    /// The first read of a message with `receiveMessageStart` (the one that may spin), the rest
    /// with `receive`.
    static func receiveMessage(_ transport: any Transport, into buffer: UnsafeMutableRawBufferPointer) throws {
        let first = try transport.receiveMessageStart(into: buffer)
        try transport.receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[first...]))
    }

    @Test("A socket that spins for a message's start still receives all of it, and a wait it has is caught within a long limit unless the machine is crowded")
    func socketReceives() throws {
        let (reader, writer) = try SocketTransport.pair()
        reader.setBusyPoll(BusyPoll.Settings(limit: 10_000_000_000))
        let message = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let sender = Thread { _ = try? message.withUnsafeBytes { try writer.send($0) } }
        sender.start()
        var received = [UInt8](repeating: 0, count: message.count)
        try received.withUnsafeMutableBytes { try Self.receiveMessage(reader, into: $0) }
        #expect(received == message)
        let poll = try #require(reader.busyPoll)
        // Whether the first read had to wait depends on the scheduler; a wait it had was caught,
        // or blocked without spinning because the machine had more runnable threads than CPUs.
        #expect(poll.waits <= 1)
        #expect(poll.caught + poll.crowded == poll.waits)
    }

    @Test("A spinning read sees the peer's close as the end of the stream")
    func socketEnd() throws {
        let (reader, writer) = try SocketTransport.pair()
        reader.setBusyPoll(BusyPoll.Settings(limit: 10_000_000_000))
        let closer = Thread { writer.shutdown() }
        closer.start()
        var byte: UInt8 = 0
        let error = #expect(throws: TransportError.self) {
            try withUnsafeMutableBytes(of: &byte) { _ = try reader.receiveMessageStart(into: $0) }
        }
        #expect(error?.code == .closed)
    }

    @Test("Frames through a channel whose transport spins arrive in order")
    func channel() throws {
        let (client, server) = try SocketTransport.pair()
        client.setBusyPoll(BusyPoll.Settings(microseconds: 200))
        server.setBusyPoll(BusyPoll.Settings(microseconds: 200))
        let serverChannel = FrameChannel(transport: server)
        let echo = Thread {
            while let (header, payload) = try? serverChannel.receive() {
                var reply = header
                reply.flags = .reply
                guard (try? serverChannel.send(reply, payload: payload)) != nil else { return }
            }
        }
        echo.start()
        let clientChannel = FrameChannel(transport: client)
        for sequence in UInt32(1)...200 {
            let payload = (0..<Int(sequence)).map { UInt8(truncatingIfNeeded: $0 &+ Int(sequence)) }
            try clientChannel.send(FrameHeader(length: 0, call: 3, sequence: sequence), payload: payload)
            let (header, echoed) = try clientChannel.receive()
            #expect(header.sequence == sequence)
            #expect(echoed == payload)
        }
        client.shutdown()
        #expect(try #require(client.busyPoll).waits <= 200)
    }

    @Test("TLS with busy-poll on both ends: a round trip and a large transfer arrive intact")
    func tls() throws {
        let pki = try TestCertificates.shared.get()
        let listener = try Listener(binding: Endpoint(host: "127.0.0.1", port: 0))
        let context = try TLSContext.server(certificateFile: pki.serverCertificate, keyFile: pki.serverKey)
        let size = 1 << 20
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { finished.signal() }
            guard let socket = try? listener.accept(), let tls = try? TLSTransport(socket: socket, context: context, expectedHost: nil)
            else { return }
            tls.setBusyPoll(BusyPoll.Settings(microseconds: 200))
            var buffer = [UInt8](repeating: 0, count: size)
            guard (try? buffer.withUnsafeMutableBytes { try Self.receiveMessage(tls, into: $0) }) != nil else { return }
            _ = try? buffer.withUnsafeBytes { try tls.send($0) }
        }
        thread.start()
        let client = try TLSTransport.connect(to: listener.endpoint, context: .client(caFile: pki.caCertificate))
        client.setBusyPoll(BusyPoll.Settings(microseconds: 200))
        #expect(client.busyPoll != nil)
        let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try data.withUnsafeBytes { try client.send($0) }
        var echoed = [UInt8](repeating: 0, count: size)
        try echoed.withUnsafeMutableBytes { try Self.receiveMessage(client, into: $0) }
        #expect(echoed == data)
        _ = finished.wait(timeout: .now() + 10)
    }
}
