import CXPUDriver
import CXPUShimSupport

/// Where a call goes: the lane of the server that owns what the call names, and the context that
/// server makes current for it.
///
/// - a device: the lane that shows it (`DeviceList`); the request carries the server's ordinal;
/// - a handle (context, stream, event, module, function): the lane its tag names (`Lanes`);
/// - a device pointer: the lane whose allocations hold it. Servers choose addresses on their own,
///   so two servers may hand out the same address (the simulated device always does); the lane
///   of the current context is asked first, then the others in order, as a program that works
///   on several devices makes the device's context current before touching its memory;
/// - nothing of these (cuCtxSynchronize, cuMemAlloc, cuModuleLoadData...): the current context's
///   lane, so a device-wide call concerns only that server.
///
/// The context sent is the current one when it lives on the target lane; otherwise the context
/// that owns the object (what the call means under CUDA's unified addressing), or none.
struct Target {
    /// nil when the call is answered with `refusal` before anything is sent.
    let lane: Lane?
    let refusal: CUresult
    let context: UInt64
    /// For a call about a device: the server's ordinal of it.
    let remoteDevice: Int32

    private init(lane: Lane?, refusal: CUresult = CUDA_SUCCESS, context: UInt64, remoteDevice: Int32 = 0) {
        self.lane = lane
        self.refusal = refusal
        self.context = context
        self.remoteDevice = remoteDevice
    }

    private static func refused(_ status: CUresult) -> Target {
        Target(lane: nil, refusal: status, context: 0)
    }

    /// The current context's lane (the first lane when the thread has no context, so that the
    /// server answers as CUDA does without one).
    static var current: Target {
        let context = xpu_context_current()
        guard let lane = Lanes.lane(of: context) ?? Lanes.all.first else { return refused(CUDA_ERROR_NOT_INITIALIZED) }
        return Target(lane: lane, context: context)
    }

    /// The lane that shows the application's device `ordinal`.
    init(device ordinal: Int32) {
        let list = DeviceList.current
        guard let entry = list.entry(ordinal) else {
            // Before cuInit there is no list; after it, an ordinal outside it names no device.
            let known = list.generation == xpu_fork_generation()
            let refusal = Lanes.all.first.flatMap { lane in lane.locked { $0.refusal() } }
            self = Self.refused(known ? CUDA_ERROR_INVALID_DEVICE : refusal ?? CUDA_ERROR_NOT_INITIALIZED)
            return
        }
        let lane = Lanes.all[entry.lane]
        let current = xpu_context_current()
        self.init(lane: lane, context: Lanes.lane(of: current) === lane ? current : 0, remoteDevice: entry.remote)
    }

    /// The lane that owns a handle (the default streams 0, 1 and 2 belong to the current context).
    init(_ kind: HandleSets.Kind, _ id: UInt64) {
        guard kind != .stream || id > 2, let lane = Lanes.lane(of: id) else {
            self = .current
            return
        }
        let current = xpu_context_current()
        if Lanes.lane(of: current) === lane {
            self.init(lane: lane, context: current)
        } else {
            let owner = lane.locked { lane in kind == .context ? id : lane.handles.context(of: kind, id) }
            self.init(lane: lane, context: owner ?? 0)
        }
    }

    init(_ kind: HandleSets.Kind, _ handle: OpaquePointer?) {
        self.init(kind, Shim.id(handle))
    }

    /// The lane whose allocations hold `pointer`: the current context's first, then the others.
    init(pointer: CUdeviceptr) {
        let current = Target.current
        guard let currentLane = current.lane else {
            self = current
            return
        }
        if currentLane.locked({ $0.memory.allocation(containing: pointer) }) != nil {
            self = current
            return
        }
        for lane in Lanes.all where lane !== currentLane {
            if let allocation = lane.locked({ $0.memory.allocation(containing: pointer) }) {
                self.init(lane: lane, context: allocation.context)
                return
            }
        }
        // No lane knows it: the current lane refuses it as it refuses any stray pointer.
        self = current
    }

    /// Runs `body` with the lane's lock held, or answers the refusal.
    func locked(_ body: (Lane) throws(ShimFailure) -> CUresult) -> CUresult {
        guard let lane else { return refusal }
        do {
            return try lane.locked(body)
        } catch {
            return error.status
        }
    }

    /// CUDA_ERROR_NOT_INITIALIZED before cuInit (or the lane's failure), then
    /// CUDA_ERROR_INVALID_CONTEXT when the calling thread has no current context; else nil.
    func requireContext() -> CUresult? {
        guard let lane else { return refusal }
        return lane.locked { $0.requireContext() }
    }
}
