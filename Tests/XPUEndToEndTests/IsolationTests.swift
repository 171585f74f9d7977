import CXPUDriver
import Foundation
import Testing
import XPUProtocol
import XPUTransport

#if canImport(Glibc)
    import Glibc
#endif

/// Tenants of one server cannot reach each other (proto/SECURITY.md, "Isolation"): a session names
/// only its own handles and memory, whatever its client sends, and one tenant's fault, intrusion
/// or death leaves every other tenant's results and memory as they were.
@Suite("Isolation", .serialized)
struct IsolationTests {
    @Test("a tenant that guesses another's pointers and handles gets errors, and the other's data is unchanged")
    func guessingTenant() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let go = harness.workDirectory.appendingPathComponent("isolation-go-\(UUID().uuidString)").path
        let owner = try harness.startRemote("tenant_owner", [go], server: server)
        defer { owner.stop(terminateFirst: false) }
        try #require(owner.waitForOutput(containing: "ready", timeout: .seconds(60)), "owner:\n\(owner.stdout.text)\n\(owner.stderr.text)")
        let published = Dictionary(
            uniqueKeysWithValues: owner.stdout.text.split(separator: "\n").compactMap { line -> (String, String)? in
                let fields = line.split(separator: " ")
                return fields.count == 3 && fields[0] == "publish" ? (String(fields[1]), String(fields[2])) : nil
            })
        let names = ["context", "module", "function", "stream", "event", "data", "freed", "global"]
        let values = try names.map { name in try #require(published[name], "owner published no \(name)") }

        let intruder = try harness.runRemote("tenant_intruder", values, server: server)
        #expect(intruder.status == .exited(0), "intruder:\n\(intruder.stdout)\n\(intruder.stderr)")
        #expect(intruder.stdout.contains("the fault: CUDA_ERROR_ILLEGAL_ADDRESS"), "\(intruder.stdout)")

        #expect(FileManager.default.createFile(atPath: go, contents: nil))
        let verdict = owner.finish(timeout: harness.programTimeout)
        #expect(verdict.status == .exited(0), "owner:\n\(verdict.stdout)\n\(verdict.stderr)")
        #expect(verdict.stdout.contains("data unchanged: yes") && verdict.stdout.contains("all checks passed"), "\(verdict.stdout)")
    }

    /// One row of `craftedClient`: what the intruding session sends, and the status it must get.
    struct Attempt {
        var name: String
        var expected: CUresult
        var send: (RawClient) throws -> UInt32
    }

    @Test("the server refuses another session's pointers and handles, whatever a crafted client sends")
    func craftedClient() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }

        // The owner: memory with a known pattern, a freed range, a module with a variable, a
        // stream and an event.
        let owner = try RawClient(server.address)
        let ownerSession = try owner.openSession()
        let module = try owner.reply(ModuleLoadRequest(image: Array(Self.ptx.utf8)))
        let poke = try #require(module.kernels.first { $0.name == "tenant_poke" }).function
        let global = try owner.reply(CuModuleGetGlobal_v2Request(hmod: module.module, name: "tenant_counter")).dptr
        let pattern = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let data = try owner.reply(CuMemAlloc_v2Request(bytesize: 4096)).dptr
        _ = try owner.reply(MemcpyHtoDRequest(destination: data, remainingBytes: 4096, stream: 0, asynchronous: 0, data: pattern))
        let freed = try owner.reply(CuMemAlloc_v2Request(bytesize: 4096)).dptr
        let stream: UInt64 = 1 << 63 | ownerSession << 32 | 1
        let event: UInt64 = stream + 1
        _ = try owner.reply(StreamCreateRequest(stream: stream, flags: 0))
        _ = try owner.reply(EventCreateRequest(event: event, flags: 0))

        // The intruder: a session of its own, with memory and a kernel of its own.
        let intruder = try RawClient(server.address)
        try intruder.openSession()
        let mine = try intruder.reply(CuMemAlloc_v2Request(bytesize: 4096)).dptr
        let ownModule = try intruder.reply(ModuleLoadRequest(image: Array(Self.ptx.utf8)))
        let ownPoke = try #require(ownModule.kernels.first { $0.name == "tenant_poke" }).function
        // Freed only now, so that none of the intruder's own memory lands in it.
        _ = try owner.reply(CuMemFree_v2Request(dptr: freed))

        func status<R: CallRequest>(_ request: R) -> (RawClient) throws -> UInt32 { { try $0.call(request).0 } }
        /// Fire-and-forget: the error is latched and comes back with the next reply.
        func posted<R: CallRequest>(_ request: R) -> (RawClient) throws -> UInt32 {
            { client in
                try client.post(request)
                return try client.call(CuCtxSynchronizeRequest()).0
            }
        }
        func inContext<R: CallRequest>(_ context: UInt64, _ request: R) -> (RawClient) throws -> UInt32 {
            { client in
                let own = client.context
                defer { client.context = own }
                client.context = context
                return try client.call(request).0
            }
        }
        let bytes16 = [UInt8](repeating: 0xEE, count: 16)
        let invalid = CUDA_ERROR_INVALID_VALUE, badHandle = CUDA_ERROR_INVALID_HANDLE, badContext = CUDA_ERROR_INVALID_CONTEXT
        let attempts: [Attempt] = [
            // Memory: exact, interior, freed and module-variable addresses.
            Attempt(name: "HtoD to their allocation", expected: invalid, send: status(MemcpyHtoDRequest(destination: data, remainingBytes: 16, stream: 0, asynchronous: 0, data: bytes16))),
            Attempt(name: "HtoD inside their allocation", expected: invalid, send: status(MemcpyHtoDRequest(destination: data + 100, remainingBytes: 16, stream: 0, asynchronous: 0, data: bytes16))),
            Attempt(name: "async HtoD to their allocation", expected: invalid, send: status(MemcpyHtoDRequest(destination: data, remainingBytes: 16, stream: 0, asynchronous: 1, data: bytes16))),
            Attempt(name: "HtoD to their freed allocation", expected: invalid, send: status(MemcpyHtoDRequest(destination: freed, remainingBytes: 16, stream: 0, asynchronous: 0, data: bytes16))),
            Attempt(name: "HtoD to their module variable", expected: invalid, send: status(MemcpyHtoDRequest(destination: global, remainingBytes: 4, stream: 0, asynchronous: 0, data: [1, 2, 3, 4]))),
            Attempt(name: "posted HtoD to their allocation", expected: invalid, send: posted(MemcpyHtoDRequest(destination: data, remainingBytes: 16, stream: 0, asynchronous: 1, data: bytes16))),
            Attempt(name: "DtoH from their allocation", expected: invalid, send: status(MemcpyDtoHRequest(source: data, count: 16, remainingBytes: 16, stream: 0, asynchronous: 0))),
            Attempt(name: "DtoH inside their allocation", expected: invalid, send: status(MemcpyDtoHRequest(source: data + 100, count: 16, remainingBytes: 16, stream: 0, asynchronous: 1))),
            Attempt(name: "DtoH from their module variable", expected: invalid, send: status(MemcpyDtoHRequest(source: global, count: 4, remainingBytes: 4, stream: 0, asynchronous: 0))),
            Attempt(name: "DtoD from their allocation", expected: invalid, send: status(CuMemcpyDtoD_v2Request(dstDevice: mine, srcDevice: data, ByteCount: 16))),
            Attempt(name: "DtoD to their allocation", expected: invalid, send: status(CuMemcpyDtoD_v2Request(dstDevice: data, srcDevice: mine, ByteCount: 16))),
            Attempt(name: "posted DtoD to their allocation", expected: invalid, send: posted(CuMemcpyDtoDAsync_v2Request(dstDevice: data, srcDevice: mine, ByteCount: 16, hStream: 0))),
            Attempt(name: "memset D8 on their allocation", expected: invalid, send: status(CuMemsetD8_v2Request(dstDevice: data, uc: 0xFF, N: 16))),
            Attempt(name: "memset D32 inside their allocation", expected: invalid, send: status(CuMemsetD32_v2Request(dstDevice: data + 64, ui: 0, N: 4))),
            Attempt(name: "memset D8 on their freed allocation", expected: invalid, send: status(CuMemsetD8_v2Request(dstDevice: freed, uc: 0xFF, N: 16))),
            Attempt(name: "posted memset D8 on their allocation", expected: invalid, send: posted(CuMemsetD8AsyncRequest(dstDevice: data, uc: 0, N: 16, hStream: 0))),
            Attempt(name: "posted memset D32 on their allocation", expected: invalid, send: posted(CuMemsetD32AsyncRequest(dstDevice: data, ui: 0, N: 4, hStream: 0))),
            Attempt(name: "free their allocation", expected: invalid, send: status(CuMemFree_v2Request(dptr: data))),
            Attempt(name: "posted free of their allocation", expected: invalid, send: posted(CuMemFree_v2Request(dptr: data))),
            Attempt(name: "pointer attribute of their allocation", expected: invalid, send: status(PointerGetAttributeRequest(attribute: CU_POINTER_ATTRIBUTE_MEMORY_TYPE.rawValue, pointer: data))),
            // Their context, named in the header or as an argument.
            Attempt(name: "allocate in their context", expected: badContext, send: inContext(owner.context, CuMemAlloc_v2Request(bytesize: 16))),
            Attempt(name: "synchronize their context", expected: badContext, send: inContext(owner.context, CuCtxSynchronizeRequest())),
            Attempt(name: "destroy their context", expected: badContext, send: status(CuCtxDestroy_v2Request(ctx: owner.context))),
            // Their module, function, stream and event.
            Attempt(name: "variable of their module", expected: badHandle, send: status(CuModuleGetGlobal_v2Request(hmod: module.module, name: "tenant_counter"))),
            Attempt(name: "unload their module", expected: badHandle, send: status(CuModuleUnloadRequest(hmod: module.module))),
            Attempt(name: "attribute of their function", expected: badHandle, send: status(CuFuncGetAttributeRequest(attrib: CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK.rawValue, hfunc: poke))),
            Attempt(name: "launch their function", expected: badHandle, send: status(Self.poke(poke, at: mine, stream: 0))),
            Attempt(name: "posted launch of their function", expected: badHandle, send: posted(Self.poke(poke, at: mine, stream: 0))),
            Attempt(name: "launch on their stream", expected: badHandle, send: status(Self.poke(ownPoke, at: mine, stream: stream))),
            Attempt(name: "query their stream", expected: badHandle, send: status(CuStreamQueryRequest(hStream: stream))),
            Attempt(name: "synchronize their stream", expected: badHandle, send: status(CuStreamSynchronizeRequest(hStream: stream))),
            Attempt(name: "destroy their stream", expected: badHandle, send: status(CuStreamDestroy_v2Request(hStream: stream))),
            Attempt(name: "record their event", expected: badHandle, send: status(CuEventRecordRequest(hEvent: event, hStream: 0))),
            Attempt(name: "query their event", expected: badHandle, send: status(CuEventQueryRequest(hEvent: event))),
            Attempt(name: "synchronize their event", expected: badHandle, send: status(CuEventSynchronizeRequest(hEvent: event))),
            Attempt(name: "elapsed time of their event", expected: badHandle, send: status(CuEventElapsedTime_v2Request(hStart: event, hEnd: event))),
            Attempt(name: "destroy their event", expected: badHandle, send: status(CuEventDestroy_v2Request(hEvent: event))),
            // A stream id the client mints is a name in its own session: one that equals theirs
            // is a stream of its own, and destroying it leaves theirs alone.
            Attempt(name: "create a stream under their stream's id", expected: CUDA_SUCCESS, send: status(StreamCreateRequest(stream: stream, flags: 0))),
            Attempt(name: "destroy the stream of that id", expected: CUDA_SUCCESS, send: status(CuStreamDestroy_v2Request(hStream: stream))),
            Attempt(name: "own context unharmed", expected: CUDA_SUCCESS, send: status(CuCtxSynchronizeRequest())),
            // Their pointer in a kernel of its own: its context has no such memory, so it faults.
            Attempt(name: "launch own kernel on their pointer", expected: CUDA_SUCCESS, send: status(Self.poke(ownPoke, at: data, stream: 0))),
            Attempt(name: "the fault", expected: CUDA_ERROR_ILLEGAL_ADDRESS, send: status(CuCtxSynchronizeRequest())),
            Attempt(name: "sticky in its own context", expected: CUDA_ERROR_ILLEGAL_ADDRESS, send: status(CuMemAlloc_v2Request(bytesize: 16))),
        ]
        for attempt in attempts {
            let got = try attempt.send(intruder)
            #expect(got == attempt.expected.rawValue, "\(attempt.name): status \(got), expected \(attempt.expected.rawValue)")
        }

        // The owner's data and objects are as they were, and its context is clean.
        #expect(try owner.reply(MemcpyDtoHRequest(source: data, count: 4096, remainingBytes: 4096, stream: 0, asynchronous: 0)).data == pattern)
        #expect(try owner.reply(MemcpyDtoHRequest(source: global, count: 4, remainingBytes: 4, stream: 0, asynchronous: 0)).data == [0, 0, 0, 0])
        _ = try owner.reply(Self.poke(poke, at: data, value: 42, stream: stream))
        _ = try owner.reply(CuEventRecordRequest(hEvent: event, hStream: stream))
        _ = try owner.reply(CuEventSynchronizeRequest(hEvent: event))
        _ = try owner.reply(CuStreamQueryRequest(hStream: stream))
        let word = try owner.reply(MemcpyDtoHRequest(source: data, count: 4, remainingBytes: 4, stream: 0, asynchronous: 0)).data
        #expect(word == [42, 0, 0, 0], "the owner's own kernel on its own stream")
        #expect(try owner.call(CuCtxSynchronizeRequest()).0 == CUDA_SUCCESS.rawValue)
    }

    @Test("a launch naming a stream or function that is gone is refused, and one naming a stream re-created under its id reaches the new one")
    func launchAfterRemoval() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let client = try RawClient(server.address)
        let session = try client.openSession()
        let module = try client.reply(ModuleLoadRequest(image: Array(Self.ptx.utf8)))
        let poke = try #require(module.kernels.first { $0.name == "tenant_poke" }).function
        let data = try client.reply(CuMemAlloc_v2Request(bytesize: 4096)).dptr
        let stream: UInt64 = 1 << 63 | session << 32 | 1
        _ = try client.reply(StreamCreateRequest(stream: stream, flags: 0))

        // The server remembers the last launch's lookup; removing what it found must end that.
        for _ in 0..<3 { try client.post(Self.poke(poke, at: data, stream: stream)) }
        #expect(try client.call(CuCtxSynchronizeRequest()).0 == CUDA_SUCCESS.rawValue)
        _ = try client.reply(CuStreamDestroy_v2Request(hStream: stream))
        #expect(try client.call(Self.poke(poke, at: data, stream: stream)).0 == CUDA_ERROR_INVALID_HANDLE.rawValue)
        // A client-minted id may name a new stream once the old one is gone: launches reach the new one.
        _ = try client.reply(StreamCreateRequest(stream: stream, flags: 0))
        #expect(try client.call(Self.poke(poke, at: data, stream: stream)).0 == CUDA_SUCCESS.rawValue)
        _ = try client.reply(CuStreamDestroy_v2Request(hStream: stream))
        _ = try client.reply(StreamCreateRequest(stream: stream, flags: 0))
        #expect(try client.call(Self.poke(poke, at: data, stream: stream)).0 == CUDA_SUCCESS.rawValue)
        for _ in 0..<3 { try client.post(Self.poke(poke, at: data, stream: 0)) }
        #expect(try client.call(CuCtxSynchronizeRequest()).0 == CUDA_SUCCESS.rawValue)
        _ = try client.reply(CuModuleUnloadRequest(hmod: module.module))
        #expect(try client.call(Self.poke(poke, at: data, stream: 0)).0 == CUDA_ERROR_INVALID_HANDLE.rawValue)
        #expect(try client.call(CuCtxSynchronizeRequest()).0 == CUDA_SUCCESS.rawValue)
    }

    @Test("launches that arrive together are served as a burst: the first failure is latched, later launches run, a malformed one ends the session")
    func launchBursts() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let client = try RawClient(server.address)
        try client.openSession()
        let module = try client.reply(ModuleLoadRequest(image: Array(Self.ptx.utf8)))
        let poke = try #require(module.kernels.first { $0.name == "tenant_poke" }).function
        let data = try client.reply(CuMemAlloc_v2Request(bytesize: 4096)).dptr
        _ = try client.reply(MemcpyHtoDRequest(destination: data, remainingBytes: 16, stream: 0, asynchronous: 0, data: [UInt8](repeating: 0, count: 16)))

        /// A fire-and-forget frame, encoded (the burst goes out in one send, so the server finds
        /// the frames behind the first one already buffered).
        func frame<R: CallRequest>(_ request: R) -> [UInt8] {
            client.sequence += 1
            let payload = request.encoded
            var writer = WireWriter()
            FrameHeader(
                length: UInt32(payload.count), call: R.call.rawValue, flags: .noReply, sequence: client.sequence,
                context: client.context
            ).encode(into: &writer)
            writer.writeFixed(payload)
            return writer.bytes
        }
        var wrongSize = Self.poke(poke, at: data, stream: 0)
        wrongSize.parameters.removeLast()
        let burst =
            frame(Self.poke(poke, at: data, value: 1, stream: 0)) + frame(Self.poke(poke, at: data + 4, value: 2, stream: 0))
            + frame(Self.poke(poke ^ 0x40, at: data, stream: 0)) + frame(Self.poke(poke, at: data + 8, value: 3, stream: 0))
            + frame(wrongSize) + frame(Self.poke(poke, at: data + 12, value: 4, stream: 0))
        try client.sendRaw(burst)
        // The first failure (an unknown function) comes back, not the later one (a parameter
        // block of the wrong size); every launch that was valid ran, in order.
        #expect(try client.call(CuCtxSynchronizeRequest()).0 == CUDA_ERROR_INVALID_HANDLE.rawValue)
        let words = try client.reply(MemcpyDtoHRequest(source: data, count: 16, remainingBytes: 16, stream: 0, asynchronous: 0)).data
        #expect(words == [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0])
        #expect(try client.call(CuCtxSynchronizeRequest()).0 == CUDA_SUCCESS.rawValue)

        // A launch frame too short for its fields, behind valid ones: a protocol violation.
        client.sequence += 1
        var truncated = WireWriter()
        FrameHeader(length: 8, call: CallID.launchKernel.rawValue, flags: .noReply, sequence: client.sequence, context: client.context)
            .encode(into: &truncated)
        truncated.write(poke)
        try client.sendRaw(frame(Self.poke(poke, at: data, value: 5, stream: 0)) + frame(Self.poke(poke, at: data, value: 6, stream: 0)) + truncated.bytes)
        #expect(client.isClosedByServer())
        // The server goes on serving others.
        #expect(try RawClient.freeDeviceMemory(at: server.address) > 0)
    }

    @Test("bulk chunks that move in place are checked first: large or compressed ones to another tenant, or past one's own end, write nothing")
    func inPlaceChunks() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let size = 1 << 20
        let owner = try RawClient(server.address)
        try owner.openSession()
        let pattern = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        let theirs = try owner.reply(CuMemAlloc_v2Request(bytesize: UInt64(size))).dptr
        _ = try owner.reply(MemcpyHtoDRequest(destination: theirs, remainingBytes: UInt64(size), stream: 0, asynchronous: 0, data: pattern))

        let intruder = try RawClient(server.address)
        try intruder.openSession(features: [.fireAndForget, .lz4])
        let ownSize = 64 << 10
        let mine = try intruder.reply(CuMemAlloc_v2Request(bytesize: UInt64(ownSize))).dptr
        let own = [UInt8](repeating: 0x3C, count: ownSize)
        _ = try intruder.reply(MemcpyHtoDRequest(destination: mine, remainingBytes: UInt64(ownSize), stream: 0, asynchronous: 0, data: own))

        /// A host-to-device chunk of `count` bytes of 0xEE, LZ4-compressed (a run) when `compressed`.
        func write(_ destination: UInt64, count: Int, remaining: Int, compressed: Bool, asynchronous: Bool = false) throws -> UInt32 {
            guard compressed else {
                return try intruder.call(
                    MemcpyHtoDRequest(
                        destination: destination, remainingBytes: UInt64(remaining), stream: 0, asynchronous: asynchronous ? 1 : 0,
                        data: [UInt8](repeating: 0xEE, count: count))
                ).0
            }
            var packed = [UInt8](repeating: 0, count: LZ4Run.encodedCount(count))
            let written = packed.withUnsafeMutableBytes { LZ4Run.encode(0xEE, count: count, into: $0) }
            #expect(written == packed.count)
            intruder.sequence += 1
            let prefix = MemcpyHtoDRequest.framePrefix(
                sequence: intruder.sequence, flags: .compressed, context: intruder.context, destination: destination,
                remainingBytes: UInt64(remaining), stream: 0, asynchronous: asynchronous, dataCount: packed.count, rawCount: count)
            try intruder.sendRaw(prefix + packed)
            let (header, _) = try intruder.channel.receive()
            #expect(header.sequence == intruder.sequence && header.flags.contains(.reply))
            return header.status
        }

        let invalid = CUDA_ERROR_INVALID_VALUE.rawValue
        #expect(try write(theirs, count: size, remaining: size, compressed: false) == invalid, "1 MiB to their memory")
        #expect(try write(theirs, count: size, remaining: size, compressed: true) == invalid, "compressed, to their memory")
        #expect(try write(theirs + 4096, count: 4096, remaining: 4096, compressed: false, asynchronous: true) == invalid, "async, inside theirs")
        #expect(try write(mine, count: ownSize, remaining: size, compressed: true) == invalid, "compressed, the copy overruns my memory")
        #expect(try write(mine, count: 2 * ownSize, remaining: 2 * ownSize, compressed: false) == invalid, "a chunk larger than my memory")
        #expect(try write(mine + 4096, count: ownSize, remaining: ownSize, compressed: false) == invalid, "a chunk past my end")
        let read = try intruder.call(MemcpyDtoHRequest(source: theirs, count: UInt64(size), remainingBytes: UInt64(size), stream: 0, asynchronous: 0))
        #expect(read.0 == invalid, "1 MiB from their memory")

        // Nothing was written, on either side; a compressed chunk inside one's own memory lands.
        #expect(try intruder.reply(MemcpyDtoHRequest(source: mine, count: UInt64(ownSize), remainingBytes: UInt64(ownSize), stream: 0, asynchronous: 0)).data == own)
        #expect(try owner.reply(MemcpyDtoHRequest(source: theirs, count: UInt64(size), remainingBytes: UInt64(size), stream: 0, asynchronous: 0)).data == pattern)
        #expect(try write(mine, count: ownSize, remaining: ownSize, compressed: true) == CUDA_SUCCESS.rawValue)
        let landed = try intruder.reply(MemcpyDtoHRequest(source: mine, count: UInt64(ownSize), remainingBytes: UInt64(ownSize), stream: 0, asynchronous: 0))
        #expect(landed.data == [UInt8](repeating: 0xEE, count: ownSize))
    }

    @Test("a module variable's range goes with its module: memory the driver gives to another tenant stays out of reach")
    func unloadedModuleVariable() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let first = try RawClient(server.address)
        try first.openSession()
        let module = try first.reply(ModuleLoadRequest(image: Array(Self.ptx.utf8)))
        let global = try first.reply(CuModuleGetGlobal_v2Request(hmod: module.module, name: "tenant_counter")).dptr
        _ = try first.reply(CuModuleUnloadRequest(hmod: module.module))

        // The simulated device allocates first fit: the next allocation reuses the variable's place.
        let second = try RawClient(server.address)
        try second.openSession()
        let data = try second.reply(CuMemAlloc_v2Request(bytesize: 512)).dptr
        #expect(data == global, "the test needs the second tenant's memory where the variable was")
        let pattern = [UInt8](repeating: 0x5A, count: 512)
        _ = try second.reply(MemcpyHtoDRequest(destination: data, remainingBytes: 512, stream: 0, asynchronous: 0, data: pattern))

        let write = try first.call(MemcpyHtoDRequest(destination: global, remainingBytes: 4, stream: 0, asynchronous: 0, data: [1, 2, 3, 4])).0
        #expect(write == CUDA_ERROR_INVALID_VALUE.rawValue)
        let read = try first.call(MemcpyDtoHRequest(source: global, count: 4, remainingBytes: 4, stream: 0, asynchronous: 0)).0
        #expect(read == CUDA_ERROR_INVALID_VALUE.rawValue)
        #expect(try second.reply(MemcpyDtoHRequest(source: data, count: 512, remainingBytes: 512, stream: 0, asynchronous: 0)).data == pattern)
    }

    @Test("a working tenant is not disturbed by neighbours that fault, intrude or are killed, and their memory comes back")
    func faultingNeighbours() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let free0 = try RawClient.freeDeviceMemory(at: server.address)
        let stop = harness.workDirectory.appendingPathComponent("isolation-stop-\(UUID().uuidString)").path
        let worker = try harness.startRemote("tenant_worker", [stop], server: server)
        defer { worker.stop(terminateFirst: false) }
        try #require(worker.waitForOutput(containing: "ready", timeout: .seconds(60)), "worker:\n\(worker.stdout.text)\n\(worker.stderr.text)")

        // While it works: a tenant killed with SIGKILL mid-copy, one with a slice killed while its
        // kernels are queued, and tenants whose kernels write to addresses they do not own.
        let holder = try harness.startRemote("hold_and_copy", ["64"], server: server)
        let storm = try harness.startRemote("launch_storm", ["32"], server: server, environment: ["XPU_SLICE": "mem=128MiB"])
        let faulting = try (0..<3).map { _ in try harness.startRemote("illegal_address", server: server) }
        defer { for child in [holder, storm] + faulting { child.stop(terminateFirst: false) } }
        for victim in [holder, storm] {
            try #require(victim.waitForOutput(containing: "ready", timeout: .seconds(60)), "\(victim.command):\n\(victim.stderr.text)")
            victim.signalGroup(SIGKILL)
            #expect(victim.wait(timeout: .seconds(10)) == .signaled(SIGKILL))
        }
        for tenant in faulting {
            let output = tenant.finish(timeout: harness.programTimeout)
            #expect(output.status == .exited(0), "faulting tenant:\n\(output.stdout)\n\(output.stderr)")
            #expect(output.stdout.contains("synchronize: CUDA_ERROR_ILLEGAL_ADDRESS"), "\(output.stdout)")
        }

        #expect(FileManager.default.createFile(atPath: stop, contents: nil))
        let result = worker.finish(timeout: harness.programTimeout)
        #expect(result.status == .exited(0), "worker:\n\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains(" correct"), "\(result.stdout)")

        // Everything the dead and faulted tenants held is freed.
        #expect(server.waitUntilSessionsReleased(), "every tenant's session must be released")
        let free = try RawClient.freeDeviceMemory(at: server.address)
        #expect(free == free0, "free device memory \(free), at the start \(free0)")
    }

    /// `tenant_poke(address, value)` as a launch request (parameters: u64 address, u32 value).
    static func poke(_ function: UInt64, at address: UInt64, value: UInt32 = 0xDEAD_BEEF, stream: UInt64) -> LaunchKernelRequest {
        var parameters = WireWriter()
        parameters.write(address)
        parameters.write(value)
        return LaunchKernelRequest(
            function: function, gridX: 1, gridY: 1, gridZ: 1, blockX: 1, blockY: 1, blockZ: 1, sharedMemBytes: 0,
            stream: stream, parameters: parameters.bytes)
    }

    /// The kernels of Tests/programs/tenant.h: tenant_poke stores a word at any address, and
    /// tenant_counter is a module variable.
    static let ptx = """
        .version 7.0
        .target sm_80
        .address_size 64

        .global .align 4 .u32 tenant_counter;

        .visible .entry tenant_poke(
        \t.param .u64 tenant_poke_address,
        \t.param .u32 tenant_poke_value
        )
        {
        \t.reg .b32 \t%r<2>;
        \t.reg .b64 \t%rd<3>;
        \tld.param.u64 \t%rd1, [tenant_poke_address];
        \tld.param.u32 \t%r1, [tenant_poke_value];
        \tcvta.to.global.u64 \t%rd2, %rd1;
        \tst.global.u32 \t[%rd2], %r1;
        \tret;
        }

        """
}
