import Testing
import XPUTransport

@testable import XPUServer

/// The control channel between a server and its tenant processes (`--tenant-processes`).
@Suite("Tenant process control messages")
struct TenantMessageTests {
    static let messages: [TenantMessage] = [
        .handOff(
            SessionHandOff(
                session: 42, client: "infer.py[1234]", clientCUDAVersion: 12080, slice: "mem=1GiB,compute=30%", tenant: "alice",
                features: 3, metered: true, buffered: [1, 2, 3])),
        .handOff(
            SessionHandOff(
                session: 7, client: "train[99]", clientCUDAVersion: 13000, slice: "", tenant: nil, features: 1, metered: false,
                buffered: [9], sharedMemory: SharedMemoryTransport.Position(capacity: 4 << 20, produced: 1 << 33, consumed: 77))),
        .handOff(
            SessionHandOff(session: 1, client: "", clientCUDAVersion: 0, slice: "", tenant: nil, features: 0, metered: false, buffered: [])),
        .turnRequest, .turnGranted, .turnDone(deviceNanoseconds: 2_000_000),
        .usage(TenantUsageReport(memoryBytes: 64 << 20, launches: 100, deviceTime: [0: 5, 3: 7])),
        .usage(TenantUsageReport(memoryBytes: 0, launches: 0, deviceTime: [:])),
        .scheduleQuery, .schedule(deviceNanoseconds: 1, waitNanoseconds: 2, stalls: 3),
    ]

    @Test("every message decodes to itself, and its length prefix is its body's size")
    func roundTrip() throws {
        for message in Self.messages {
            let framed = message.framed
            let length = framed[0..<4].reversed().reduce(0) { $0 << 8 | Int($1) }
            #expect(length == framed.count - 4)
            #expect(try TenantMessage(decoding: Array(framed[4...])) == message)
        }
    }

    @Test("a truncated, unknown or padded message is refused")
    func malformed() {
        for message in Self.messages {
            let body = Array(message.framed[4...])
            for cut in 0..<body.count {
                #expect(throws: (any Error).self) { try TenantMessage(decoding: Array(body[..<cut])) }
            }
            #expect(throws: (any Error).self) { try TenantMessage(decoding: body + [0]) }
        }
        #expect(throws: (any Error).self) { try TenantMessage(decoding: [0xEE]) }
    }

    @Test("messages cross a socket pair whole, one at a time, and the end of the channel reads as nil")
    func channel() throws {
        let (a, b) = try SocketTransport.pair()
        let sender = TenantChannel(socket: a)
        let receiver = TenantChannel(socket: b)
        for message in Self.messages { try sender.send(message) }
        for message in Self.messages { #expect(receiver.receive() == message) }
        a.shutdown()
        #expect(receiver.receive() == nil)
    }
}
