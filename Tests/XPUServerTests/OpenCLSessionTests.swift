import Logging
import Testing
import XPUAdmission
import XPUProtocol

@testable import XPUServer

/// The OpenCL backend's sessions on the system's OpenCL (PoCL here; scripts/lib/prereqs.sh
/// installs it): what one session creates, another cannot name, and buffers beyond a slice's
/// memory are refused without reaching the platform.
@Suite("OpenCL sessions")
struct OpenCLSessionTests {
    static let platform = Result { try OpenCLPlatform(path: "libOpenCL.so.1", selector: "") }

    static func session(_ id: UInt64, slice: String? = nil) throws -> OpenCLSession {
        let platform = try Self.platform.get()
        let parsed = try slice.map { Slice(try SliceRequest(parsing: $0)) }
        return OpenCLSession(
            id: id, platform: platform, usage: SessionUsage(session: id, tenant: nil, slice: parsed), logger: Logger(label: "test"))
    }

    /// The status a call fails with, or CL_SUCCESS (0) and its reply.
    static func call<R: CallRequest>(_ session: OpenCLSession, _ request: R) -> (Int32, R.Reply?) {
        do {
            let reply = try session.handle(R.call, request.encoded)
            return (0, try? R.Reply(decoding: reply))
        } catch {
            return (error.status, nil)
        }
    }

    @Test("a session cannot name another session's objects, and its own ids are not another's")
    func isolation() throws {
        let owner = try Self.session(7)
        let intruder = try Self.session(8)
        defer {
            owner.releaseEverything()
            intruder.releaseEverything()
        }
        let context = try #require(Self.call(owner, CLCreateContextRequest(devices: [1])).1).context
        let queue = try #require(Self.call(owner, CLCreateCommandQueueRequest(context: context, device: 1, properties: 0)).1).queue
        let buffer = try #require(
            Self.call(owner, CLCreateBufferRequest(context: context, flags: 1, size: 16, contents: [])).1
        ).buffer
        #expect(context >> 32 == 7 && queue >> 32 == 7 && buffer >> 32 == 7)

        let ownContext = try #require(Self.call(intruder, CLCreateContextRequest(devices: [1])).1).context
        let ownQueue = try #require(Self.call(intruder, CLCreateCommandQueueRequest(context: ownContext, device: 1, properties: 0)).1)
            .queue
        #expect(ownContext >> 32 == 8 && !owner.objects.keys.contains(ownContext))
        let read = CLEnqueueReadBufferRequest(queue: ownQueue, buffer: buffer, offset: 0, size: 16, waitList: [], event: 0)
        #expect(Self.call(intruder, read).0 == -38)  // CL_INVALID_MEM_OBJECT
        #expect(Self.call(intruder, CLFinishRequest(queue: queue)).0 == -36)  // CL_INVALID_COMMAND_QUEUE
        #expect(Self.call(intruder, CLCreateBufferRequest(context: context, flags: 1, size: 16, contents: [])).0 == -34)
        #expect(Self.call(intruder, CLReleaseRequest(object: buffer)).0 == -30)  // CL_INVALID_VALUE
        // An event id from another session's range is refused; the owner's buffer is untouched.
        let foreignEvent: UInt64 = 1 << 63 | 7 << 32 | 1
        let ownBuffer = try #require(
            Self.call(intruder, CLCreateBufferRequest(context: ownContext, flags: 1, size: 16, contents: [])).1
        ).buffer
        let write = CLEnqueueWriteBufferRequest(queue: ownQueue, buffer: ownBuffer, offset: 0, waitList: [], event: foreignEvent, data: [1])
        #expect(Self.call(intruder, write).0 == -58)  // CL_INVALID_EVENT
        let data = Self.call(owner, CLEnqueueReadBufferRequest(queue: queue, buffer: buffer, offset: 0, size: 16, waitList: [], event: 0))
        #expect(data.0 == 0 && data.1?.data.count == 16)
    }

    @Test("buffers beyond the slice's memory fail with CL_MEM_OBJECT_ALLOCATION_FAILURE; released ones give it back")
    func quota() throws {
        let session = try Self.session(9, slice: "mem=64MiB")
        defer { session.releaseEverything() }
        let platform = try #require(Self.call(session, CLGetPlatformRequest()).1)
        let memory = try #require(platform.devices.first?.info.first { $0.param == 0x101F }?.value)
        #expect(memory == withUnsafeBytes(of: UInt64(64 << 20)) { Array($0) })
        let context = try #require(Self.call(session, CLCreateContextRequest(devices: [1])).1).context
        let first = Self.call(session, CLCreateBufferRequest(context: context, flags: 1, size: 48 << 20, contents: []))
        #expect(first.0 == 0)
        #expect(Self.call(session, CLCreateBufferRequest(context: context, flags: 1, size: 32 << 20, contents: [])).0 == -4)
        #expect(session.usage.memoryBytes.load(ordering: .relaxed) >= 48 << 20)
        #expect(Self.call(session, CLReleaseRequest(object: try #require(first.1).buffer)).0 == 0)
        #expect(Self.call(session, CLCreateBufferRequest(context: context, flags: 1, size: 32 << 20, contents: [])).0 == 0)
    }
}
