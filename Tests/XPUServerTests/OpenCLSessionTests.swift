import Logging
import Testing
import XPUAdmission
import XPUProtocol
import XPUTimingTesting

@testable import XPUServer

/// The OpenCL backend's sessions on the system's OpenCL (PoCL here; scripts/lib/prereqs.sh
/// installs it): what one session creates, another cannot name, and buffers beyond a slice's
/// memory are refused without reaching the platform.
@Suite("OpenCL sessions")
struct OpenCLSessionTests {
    static let platform = Result { try OpenCLPlatform(path: "libOpenCL.so.1", selector: "") }

    /// A session; with `turns`, one with a compute share registered there (as its connection does).
    static func session(_ id: UInt64, slice: String? = nil, turns: ComputeScheduler? = nil) throws -> OpenCLSession {
        let platform = try Self.platform.get()
        let parsed = try slice.map { Slice(try SliceRequest(parsing: $0)) }
        if let turns, let parsed { turns.register(id, slice: parsed) }
        return OpenCLSession(
            id: id, platform: platform, usage: SessionUsage(session: id, tenant: nil, slice: parsed), logger: Logger(label: "test"),
            turns: turns)
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

    /// A session's queue and a kernel that spins `rounds` times per work-item, ready to enqueue.
    struct SpinKernel {
        var context: UInt64
        var queue: UInt64
        var kernel: UInt64
    }

    static func spinKernel(_ session: OpenCLSession, rounds: UInt32) throws -> SpinKernel {
        let source = """
            __kernel void spin(__global uint *out, uint rounds) {
                uint x = get_global_id(0);
                for (uint i = 0; i < rounds; i++) x = x * 1664525u + 1013904223u;
                out[get_global_id(0)] = x;
            }
            """
        let context = try #require(call(session, CLCreateContextRequest(devices: [1])).1).context
        let queue = try #require(call(session, CLCreateCommandQueueRequest(context: context, device: 1, properties: 0)).1).queue
        let buffer = try #require(call(session, CLCreateBufferRequest(context: context, flags: 1, size: 256, contents: [])).1).buffer
        let program = try #require(call(session, CLCreateProgramWithSourceRequest(context: context, source: Array(source.utf8))).1).program
        #expect(call(session, CLBuildProgramRequest(program: program, devices: [1], options: "")).0 == 0)
        let kernel = try #require(call(session, CLCreateKernelRequest(program: program, name: "spin")).1).kernel
        let bufferArgument = withUnsafeBytes(of: buffer) { Array($0) }
        #expect(call(session, CLSetKernelArgRequest(kernel: kernel, index: 0, kind: 1, size: 8, value: bufferArgument)).0 == 0)
        let roundsArgument = withUnsafeBytes(of: rounds) { Array($0) }
        #expect(call(session, CLSetKernelArgRequest(kernel: kernel, index: 1, kind: 0, size: 4, value: roundsArgument)).0 == 0)
        return SpinKernel(context: context, queue: queue, kernel: kernel)
    }

    /// Event id `serial` of session `id` (the range a client mints from).
    static func event(_ id: UInt64, _ serial: UInt64) -> UInt64 { 1 << 63 | (id & 0xFF_FFFF) << 32 | serial }

    /// The kernel's profiled device time, as the client reads it (clGetEventProfilingInfo).
    static func profiledNanoseconds(_ session: OpenCLSession, event: UInt64) throws -> UInt64 {
        func read(_ parameter: UInt32) throws -> UInt64 {
            let reply = try #require(call(session, CLGetInfoRequest(query: 6, object: event, device: 0, param: parameter)).1)
            return reply.value.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        }
        return try read(0x1283) - read(0x1282)  // CL_PROFILING_COMMAND_END - CL_PROFILING_COMMAND_START
    }

    @Test("a tenant with a compute share is charged each kernel's profiled device time, in the scheduler every tenant shares")
    func kernelsChargedTheirProfiledTime() throws {
        // The scheduler's clock never moves: a charge from it would be its 1 ns minimum, so any
        // larger charge is the platform's profile.
        let turns = ComputeScheduler(clock: ManualClock())
        let small = try Self.session(11, slice: "compute=30%", turns: turns)
        let large = try Self.session(12, slice: "compute=70%", turns: turns)
        defer {
            small.releaseEverything()
            large.releaseEverything()
        }
        var expected: [UInt64: UInt64] = [:]
        for (session, rounds) in [(small, UInt32(20_000)), (large, 40_000)] {
            let spin = try Self.spinKernel(session, rounds: rounds)
            for serial: UInt64 in 1...3 {
                let event = Self.event(session.id, serial)
                let launch = CLEnqueueNDRangeKernelRequest(
                    queue: spin.queue, kernel: spin.kernel, offset: [], global: [64], local: [], waitList: [], event: event)
                #expect(Self.call(session, launch).0 == 0)
                // Done when the enqueue returns: the kernel ran in the session's turn.
                let status = try #require(Self.call(session, CLGetInfoRequest(query: 5, object: event, device: 0, param: 0x11D3)).1)
                #expect(status.value == [0, 0, 0, 0], "CL_COMPLETE")
                expected[session.id, default: 0] += try Self.profiledNanoseconds(session, event: event)
            }
        }
        for session: UInt64 in [11, 12] {
            let charged = turns.usage(session).deviceNanoseconds
            #expect(charged == expected[session], "session \(session)")
            #expect(charged > 3, "session \(session): the profile, not the scheduler's clock")
        }
        // Without a share, a session is not scheduled and its queues are as the client asked.
        let unsliced = try Self.session(13, turns: nil)
        defer { unsliced.releaseEverything() }
        let spin = try Self.spinKernel(unsliced, rounds: 10)
        let event = Self.event(13, 1)
        #expect(Self.call(unsliced, CLEnqueueNDRangeKernelRequest(
            queue: spin.queue, kernel: spin.kernel, offset: [], global: [64], local: [], waitList: [], event: event)).0 == 0)
        #expect(Self.call(unsliced, CLFinishRequest(queue: spin.queue)).0 == 0)
        #expect(!turns.isScheduled(13) && turns.usage(13).deviceNanoseconds == 0)
    }

    @Test("a kernel behind a user event the client has not set is enqueued outside the schedule, and the session keeps serving", .timeLimit(.minutes(2)))
    func userEventKernelDoesNotHoldTheTurn() throws {
        let turns = ComputeScheduler(clock: ManualClock())
        let session = try Self.session(14, slice: "compute=50%", turns: turns)
        defer { session.releaseEverything() }
        let spin = try Self.spinKernel(session, rounds: 1000)
        let gate = Self.event(14, 1)
        #expect(Self.call(session, CLCreateUserEventRequest(context: spin.context, event: gate)).0 == 0)
        let held = Self.event(14, 2)
        let behindGate = CLEnqueueNDRangeKernelRequest(
            queue: spin.queue, kernel: spin.kernel, offset: [], global: [64], local: [], waitList: [gate], event: held)
        // Waiting for this kernel in a turn would wait for ever: the enqueue must return first.
        #expect(Self.call(session, behindGate).0 == 0)
        #expect(turns.usage(14).deviceNanoseconds == 0)
        #expect(Self.call(session, CLSetUserEventStatusRequest(event: gate, status: 0)).0 == 0)  // CL_COMPLETE
        #expect(Self.call(session, CLWaitForEventsRequest(events: [held])).0 == 0)
        // With the user event complete, kernels take their turns again and are charged.
        let next = Self.event(14, 3)
        #expect(Self.call(session, CLEnqueueNDRangeKernelRequest(
            queue: spin.queue, kernel: spin.kernel, offset: [], global: [64], local: [], waitList: [], event: next)).0 == 0)
        #expect(turns.usage(14).deviceNanoseconds == (try Self.profiledNanoseconds(session, event: next)))
        #expect(session.pendingUserEvents.isEmpty)
    }
}
