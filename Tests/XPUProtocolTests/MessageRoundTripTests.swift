import Testing
import XPUProtocol

/// Messages encode and decode to themselves, and every prefix of an encoding fails cleanly.
@Suite("Message codecs")
struct MessageRoundTripTests {
    static let samples: [any WireMessage & Sendable] = [
        Hello(features: 1, clientCUDAVersion: 13000, slice: "mem=4GiB,compute=30%", client: "app pid 7"),
        Welcome(features: 1, session: 42, driverVersion: 13000, reason: ""),
        CuMemAlloc_v2Request(bytesize: 1 << 30),
        CuMemAlloc_v2Reply(dptr: 0x7F00_0000_0200),
        CuDeviceGetNameReply(name: "xpu-remote Simulated GPU"),
        CuDeviceGetUuid_v2Reply(uuid: Array(0..<16)),
        CuEventElapsedTime_v2Reply(pMilliseconds: 1.5),
        CuModuleGetGlobal_v2Request(hmod: 0x1001, name: "table"),
        MemcpyHtoDRequest(destination: 0x7F00_0000_0000, remainingBytes: 5, stream: 0x1002, asynchronous: 1, data: [1, 2, 3, 4, 5]),
        MemcpyDtoHReply(data: Array(repeating: 0xAB, count: 1000)),
        ModuleLoadReply(
            module: 0x1003,
            kernels: [
                Kernel(function: 0x1004, name: "vadd", parameters: [.init(offset: 0, size: 8), .init(offset: 8, size: 8), .init(offset: 24, size: 4)],
                    maxThreadsPerBlock: 1024, staticSharedBytes: 0),
                Kernel(function: 0x1005, name: "empty", parameters: [], maxThreadsPerBlock: 256, staticSharedBytes: 4096),
            ]),
        LaunchKernelRequest(
            function: 0x1004, gridX: 4, gridY: 1, gridZ: 1, blockX: 256, blockY: 1, blockZ: 1, sharedMemBytes: 0, stream: 0,
            parameters: Array(0..<28)),
    ]

    @Test("encode then decode gives the same message", arguments: 0..<samples.count)
    func roundTrip(index: Int) throws {
        let message = Self.samples[index]
        let bytes = message.encoded
        let decoded = try type(of: message).init(decoding: bytes)
        #expect(decoded.encoded == bytes)
        #expect(String(describing: decoded) == String(describing: message))
    }

    @Test("every proper prefix fails with a ProtocolError, never a crash", arguments: 0..<samples.count)
    func prefixes(index: Int) {
        let message = Self.samples[index]
        let bytes = message.encoded
        for cut in 0..<bytes.count {
            #expect(throws: ProtocolError.self) { try type(of: message).init(decoding: Array(bytes[0..<cut])) }
        }
    }

    @Test("trailing bytes are rejected")
    func trailingBytes() {
        #expect(throws: ProtocolError.self) { try CuMemAlloc_v2Request(decoding: CuMemAlloc_v2Request(bytesize: 1).encoded + [0]) }
    }

    @Test("a list count beyond the payload is rejected before allocating")
    func hugeListCount() {
        var writer = WireWriter()
        writer.write(UInt64(1))
        writer.write(UInt32.max)  // kernels
        #expect(throws: ProtocolError.self) { try ModuleLoadReply(decoding: writer.bytes) }
    }

    @Test("a blob above the bulk limit is rejected")
    func oversizedBlob() {
        var writer = WireWriter()
        writer.write(UInt32(ProtocolLimits.maximumBulkBytes + 1))
        #expect(throws: ProtocolError.self) { try MemcpyDtoHReply(decoding: writer.bytes) }
    }

    @Test("the handshake rejects a wrong magic and a wrong version")
    func handshakeChecks() {
        #expect(throws: ProtocolError.self) { try Hello(decoding: Hello(magic: 1, clientCUDAVersion: 0, client: "").encoded) }
        #expect(throws: ProtocolError.self) { try Hello(decoding: Hello(version: 99, clientCUDAVersion: 0, client: "").encoded) }
    }
}
