import Testing
import XPUProtocol

/// The protocol's own round trip (`Ping`, proto/cuda-driver.api), answered by the server without
/// the driver.
@Suite("Protocol ping")
struct PingTests {
    @Test("Ping is answered in order, before cuInit and after it")
    func answered() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let client = try RawClient(server.address)
        #expect(try client.handshake().0.status == 0)
        for _ in 0..<3 {
            let (status, reply) = try client.call(PingRequest())
            #expect(status == 0)
            #expect(reply == PingReply())
        }
        #expect(try client.call(InitializeRequest(flags: 0)).0 == 0)
        #expect(try client.call(PingRequest()).0 == 0)
        #expect(client.sequence == 5)
    }

    @Test("A Ping that carries a payload is a malformed frame: the session ends")
    func payloadRefused() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let client = try RawClient(server.address)
        #expect(try client.handshake().0.status == 0)
        try client.channel.send(FrameHeader(length: 0, call: CallID.ping.rawValue, sequence: 1), payload: [1, 2, 3])
        #expect(client.isClosedByServer())
    }
}
