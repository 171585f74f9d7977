import Foundation
import Synchronization
import Testing
import XPUProtocol
import XPUTransport

#if canImport(Glibc)
    import Glibc
#endif

/// Sessions that vanish leave nothing behind: after 1,000 of them connect, allocate and go away
/// without freeing anything, the device's free memory is back at its start value, every slice
/// they were granted is back in the ledger, the server's own memory has not grown with them, and
/// it still serves.
@Suite("Session leaks", .serialized)
struct SessionLeakTests {
    /// How one session ends without cleaning up after itself.
    enum Ending: CaseIterable {
        /// The socket closes between two calls.
        case closes
        /// The socket closes in the middle of a frame.
        case diesMidFrame
        /// The socket closes with fire-and-forget launches still queued on the server.
        case diesWithQueuedWork
        /// The connection is shut down while a compressed upload's data sits in the session's staging.
        case closesAfterCompressedUpload
    }

    @Test("1,000 sessions that allocate and vanish leave the device, the ledger and the server's memory as they were")
    func thousandSessions() throws {
        let harness = try Harness.get()
        let server = try Server(harness: harness)
        defer { server.stop() }
        let started = ContinuousClock.now
        let free0 = try RawClient.freeDeviceMemory(at: server.address)

        // A few real tenants killed with SIGKILL while they hold memory (one of them with a slice).
        let holders = try [[:], ["XPU_SLICE": "mem=64MiB"], [:]].map { environment in
            try harness.startRemote("hold_and_copy", ["16"], server: server, environment: environment)
        }
        defer { for holder in holders { holder.stop(terminateFirst: false) } }
        for holder in holders {
            try #require(holder.waitForOutput(containing: "ready", timeout: .seconds(60)), "holder:\n\(holder.stderr.text)")
            holder.signalGroup(SIGKILL)
        }

        // A warm-up, so that the server's allocator and thread caches are in their steady state
        // before its memory is measured.
        try Self.runSessions(0..<100, at: server.address)
        let resident0 = try #require(Self.residentBytes(of: server.process.pid))
        try Self.runSessions(100..<1_000, at: server.address)
        let sessionsDone = ContinuousClock.now

        #expect(server.waitUntilSessionsReleased(), "every session must be released")
        let free = try RawClient.freeDeviceMemory(at: server.address)
        #expect(free == free0, "free device memory \(free) after 1,000 sessions, \(free0) at the start")

        // Every quota and share was given back: the whole device can be granted again.
        #expect(server.waitUntilSessionsReleased())
        #expect(throws: Never.self, "a slice of the whole device must fit again") {
            try RawClient(server.address).openSession(slice: "mem=1GiB,compute=100%")
        }

        let resident = try #require(Self.residentBytes(of: server.process.pid))
        let growth = Int64(resident) - Int64(resident0)
        #expect(growth < 48 << 20, "the server's resident memory grew by \(growth >> 20) MiB over 900 sessions")
        let released = server.process.stderr.text.components(separatedBy: "session released").count - 1
        #expect(released >= 1_000, "sessions the server logged as released: \(released)")
        print(
            "session leaks: 1,000 sessions in \(sessionsDone - started), resident memory \(resident0 >> 20) -> \(resident >> 20) MiB, "
                + "free device memory \(free0) -> \(free)")
    }

    /// Runs sessions `range` against the server, four at a time; session `i` asks for a slice
    /// and ends as `Ending.allCases[i % 4]`.
    static func runSessions(_ range: Range<Int>, at address: String) throws {
        let failures = Mutex<[String]>([])
        let lanes = 4
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            for index in stride(from: range.lowerBound + lane, to: range.upperBound, by: lanes) {
                do {
                    try vanishingSession(index, at: address)
                } catch {
                    failures.withLock { $0.append("session \(index): \(error)") }
                }
            }
        }
        let found = failures.withLock { $0 }
        #expect(found.isEmpty, "\(found.count) sessions failed: \(found.prefix(5))")
    }

    /// One session that allocates and goes away: memory always, a module, stream and event in
    /// some, a slice (memory, or memory and a compute share) in most.
    static func vanishingSession(_ index: Int, at address: String) throws {
        let ending = Ending.allCases[index % Ending.allCases.count]
        let slice = ["", "mem=16MiB", "mem=16MiB,compute=1%"][index % 3]
        let client = try RawClient(address)
        let compression = ending == .closesAfterCompressedUpload && LZ4Codec.shared != nil
        try client.openSession(slice: slice, features: compression ? [.fireAndForget, .lz4] : .fireAndForget)
        let data = try client.reply(CuMemAlloc_v2Request(bytesize: 1 << 20))
        _ = try client.reply(CuMemAlloc_v2Request(bytesize: 4096 + UInt64(index)))
        _ = try client.reply(
            MemcpyHtoDRequest(destination: data.dptr, remainingBytes: 4096, stream: 0, asynchronous: 0, data: [UInt8](repeating: 1, count: 4096)))
        switch ending {
        case .closes:
            return
        case .diesMidFrame:
            let module = try client.reply(ModuleLoadRequest(image: Array(IsolationTests.ptx.utf8)))
            _ = try client.reply(CuModuleGetGlobal_v2Request(hmod: module.module, name: "tenant_counter"))
            _ = try client.reply(StreamCreateRequest(stream: 1 << 63 | 1, flags: 0))
            _ = try client.reply(EventCreateRequest(event: 1 << 63 | 2, flags: 0))
            // A header that announces 64 bytes, and 8 of them.
            try client.sendRaw(FrameHeader(length: 64, call: CallID.cuMemAlloc_v2.rawValue, sequence: 99).encoded + [0, 0, 0, 0, 0, 0, 0, 1])
        case .diesWithQueuedWork:
            let module = try client.reply(ModuleLoadRequest(image: Array(IsolationTests.ptx.utf8)))
            let poke = try #require(module.kernels.first { $0.name == "tenant_poke" }).function
            for _ in 0..<20 { try client.post(IsolationTests.poke(poke, at: data.dptr, stream: 0)) }
        case .closesAfterCompressedUpload:
            try compressedUpload(client, to: data.dptr, compressed: compression)
            client.transport.shutdown()
        }
    }

    /// 1 MiB of zeros to `destination`, LZ4-compressed where the session negotiated it (the server
    /// inflates it into the session's staging buffer), else plain.
    static func compressedUpload(_ client: RawClient, to destination: UInt64, compressed: Bool) throws {
        let raw = [UInt8](repeating: 0, count: 1 << 20)
        guard compressed, let codec = LZ4Codec.shared else {
            _ = try client.reply(MemcpyHtoDRequest(destination: destination, remainingBytes: UInt64(raw.count), stream: 0, asynchronous: 0, data: raw))
            return
        }
        var packed = [UInt8](repeating: 0, count: codec.bound(raw.count))
        let count = try #require(
            raw.withUnsafeBytes { source in packed.withUnsafeMutableBytes { codec.compress(source, into: $0, limit: $0.count) } })
        client.sequence += 1
        let prefix = MemcpyHtoDRequest.framePrefix(
            sequence: client.sequence, flags: .compressed, context: client.context, destination: destination,
            remainingBytes: UInt64(raw.count), stream: 0, asynchronous: false, dataCount: count, rawCount: raw.count)
        try client.sendRaw(prefix + packed[..<count])
        let (header, _) = try client.channel.receive()
        guard header.status == 0 else { throw E2EError("compressed upload failed with status \(header.status)") }
    }

    /// The resident memory of a process (VmRSS in /proc/PID/status), in bytes.
    static func residentBytes(of pid: pid_t) -> UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }.map { $0 * 1024 }
        }
        return nil
    }
}
