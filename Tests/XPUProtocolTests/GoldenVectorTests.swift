import Foundation
import Testing
import XPUProtocol

/// Whole frames, byte for byte, as proto/vectors/ records them: a peer written in another
/// language can check its codec against the same files. `XPU_UPDATE_VECTORS=1 swift test`
/// rewrites them after a deliberate protocol change (which must also bump the version).
@Suite("Golden vectors")
struct GoldenVectorTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("proto/vectors")

    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var description: String
        var header: FrameHeader
        var payload: [UInt8]
        var decode: @Sendable ([UInt8]) throws -> [UInt8]

        var testDescription: String { name }

        var frame: [UInt8] {
            var header = header
            header.length = UInt32(payload.count)
            return header.encoded + payload
        }
    }

    static func vector<M: WireMessage>(
        _ name: String, _ description: String, call: CallID, flags: FrameFlags = [], sequence: UInt32, status: UInt32 = 0,
        context: UInt64 = 0, _ message: M
    ) -> Vector {
        Vector(
            name: name, description: description,
            header: FrameHeader(length: 0, call: call.rawValue, flags: flags, sequence: sequence, status: status, context: context),
            payload: message.encoded, decode: { try M(decoding: $0).encoded })
    }

    static let vectors: [Vector] = [
        vector(
            "handshake-hello", "client Hello: features 1, CUDA 13000, slice \"mem=1GiB\", client \"demo pid 1\"",
            call: .handshake, sequence: 0, Hello(features: 1, clientCUDAVersion: 13000, slice: "mem=1GiB", client: "demo pid 1")),
        vector(
            "handshake-welcome", "server Welcome: features 1, session id 7, driver 13000", call: .handshake, flags: .reply,
            sequence: 0, Welcome(features: 1, session: 7, driverVersion: 13000)),
        vector(
            "cuMemAlloc_v2-request", "cuMemAlloc_v2(1 MiB) in context 0x1000, sequence 3", call: .cuMemAlloc_v2, sequence: 3,
            context: 0x1000, CuMemAlloc_v2Request(bytesize: 1 << 20)),
        vector(
            "cuMemAlloc_v2-reply", "its reply: CUDA_SUCCESS, dptr 0x7f0000000200", call: .cuMemAlloc_v2, flags: .reply, sequence: 3,
            CuMemAlloc_v2Reply(dptr: 0x7F00_0000_0200)),
        vector(
            "cuMemFree_v2-error-reply", "a failed call: status 1 (CUDA_ERROR_INVALID_VALUE), empty payload", call: .cuMemFree_v2,
            flags: .reply, sequence: 4, status: 1, EmptyReply()),
        vector(
            "memcpyHtoD-fire-and-forget", "a fire-and-forget copy chunk: 4 bytes to 0x7f0000000000 of 8 remaining, stream 0x1001",
            call: .memcpyHtoD, flags: .noReply, sequence: 5, context: 0x1000,
            MemcpyHtoDRequest(destination: 0x7F00_0000_0000, remainingBytes: 8, stream: 0x1001, asynchronous: 1, data: [1, 2, 3, 4])),
        vector(
            "moduleLoad-reply", "module 0x1002 with kernel vadd(ptr, ptr, ptr, int) at function 0x1003, up to 1024 threads, no static shared memory", call: .moduleLoad,
            flags: .reply, sequence: 6,
            ModuleLoadReply(
                module: 0x1002,
                kernels: [
                    Kernel(
                        function: 0x1003, name: "vadd",
                        parameters: [.init(offset: 0, size: 8), .init(offset: 8, size: 8), .init(offset: 16, size: 8), .init(offset: 24, size: 4)],
                        maxThreadsPerBlock: 1024, staticSharedBytes: 0)
                ])),
        vector(
            "launchKernel-request", "launch 0x1003 on a 4x1x1 grid of 256x1x1 blocks, default stream, 28 parameter bytes",
            call: .launchKernel, sequence: 7, context: 0x1000,
            LaunchKernelRequest(
                function: 0x1003, gridX: 4, gridY: 1, gridZ: 1, blockX: 256, blockY: 1, blockZ: 1, sharedMemBytes: 0, stream: 0,
                parameters: Array(0..<28))),
    ]

    @Test("each frame matches its vector byte for byte and decodes back", arguments: vectors)
    func vectorMatches(vector: Vector) throws {
        let url = Self.directory.appendingPathComponent("\(vector.name).hex")
        if ProcessInfo.processInfo.environment["XPU_UPDATE_VECTORS"] == "1" {
            try Self.render(vector).write(to: url, atomically: true, encoding: .utf8)
        }
        let recorded = try Self.parse(String(contentsOf: url, encoding: .utf8))
        #expect(recorded == vector.frame, "\(vector.name): encoding differs from proto/vectors")
        let header = try FrameHeader(decoding: Array(recorded[0..<FrameHeader.size]))
        #expect(Int(header.length) == recorded.count - FrameHeader.size)
        #expect(try vector.decode(Array(recorded[FrameHeader.size...])) == vector.payload)
    }

    static func render(_ vector: Vector) -> String {
        var text = "# \(vector.description)\n# header (24 bytes)\n"
        let frame = vector.frame
        text += hex(frame[0..<FrameHeader.size]) + "\n# payload (\(frame.count - FrameHeader.size) bytes)\n"
        var offset = FrameHeader.size
        while offset < frame.count {
            text += hex(frame[offset..<min(offset + 16, frame.count)]) + "\n"
            offset += 16
        }
        return text
    }

    static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            .joined(separator: " ")
    }

    static func parse(_ text: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            for token in line.split(separator: " ") {
                guard let byte = UInt8(token, radix: 16) else { throw VectorError(token: String(token)) }
                bytes.append(byte)
            }
        }
        return bytes
    }

    struct VectorError: Error { var token: String }
}

@Suite("Bulk frames")
struct BulkFrameTests {
    @Test("a copy frame sent as prefix plus data is byte for byte the encoded request")
    func prefixMatchesEncoding() throws {
        let data: [UInt8] = Array(0..<100)
        let request = MemcpyHtoDRequest(destination: 0x7F00_0000_0000, remainingBytes: 300, stream: 5, asynchronous: 1, data: data)
        var whole = WireWriter()
        whole.appendFrame(FrameHeader(length: 0, call: CallID.memcpyHtoD.rawValue, flags: .noReply, sequence: 9, context: 3)) {
            request.encode(into: &$0)
        }
        let prefix = MemcpyHtoDRequest.framePrefix(
            sequence: 9, flags: .noReply, context: 3, destination: 0x7F00_0000_0000, remainingBytes: 300, stream: 5,
            asynchronous: true, dataCount: data.count)
        #expect(prefix + data == whole.bytes)
    }
}

@Suite("Launch frames")
struct LaunchFrameTests {
    @Test("a launch written in place is byte for byte the encoded request")
    func inPlaceMatchesEncoding() {
        let parameters: [UInt8] = Array(0..<28)
        let request = LaunchKernelRequest(
            function: 0x1003, gridX: 4, gridY: 2, gridZ: 1, blockX: 256, blockY: 1, blockZ: 1, sharedMemBytes: 64, stream: 9,
            parameters: parameters)
        var whole = WireWriter()
        whole.appendFrame(FrameHeader(length: 0, call: CallID.launchKernel.rawValue, flags: .noReply, sequence: 3, context: 7)) {
            request.encode(into: &$0)
        }
        var inPlace = WireWriter()
        LaunchKernelRequest.appendFrame(
            to: &inPlace, flags: .noReply, sequence: 3, context: 7, function: 0x1003, grid: (4, 2, 1), block: (256, 1, 1),
            sharedMemBytes: 64, stream: 9, parameterBytes: parameters.count
        ) { block in
            parameters.withUnsafeBytes { block.copyMemory(from: $0) }
        }
        #expect(inPlace.bytes == whole.bytes)
    }

    @Test("a launch read in place accepts and rejects exactly what the request decoder does")
    func readInPlaceMatchesDecoding() {
        var generator = SystemRandomNumberGenerator()
        for parameterCount in [0, 1, 24, 4096] {
            let request = LaunchKernelRequest(
                function: .random(in: 0...UInt64.max, using: &generator), gridX: 7, gridY: 65535, gridZ: 3, blockX: 1024,
                blockY: 1, blockZ: 64, sharedMemBytes: 48 << 10, stream: .random(in: 0...UInt64.max, using: &generator),
                parameters: (0..<parameterCount).map { _ in .random(in: 0...255, using: &generator) })
            let bytes = request.encoded
            // Whole, cut short at every length, with trailing bytes, and with a parameter count
            // past the protocol's limit.
            var cases = (0...bytes.count).map { Array(bytes.prefix($0)) } + [bytes + [0], bytes + [1, 2, 3]]
            var oversized = bytes
            oversized.replaceSubrange(44..<48, with: [0xFF, 0xFF, 0xFF, 0x7F])
            cases.append(oversized)
            for payload in cases {
                var reader = WireReader(payload)
                let decoded = Result { () throws(ProtocolError) in
                    let decoded = try LaunchKernelRequest(from: &reader)
                    try reader.expectEnd()
                    return decoded
                }
                payload.withUnsafeBytes { raw in
                    let frame = Result { () throws(ProtocolError) in try LaunchKernelFrame(decoding: raw) }
                    switch (decoded, frame) {
                    case (.success(let expected), .success(let frame)):
                        let seen = LaunchKernelRequest(
                            function: frame.function, gridX: frame.grid.0, gridY: frame.grid.1, gridZ: frame.grid.2,
                            blockX: frame.block.0, blockY: frame.block.1, blockZ: frame.block.2,
                            sharedMemBytes: frame.sharedMemBytes, stream: frame.stream, parameters: Array(frame.parameters))
                        #expect(seen == expected)
                    case (.failure(let expected), .failure(let error)):
                        #expect(error.code == expected.code, "\(payload.count) bytes: \(error) vs \(expected)")
                    default:
                        Issue.record("\(payload.count) of \(bytes.count) bytes: decoder \(decoded), in place \(frame)")
                    }
                }
            }
        }
    }
}
