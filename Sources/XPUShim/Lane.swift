#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import CXPUShimSupport
import XPUProtocol
import XPUTransport

/// The shim's connection to its server and the client-side state of the session.
///
/// One lane per process for now: calls from all threads are serialized by the lane lock (a C
/// mutex, held across fork so a child never inherits it locked). Every field is guarded by it.
final class Lane: @unchecked Sendable {
    enum Connection {
        /// cuInit has not succeeded in this process (or this is a forked child that has not called it).
        case uninitialized
        case open(FrameChannel, generation: UInt64)
        /// The server went away or broke the protocol; every call fails with `status`.
        case lost(CUresult)
    }

    var connection = Connection.uninitialized
    /// cuInit succeeded on this connection. (cuDriverGetVersion may open the connection earlier.)
    var initialized = false
    /// The server driver's version, from the handshake.
    var driverVersion: Int32 = 0
    var sequence: UInt32 = 0
    /// Kernels by function handle, from module-load replies.
    var kernels: [UInt64: KernelInfo] = [:]
    /// Function handles of each module, in the server's enumeration order.
    var moduleKernels: [UInt64: [UInt64]] = [:]
    /// Contexts this session created or retained and has not destroyed.
    var liveContexts: Set<UInt64> = []
    /// Host allocations from cuMemAllocHost: base address → size.
    var hostAllocations: [UInt: Int] = [:]

    static let shared = Lane()

    /// Runs `body` with the lane lock held.
    @discardableResult
    func locked<T>(_ body: (Lane) throws(ShimFailure) -> T) throws(ShimFailure) -> T {
        xpu_lane_lock()
        defer { xpu_lane_unlock() }
        return try body(self)
    }

    @discardableResult
    func locked<T>(_ body: (Lane) -> T) -> T {
        xpu_lane_lock()
        defer { xpu_lane_unlock() }
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
        do {
            _ = try channel()
            return nil
        } catch {
            return error.status
        }
    }

    func forgetSession() {
        connection = .uninitialized
        initialized = false
        kernels = [:]
        moduleKernels = [:]
        liveContexts = []
    }

    /// Sends requests and collects the replies of those that want one, in order. Lock held.
    /// Fire-and-forget frames (`noReply`) get no answer; a failure among them is latched by the
    /// server and returned in the next reply.
    func exchange(_ frames: [(call: CallID, payload: [UInt8], noReply: Bool)]) throws(ShimFailure) -> [(CUresult, [UInt8])] {
        let channel = try openChannel()
        let context = xpu_context_current()
        var expected: [UInt32] = []
        for frame in frames {
            sequence &+= 1
            let header = FrameHeader(
                length: 0, call: frame.call.rawValue, flags: frame.noReply ? [.noReply] : [], sequence: sequence,
                context: context)
            do {
                try channel.send(header, payload: frame.payload)
            } catch {
                throw ShimFailure.lost(self, "connection to the server lost: \(error)")
            }
            if !frame.noReply { expected.append(sequence) }
        }
        var replies: [(CUresult, [UInt8])] = []
        for sequence in expected {
            let (header, payload) = try receive(channel)
            guard header.flags.contains(.reply), header.sequence == sequence else {
                throw ShimFailure.lost(self, "reply \(header.sequence) out of sequence (expected \(sequence))")
            }
            replies.append((CUresult(rawValue: header.status), payload))
        }
        return replies
    }

    private func receive(_ channel: FrameChannel) throws(ShimFailure) -> (FrameHeader, [UInt8]) {
        do {
            return try channel.receive()
        } catch {
            throw ShimFailure.lost(self, "connection to the server lost: \(error)")
        }
    }
}

/// Client-side knowledge of a kernel: enough to marshal `kernelParams` with no round trip.
struct KernelInfo {
    var module: UInt64
    /// The name as a C string that lives as long as the module (cuFuncGetName returns it).
    var name: UnsafeMutablePointer<CChar>
    var parameters: [KernelParameter]

    /// Bytes of the packed parameter block.
    var parameterBytes: Int {
        parameters.map { Int($0.offset) + Int($0.size) }.max() ?? 0
    }
}

/// A call that ends in the shim with a driver status (nothing reached the server, or the lane died).
struct ShimFailure: Error {
    var status: CUresult

    init(_ status: CUresult) { self.status = status }

    /// Marks the lane lost (lock held) and logs why, once.
    static func lost(_ lane: Lane, _ reason: String) -> ShimFailure {
        if case .open = lane.connection {
            ShimLog.log(.error, "\(reason); every further call fails with CUDA_ERROR_DEVICE_UNAVAILABLE")
        }
        lane.connection = .lost(CUDA_ERROR_DEVICE_UNAVAILABLE)
        return ShimFailure(CUDA_ERROR_DEVICE_UNAVAILABLE)
    }
}
