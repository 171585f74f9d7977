import Foundation
import Testing
import XPUProtocol
import XPUTransport

/// Malformed input closes only the offending session, with the reason in the server's log; the
/// server keeps serving everyone else (proto/PROTOCOL.md, "Errors").
@Suite("Malformed input", .serialized)
struct MalformedInputTests {
    static func header(call: UInt16, length: UInt32, sequence: UInt32 = 1) -> [UInt8] {
        FrameHeader(length: length, call: call, sequence: sequence).encoded
    }

    /// Each case: what to send after a good handshake, and the reason the log must show.
    static let violations: [(String, [UInt8], String)] = {
        var oversizedBlob = WireWriter()
        oversizedBlob.write(UInt64(0))  // destination
        oversizedBlob.write(UInt64(1))  // remaining bytes
        oversizedBlob.write(UInt64(0))  // stream
        oversizedBlob.write(UInt8(0))  // synchronous
        oversizedBlob.write(UInt32(ProtocolLimits.maximumBulkBytes + 1))  // blob length above the limit
        let blobPayload = oversizedBlob.bytes + [UInt8](repeating: 0, count: ProtocolLimits.maximumBulkBytes + 1)
        let getCount = CuDeviceGetCountRequest().encoded
        return [
            ("truncated frame", header(call: CallID.cuDeviceGetCount.rawValue, length: 100) + [1, 2, 3], "truncated"),
            ("length beyond the frame limit", header(call: CallID.cuDeviceGetCount.rawValue, length: UInt32.max), "too large"),
            ("payload longer than the call's message", header(call: CallID.cuDeviceGetCount.rawValue, length: 4) + [0, 0, 0, 0], "malformed"),
            ("unknown call id", header(call: 9999, length: 0), "unknown call"),
            ("bulk size above the limit", header(call: CallID.memcpyHtoD.rawValue, length: UInt32(blobPayload.count)) + blobPayload, "too large"),
            ("reply frame from a client", FrameHeader(length: UInt32(getCount.count), call: CallID.cuDeviceGetCount.rawValue, flags: .reply, sequence: 1).encoded + getCount, "reply frame"),
        ]
    }()

    @Test("A malformed frame closes only its session, and the server keeps serving", arguments: 0..<violations.count)
    func malformedFrame(index: Int) throws {
        let (name, bytes, reason) = Self.violations[index]
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }

        // A well-behaved session that stays open across the violation.
        let bystander = try RawClient(server.address)
        #expect(try bystander.handshake().0.status == 0)
        #expect(try bystander.call(InitializeRequest(flags: 0)).0 == 0)

        let offender = try RawClient(server.address)
        #expect(try offender.handshake().0.status == 0)
        if name == "truncated frame" {
            try offender.sendRaw(bytes)
            offender.transport.shutdownWrite()
        } else {
            try? offender.sendRaw(bytes)
        }
        #expect(offender.isClosedByServer(), "\(name): the server must close the session")

        // The bystander's session is untouched, and new clients are served.
        let (status, reply) = try bystander.call(CuDeviceGetCountRequest())
        #expect(status == 0 && reply?.count == 1, "\(name): the other session must keep working")
        let fresh = try harness.runRemote("meminfo", server: server)
        #expect(fresh.status == .exited(0), "\(name): a new client must be served:\n\(fresh.stderr)")
        #expect(
            server.process.waitForLog(where: { $0.contains("protocol violation") && $0.contains(reason) }, timeout: .seconds(5)),
            "\(name): the server log must give the reason '\(reason)':\n\(server.process.stderr.text)")
    }

    @Test("A wrong magic or protocol version is refused at the handshake with a reason", arguments: [
        Hello(magic: 0xDEAD_BEEF, clientCUDAVersion: 13000, client: "bad magic"),
        Hello(version: ProtocolLimits.version + 1, clientCUDAVersion: 13000, client: "future client"),
    ])
    func refusedHandshake(hello: Hello) throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let client = try RawClient(server.address)
        let (header, welcome) = try client.handshake(hello)
        #expect(header.status != 0)
        let expected = hello.magic != ProtocolLimits.magic ? "bad magic" : "unsupported version"
        #expect(welcome.reason.contains(expected), "refusal reason: \(welcome.reason)")
        #expect(client.isClosedByServer())
        #expect(server.process.waitForLog(containing: expected, timeout: .seconds(5)), "log:\n\(server.process.stderr.text)")
        #expect(try harness.runRemote("meminfo", server: server).status == .exited(0))
    }
}
