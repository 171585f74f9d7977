#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPURuntimeSupport
import CXPUShimSupport
import XPUProtocol
import XPUTransport

/// The shim's connection to one server and the client-side state of that session.
///
/// A process has one lane per server session (`Lanes`): calls from all threads to that server are
/// serialized by the lane's lock (a C mutex, held across fork so a child never inherits it
/// locked). Every field is guarded by it. Lanes are independent: a call waits only for its own.
///
/// Fire-and-forget frames queue in `pending` and leave together: with the next call that waits
/// for a reply, when the queue passes `flushBytes`, or when the flusher finds them older than
/// `flushDelay` (so work starts even if the program makes no further call).
final class Lane: @unchecked Sendable {
    enum Connection {
        /// cuInit has not succeeded in this process (or this is a forked child that has not called it).
        case uninitialized
        case open(FrameChannel, generation: UInt64)
        /// The server went away or broke the protocol; every call fails with `status`.
        case lost(CUresult)
    }

    /// The lane's place in `Lanes.all`; it names the lane's lock and tags its handles.
    let index: Int
    /// The server and the slice to ask it for: from `XPU_SERVER` and `XPU_SLICE`, or, for a lane
    /// the pool places, filled in by the placement before the session opens.
    var server: ServerAddress?
    var slice: String
    /// The device of the lane's slice, when the pool placed it.
    var placedDevice: Int32?
    /// The server's device ordinals this lane shows the application (in order): all of them, or
    /// only its slice's device when the pool placed it. Set by cuInit.
    var devices: [Int32] = []

    static let flushBytes = 256 << 10
    static let flushDelayNanoseconds: UInt64 = 1_000_000
    /// `XPU_STRICT_SYNC=1`: every call waits for its reply (debugging; errors surface at the call).
    static let strict = getenv("XPU_STRICT_SYNC").map { String(cString: $0) == "1" } ?? false
    /// `XPU_POLL_US`: microseconds a call that awaits a reply spins on the socket before it
    /// blocks (0, the default: never; `BusyPoll` adapts it to how soon replies come). A bad
    /// value is logged and the default used.
    static let busyPoll: BusyPoll.Settings = {
        guard let raw = getenv("XPU_POLL_US") else { return BusyPoll.Settings(microseconds: BusyPoll.Settings.defaultMicroseconds) }
        let text = String(cString: raw)
        guard let settings = BusyPoll.Settings(parsingMicroseconds: text) else {
            ShimLog.log(.warn, "XPU_POLL_US=\(text) is not 0 to 1000000 microseconds; using \(BusyPoll.Settings.defaultMicroseconds)")
            return BusyPoll.Settings(microseconds: BusyPoll.Settings.defaultMicroseconds)
        }
        return settings
    }()
    /// `strict` as a field of the lane, for the launch path (a global costs a once-check per read).
    let isStrict = Lane.strict

    var connection = Connection.uninitialized
    /// cuInit succeeded on this connection. (cuDriverGetVersion may open the connection earlier.)
    var initialized = false
    /// The server driver's version, from the handshake.
    var driverVersion: Int32 = 0
    var sequence: UInt32 = 0
    /// Encoded fire-and-forget frames not sent yet, and when the oldest was queued.
    var pending = WireWriter(capacity: flushBytes + (64 << 10))
    var pendingSince: UInt64 = 0
    var flusherGeneration: UInt64?
    /// Kernels by function handle, from module-load replies.
    var kernels: [UInt64: KernelInfo] = [:]
    /// Function handles of each module, in the server's enumeration order.
    var moduleKernels: [UInt64: [UInt64]] = [:]
    /// Handles this session holds, with the context each belongs to (for local validation).
    var handles = HandleSets()
    /// The device of each context, and the session's primary context of each device.
    var contextDevices: [UInt64: Int32] = [:]
    var primaryContexts: [Int32: UInt64] = [:]
    /// Device memory of this session, as the server tracks it.
    var memory = AllocationMap()
    /// The module of each module variable in `memory`, by start address (forgotten with it).
    var globalModules: [UInt64: UInt64] = [:]
    /// Replies to `cached` calls, by call and encoded request.
    var cache: [CacheKey: [UInt8]] = [:]
    /// The last launch's checked function, stream and context (Exports+Module.swift). The lane
    /// holds one reference, taken and given back by `remember` and `forgetLaunch`; the launch
    /// path uses it without counting more (it holds the lane's lock, so the plan cannot go).
    private(set) var lastLaunch: Unmanaged<LaunchPlan>?
    /// Handles the shim mints itself (streams, events): the top bit keeps them apart from the
    /// server's (the lane's tag is added to what goes to the application).
    var nextClientHandle: UInt64 = 1 << 63
    /// Bulk data may travel LZ4-compressed (negotiated in the handshake; `XPU_COMPRESSION=off`
    /// disables it), with scratch room for a compressed chunk and a compressed sample.
    var compression = false
    var negotiatedCompression = false
    /// The server keeps module images by digest (`Features.moduleCache`).
    var moduleCache = false
    var uploadGovernor = CompressionGovernor()
    lazy var compressionScratch = UnsafeMutableRawBufferPointer.allocate(
        byteCount: (LZ4Codec.shared?.bound(ProtocolLimits.maximumBulkBytes) ?? 0) + 16, alignment: 16)
    lazy var sampleScratch = UnsafeMutableRawBufferPointer.allocate(
        byteCount: (LZ4Codec.shared?.bound(128 << 10) ?? 0) + 16, alignment: 16)

    struct CacheKey: Hashable {
        var call: UInt16
        var request: [UInt8]
    }

    init(index: Int, server: ServerAddress?, slice: String) {
        self.index = index
        self.server = server
        self.slice = slice
    }

    /// Runs `body` with the lane lock held.
    @discardableResult
    func locked<T>(_ body: (Lane) throws(ShimFailure) -> T) throws(ShimFailure) -> T {
        xpu_lane_lock(UInt32(index))
        defer { xpu_lane_unlock(UInt32(index)) }
        return try body(self)
    }

    @discardableResult
    func locked<T>(_ body: (Lane) -> T) -> T {
        xpu_lane_lock(UInt32(index))
        defer { xpu_lane_unlock(UInt32(index)) }
        return body(self)
    }

    /// The open channel of an initialized session, or the status every call must return now. Lock held.
    func channel() throws(ShimFailure) -> FrameChannel {
        let channel = try openChannel()
        guard initialized else { throw ShimFailure(CUDA_ERROR_NOT_INITIALIZED) }
        return channel
    }

    /// The open channel, initialized or not. Lock held.
    func openChannel() throws(ShimFailure) -> FrameChannel {
        switch connection {
        case .uninitialized:
            throw ShimFailure(CUDA_ERROR_NOT_INITIALIZED)
        case .lost(let status):
            throw ShimFailure(status)
        case .open(let channel, let generation):
            guard generation == xpu_fork_generation() else {
                // A forked child: the connection is the parent's. Forget it (closing our copy of
                // the descriptor leaves the parent's session intact) and require a new cuInit.
                forgetSession()
                throw ShimFailure(CUDA_ERROR_NOT_INITIALIZED)
            }
            return channel
        }
    }

    /// The status a call must return without reaching the server, or nil when it may proceed. Lock held.
    func refusal() -> CUresult? {
        // The usual answer first, without taking the channel out of `connection` (a reference
        // count on every call).
        if initialized, case .open(_, let generation) = connection, generation == xpu_fork_generation() { return nil }
        do {
            _ = try channel()
            return nil
        } catch {
            return error.status
        }
    }

    /// `refusal()`, then CUDA_ERROR_INVALID_CONTEXT when the calling thread has no current
    /// context; else nil. Lock held.
    func requireContext() -> CUresult? {
        refusal() ?? (xpu_context_current() == 0 ? CUDA_ERROR_INVALID_CONTEXT : nil)
    }

    func forgetSession() {
        connection = .uninitialized
        initialized = false
        pending.removeAll()
        kernels = [:]
        moduleKernels = [:]
        handles = HandleSets()
        contextDevices = [:]
        primaryContexts = [:]
        memory = AllocationMap()
        globalModules = [:]
        cache = [:]
        devices = []
        forgetLaunch()
    }

    /// Keeps `plan` as the last launch's. Lock held.
    func remember(_ plan: LaunchPlan) -> Unmanaged<LaunchPlan> {
        forgetLaunch()
        let kept = Unmanaged.passRetained(plan)
        lastLaunch = kept
        return kept
    }

    func forgetLaunch() {
        lastLaunch?.release()
        lastLaunch = nil
    }

    /// A new stream or event id, as the application sees it (tagged with this lane).
    func mintHandle() -> UInt64 {
        nextClientHandle += 1
        return tagged(nextClientHandle)
    }

    /// The id the application sees for an id this lane's server minted (or the shim minted for it).
    func tagged(_ wireID: UInt64) -> UInt64 {
        Lanes.tag(wireID, lane: index)
    }

    /// The server's device ordinal that is the application's `device`, when this lane shows it.
    func clientDevice(_ remote: Int32) -> Int32 {
        DeviceList.current.ordinal(lane: index, remote: remote) ?? remote
    }

    /// Queues a fire-and-forget request (lock held); in strict mode it waits for the reply instead.
    /// `context` is the context the server makes current for it (an application id).
    func post<R: CallRequest>(_ request: R, context: UInt64) throws(ShimFailure) -> CUresult {
        if Self.strict { return try exchange([(R.call, request.encoded, false)], context: context)[0].0 }
        if pending.count == 0 { startPending() }
        sequence &+= 1
        pending.appendFrame(
            FrameHeader(length: 0, call: R.call.rawValue, flags: .noReply, sequence: sequence, context: Lanes.wire(context))
        ) { writer in request.encode(into: &writer) }
        if pending.count >= Self.flushBytes { try flush() }
        return CUDA_SUCCESS
    }

    /// Queues a fire-and-forget frame that `write` appends to the send buffer itself (given its
    /// sequence number); no request value, no allocation. Lock held.
    func postFrame(_ write: (inout WireWriter, UInt32) -> Void) throws(ShimFailure) {
        if pending.count == 0 { startPending() }
        sequence &+= 1
        write(&pending, sequence)
        if pending.count >= Self.flushBytes { try flush() }
    }

    /// The first frame after a send: notes when the queue started and has the flusher send it
    /// after `flushDelay` if nothing sends it sooner (the flusher runs from then on, so a frame
    /// queued behind others needs no call here).
    private func startPending() {
        pendingSince = monotonicNanoseconds()
        startFlusher()
        xpu_lane_signal(UInt32(index))
    }

    /// Sends everything queued. Lock held.
    func flush() throws(ShimFailure) {
        guard pending.count > 0 else { return }
        let channel = try openChannel()
        do {
            try channel.sendRaw(pending.bytes)
        } catch {
            throw ShimFailure.lost(self, "connection to the server lost: \(error)")
        }
        pending.removeAll()
    }

    /// Sends requests (after whatever is queued) and collects the replies of those that want
    /// one, in order. Lock held. A failure among fire-and-forget frames is latched by the
    /// server and returned in the next reply.
    func exchange(
        _ frames: [(call: CallID, payload: [UInt8], noReply: Bool)], context: UInt64
    ) throws(ShimFailure) -> [(CUresult, [UInt8])] {
        _ = try openChannel()
        var expected: [UInt32] = []
        for frame in frames {
            sequence &+= 1
            let header = FrameHeader(
                length: 0, call: frame.call.rawValue, flags: frame.noReply ? [.noReply] : [], sequence: sequence,
                context: Lanes.wire(context))
            pending.appendFrame(header) { writer in writer.writeFixed(frame.payload) }
            if !frame.noReply { expected.append(sequence) }
        }
        try flush()
        var replies: [(CUresult, [UInt8])] = []
        for sequence in expected { replies.append(try awaitReply(sequence)) }
        return replies
    }

    /// Reads the reply to `sequence` (the next one due). Lock held.
    func awaitReply(_ sequence: UInt32) throws(ShimFailure) -> (CUresult, [UInt8]) {
        var (header, payload) = try receive(try openChannel())
        while header.call == DeviceOutputNotice.call {
            try printDeviceOutput(payload)
            (header, payload) = try receive(try openChannel())
        }
        if header.call == SessionEnd.call { throw ShimFailure.ended(self, header, payload) }
        guard header.flags.contains(.reply), header.sequence == sequence else {
            throw ShimFailure.lost(self, "reply \(header.sequence) out of sequence (expected \(sequence))")
        }
        return (CUresult(rawValue: header.status), payload)
    }

    /// Reads a bulk reply (u32 count, then the data) straight into `target`, which must be
    /// exactly the size the reply carries. Lock held.
    func awaitBulkReply(_ sequence: UInt32, into target: UnsafeMutableRawBufferPointer, channel: FrameChannel) throws(ShimFailure) -> CUresult {
        // A large chunk's bytes go from the socket to `target` alone: nothing read past the
        // frame's header and count lands in the channel's buffer first.
        let readAhead = target.count < FrameChannel.bulkThreshold
        do {
            var header = try channel.receiveHeader(readAhead: readAhead)
            while header.call == DeviceOutputNotice.call {
                try printDeviceOutput(try channel.receivePayload(count: Int(header.length)))
                header = try channel.receiveHeader(readAhead: readAhead)
            }
            if header.call == SessionEnd.call {
                throw ShimFailure.ended(self, header, try channel.receivePayload(count: Int(header.length)))
            }
            guard header.flags.contains(.reply), header.sequence == sequence else {
                throw ShimFailure.lost(self, "reply \(header.sequence) out of sequence (expected \(sequence))")
            }
            if header.flags.contains(.compressed), header.status == CUDA_SUCCESS.rawValue {
                return try receiveCompressed(header, into: target, channel: channel, readAhead: readAhead)
            }
            guard header.status == CUDA_SUCCESS.rawValue else {
                // A failed chunk carries no data; skip whatever payload there is.
                let discard = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(header.length), alignment: 1)
                defer { discard.deallocate() }
                try channel.receivePayload(into: discard)
                return CUresult(rawValue: header.status)
            }
            guard Int(header.length) == 4 + target.count else {
                throw ShimFailure.lost(self, "device-to-host reply of \(header.length) bytes for \(target.count)")
            }
            let countBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4, alignment: 4)
            defer { countBytes.deallocate() }
            try channel.receivePayload(into: countBytes, readAhead: readAhead)
            let count = UInt32(littleEndian: countBytes.load(as: UInt32.self))
            guard Int(count) == target.count else {
                throw ShimFailure.lost(self, "device-to-host reply carries \(count) bytes for \(target.count)")
            }
            try channel.receivePayload(into: target)
            return CUDA_SUCCESS
        } catch let failure as ShimFailure {
            throw failure
        } catch {
            throw ShimFailure.lost(self, "connection to the server lost: \(error)")
        }
    }

    /// A compressed device-to-host chunk: u32 size before compression, u32 count, LZ4 data.
    private func receiveCompressed(
        _ header: FrameHeader, into target: UnsafeMutableRawBufferPointer, channel: FrameChannel, readAhead: Bool
    ) throws(FrameError) -> CUresult {
        let counts = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 4)
        defer { counts.deallocate() }
        try channel.receivePayload(into: counts, readAhead: readAhead)
        let raw = Int(UInt32(littleEndian: counts.load(as: UInt32.self)))
        let count = Int(UInt32(littleEndian: counts.load(fromByteOffset: 4, as: UInt32.self)))
        guard compression, let codec = LZ4Codec.shared, raw == target.count, Int(header.length) == 8 + count,
            count <= compressionScratch.count
        else {
            throw .protocolViolation(ProtocolError(.malformed, "compressed reply of \(count) bytes for \(target.count)"))
        }
        let compressed = UnsafeMutableRawBufferPointer(rebasing: compressionScratch[0..<count])
        try channel.receivePayload(into: compressed)
        guard codec.decompress(UnsafeRawBufferPointer(compressed), into: target) else {
            throw .protocolViolation(ProtocolError(.malformed, "LZ4 data does not inflate to \(target.count) bytes"))
        }
        return CUDA_SUCCESS
    }

    /// Writes what the session's kernels printed (a `DeviceOutputNotice`, which comes ahead of the
    /// reply to a synchronizing call) to stdout, where CUDA writes device printf output.
    private func printDeviceOutput(_ payload: [UInt8]) throws(ShimFailure) {
        let notice: DeviceOutputNotice
        do {
            notice = try DeviceOutputNotice(decoding: payload)
        } catch {
            throw ShimFailure.lost(self, "malformed device output notice: \(error)")
        }
        notice.text.withUnsafeBytes { xpu_runtime_write_stdout($0.baseAddress, $0.count) }
    }

    private func receive(_ channel: FrameChannel) throws(ShimFailure) -> (FrameHeader, [UInt8]) {
        do {
            return try channel.receive()
        } catch {
            throw ShimFailure.lost(self, "connection to the server lost: \(error)")
        }
    }

    /// Starts the thread that sends queued frames that have waited `flushDelay` (once per lane and
    /// process; lanes live as long as the process).
    private func startFlusher() {
        let generation = xpu_fork_generation()
        guard flusherGeneration != generation else { return }
        flusherGeneration = generation
        var thread = pthread_t()
        _ = pthread_create(&thread, nil, { argument in
            Unmanaged<Lane>.fromOpaque(argument!).takeUnretainedValue().runFlusher()
            return nil
        }, Unmanaged.passUnretained(self).toOpaque())
        // Named for whoever reads the application's threads (top -H, /proc): it is ours, not
        // theirs. Named here rather than by itself, so that the name is there at once.
        xpu_name_thread(thread, "xpu-flush")
        pthread_detach(thread)
    }

    /// Sleeps until frames are queued, then until the oldest is `flushDelay` old, and sends what
    /// is still queued then (a call that awaited a reply may have sent it already). Idle, it
    /// costs nothing: it waits on a condition, it does not poll.
    private func runFlusher() {
        let generation = xpu_fork_generation()
        let lock = UInt32(index)
        xpu_lane_lock(lock)
        defer { xpu_lane_unlock(lock) }
        while flusherGeneration == generation {
            guard pending.count > 0 else {
                xpu_lane_wait(lock, 0)
                continue
            }
            let age = monotonicNanoseconds() - pendingSince
            if age >= Self.flushDelayNanoseconds {
                _ = try? flush()
            } else {
                xpu_lane_wait(lock, Self.flushDelayNanoseconds - age)
            }
        }
    }
}

/// The handles a session holds, by kind, each with the context it belongs to.
struct HandleSets {
    enum Kind: Hashable { case context, stream, event, module, function }

    private var owners: [Kind: [UInt64: UInt64]] = [:]
    /// Counts removals: a check made against these sets holds while it is unchanged (no handle
    /// it relied on can have gone; ids are never reused).
    private(set) var removals: UInt64 = 0

    mutating func insert(_ kind: Kind, _ id: UInt64, context: UInt64) {
        owners[kind, default: [:]][id] = context
    }

    mutating func remove(_ kind: Kind, _ id: UInt64) {
        removals &+= 1
        owners[kind]?[id] = nil
        if kind == .context {
            // A destroyed context takes its objects with it.
            for other in owners.keys { owners[other] = owners[other]?.filter { $0.value != id } }
        }
    }

    func context(of kind: Kind, _ id: UInt64) -> UInt64? {
        owners[kind]?[id]
    }

    func contains(_ kind: Kind, _ id: UInt64) -> Bool {
        owners[kind]?[id] != nil
    }
}

/// Client-side knowledge of a kernel: enough to marshal `kernelParams` and check a launch with
/// no round trip.
struct KernelInfo {
    var module: UInt64
    /// The name as a C string that lives as long as the module (cuFuncGetName returns it).
    var name: UnsafeMutablePointer<CChar>
    var parameters: [KernelParameter]
    var maxThreadsPerBlock: UInt32
    var staticSharedBytes: UInt32
    /// Bytes of the packed parameter block (kept, not computed per launch: no allocation there).
    let parameterBytes: Int

    init(module: UInt64, name: UnsafeMutablePointer<CChar>, parameters: [KernelParameter], maxThreadsPerBlock: UInt32, staticSharedBytes: UInt32) {
        self.module = module
        self.name = name
        self.parameters = parameters
        self.maxThreadsPerBlock = maxThreadsPerBlock
        self.staticSharedBytes = staticSharedBytes
        parameterBytes = parameters.blockBytes
    }
}

/// A call that ends in the shim with a driver status (nothing reached the server, or the lane died).
struct ShimFailure: Error {
    var status: CUresult

    init(_ status: CUresult) { self.status = status }

    /// Marks the lane lost (lock held) and logs why, once.
    static func lost(_ lane: Lane, _ reason: String) -> ShimFailure {
        if case .open = lane.connection {
            let server = lane.server.map { " (\($0))" } ?? ""
            ShimLog.log(.error, "\(reason)\(server); every further call to it fails with CUDA_ERROR_DEVICE_UNAVAILABLE")
        }
        lane.connection = .lost(CUDA_ERROR_DEVICE_UNAVAILABLE)
        return ShimFailure(CUDA_ERROR_DEVICE_UNAVAILABLE)
    }

    /// The server ended the session on its own (a `SessionEnd` notice, where a reply was due):
    /// marks the lane lost with the notice's status (lock held) and logs why.
    static func ended(_ lane: Lane, _ header: FrameHeader, _ payload: [UInt8]) -> ShimFailure {
        let status = header.status == 0 ? CUDA_ERROR_DEVICE_UNAVAILABLE : CUresult(rawValue: header.status)
        let reason = (try? SessionEnd(decoding: payload))?.reason ?? "no reason given"
        if case .open = lane.connection {
            let server = lane.server.map { " \($0)" } ?? ""
            ShimLog.log(.error, "the server\(server) ended the session: \(reason); every further call to it fails with \(Self.name(of: status))")
        }
        lane.connection = .lost(status)
        return ShimFailure(status)
    }

    /// The CUresult's name, as cuGetErrorName gives it.
    static func name(of status: CUresult) -> String {
        var name: UnsafePointer<CChar>?
        guard cuGetErrorName(status, &name) == CUDA_SUCCESS, let name else { return "CUresult(\(status.rawValue))" }
        return String(cString: name)
    }
}
