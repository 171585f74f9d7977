import CXPUDriver
import XPUProtocol
import XPUTransport

extension Session {
    /// Replays the calls whose handling is written by hand (`custom` in proto/cuda-driver.api).
    func dispatchCustom(_ call: CallID, flags: FrameFlags, _ reader: inout WireReader) throws(ProtocolError) -> CallOutcome {
        switch call {
        case .initialize:
            let request = try decode(InitializeRequest.self, &reader)
            return perform { () throws(CallFailure) in
                try check(table.cuInit(request.flags))
                return InitializeReply()
            }
        case .ping:
            // Answered here, with no driver call: the protocol's own round trip.
            _ = try decode(PingRequest.self, &reader)
            return CallOutcome(status: CUDA_SUCCESS, payload: [])
        case .primaryCtxRetain:
            let request = try decode(PrimaryCtxRetainRequest.self, &reader)
            return perform { () throws(CallFailure) in PrimaryCtxRetainReply(context: try retainPrimary(request.device)) }
        case .primaryCtxRelease:
            let request = try decode(PrimaryCtxReleaseRequest.self, &reader)
            return perform { () throws(CallFailure) in
                PrimaryCtxReleaseReply(destroyed: try releasePrimary(request.device) ? 1 : 0)
            }
        case .streamCreate:
            let request = try decode(StreamCreateRequest.self, &reader)
            return perform { () throws(CallFailure) in
                var stream: CUstream?
                try check(table.cuStreamCreate(&stream, request.flags))
                try adopt(.stream, stream, clientID: request.stream)
                return StreamCreateReply()
            }
        case .eventCreate:
            let request = try decode(EventCreateRequest.self, &reader)
            return perform { () throws(CallFailure) in
                var event: CUevent?
                try check(table.cuEventCreate(&event, request.flags))
                try adopt(.event, event, clientID: request.event)
                return EventCreateReply()
            }
        case .primaryCtxSetFlags:
            let request = try decode(PrimaryCtxSetFlagsRequest.self, &reader)
            return perform { () throws(CallFailure) in
                try checkDevice(request.device)
                primaryContexts[request.device, default: PrimaryContext()].flags = request.flags
                return PrimaryCtxSetFlagsReply()
            }
        case .primaryCtxGetState:
            let request = try decode(PrimaryCtxGetStateRequest.self, &reader)
            return perform { () throws(CallFailure) in
                try checkDevice(request.device)
                let primary = primaryContexts[request.device] ?? PrimaryContext()
                return PrimaryCtxGetStateReply(flags: primary.flags, active: primary.references > 0 ? 1 : 0)
            }
        case .primaryCtxReset:
            let request = try decode(PrimaryCtxResetRequest.self, &reader)
            return perform { () throws(CallFailure) in
                try checkDevice(request.device)
                if let primary = primaryContexts[request.device], primary.context != 0 { destroyContext(primary.context) }
                primaryContexts[request.device]?.references = 0
                primaryContexts[request.device]?.context = 0
                return PrimaryCtxResetReply()
            }
        case .memcpyDtoH:
            return try copyToHost(try decode(MemcpyDtoHRequest.self, &reader), compressible: flags.contains(.compressed))
        case .pointerGetAttribute:
            let request = try decode(PointerGetAttributeRequest.self, &reader)
            return perform { () throws(CallFailure) in PointerGetAttributeReply(value: try pointerAttribute(request)) }
        case .moduleLoad:
            return loadAndCacheModule(try decode(ModuleLoadRequest.self, &reader))
        case .moduleLoadCached:
            return loadCachedModule(try decode(ModuleLoadCachedRequest.self, &reader))
        case .managementOpen, .deviceFacts, .deviceView: return try dispatchManagement(call, &reader)
        default:
            throw ProtocolError(.unknownCall, "call \(call) is not served")
        }
    }

    func decode<Request: WireMessage>(_: Request.Type, _ reader: inout WireReader) throws(ProtocolError) -> Request {
        let request = try Request(from: &reader)
        try reader.expectEnd()
        return request
    }

    private func checkDevice(_ device: Int32) throws(CallFailure) {
        var count: Int32 = 0
        try check(table.cuDeviceGetCount(&count))
        guard device >= 0, device < count else { throw CallFailure(CUDA_ERROR_INVALID_DEVICE) }
    }

    /// The session's private stand-in for the device's primary context, created on first retain.
    private func retainPrimary(_ device: Int32) throws(CallFailure) -> UInt64 {
        try checkDevice(device)
        var primary = primaryContexts[device] ?? PrimaryContext()
        if primary.context == 0 {
            var context: CUcontext?
            try check(table.cuCtxCreate_v2(&context, primary.flags, device))
            // cuCtxCreate pushed the context on this thread; the next call selects its own.
            currentContext = .max
            primary.context = register(.context, context)
        }
        primary.references += 1
        primaryContexts[device] = primary
        return primary.context
    }

    /// Registers a stream or event the driver just created under the id the client minted; an id
    /// that is not the client's to choose destroys the object again.
    private func adopt(_ kind: HandleKind, _ pointer: OpaquePointer?, clientID: UInt64) throws(CallFailure) {
        guard let pointer else { throw CallFailure(CUDA_ERROR_UNKNOWN) }
        guard handles.insert(kind, pointer, context: currentContext, clientID: clientID) else {
            _ = kind == .stream ? table.cuStreamDestroy_v2(pointer) : table.cuEventDestroy_v2(pointer)
            throw CallFailure(CUDA_ERROR_INVALID_VALUE)
        }
    }

    /// Returns whether the context was destroyed (its count reached zero).
    private func releasePrimary(_ device: Int32) throws(CallFailure) -> Bool {
        try checkDevice(device)
        guard var primary = primaryContexts[device], primary.references > 0 else {
            throw CallFailure(CUDA_ERROR_INVALID_CONTEXT)
        }
        primary.references -= 1
        primaryContexts[device] = primary
        if primary.references == 0 {
            destroyContext(primary.context)
            primaryContexts[device]?.context = 0
            return true
        }
        return false
    }

    private func destroyContext(_ id: UInt64) {
        guard let pointer = handles.lookup(.context, id) else { return }
        for allocation in memory.allocations where allocation.context == id && !allocation.isGlobal {
            selectContext(id)
            _ = table.cuMemFree_v2(allocation.start)
        }
        _ = table.cuCtxDestroy_v2(pointer)
        currentContext = .max
        release(.context, id)
    }

    private func pointerAttribute(_ request: PointerGetAttributeRequest) throws(CallFailure) -> UInt64 {
        // Only the session's own memory may be asked about.
        try checkRange(request.pointer, count: 1, elementSize: 1)
        var value: UInt64 = 0
        let attribute = CUpointer_attribute(rawValue: numericCast(request.attribute))
        try check(table.cuPointerGetAttribute(&value, attribute, request.pointer))
        if attribute == CU_POINTER_ATTRIBUTE_CONTEXT {
            // A driver context pointer means nothing to the client: answer with its handle.
            guard let pointer = OpaquePointer(bitPattern: UInt(value)) else { return 0 }
            return handles.id(of: pointer, kind: .context) ?? 0
        }
        return value
    }

    /// Loads a module and answers with every kernel's name and parameter layout.
    func loadModule(_ image: [UInt8]) throws(CallFailure) -> ModuleLoadReply {
        // PTX text must end in NUL, and a reader looking for another fatbinary container after
        // the last one (the driver gets only a pointer) must find zeros, not what follows the
        // buffer; binary formats carry their size.
        var image = image
        image.append(contentsOf: repeatElement(0, count: 16))
        var module: CUmodule?
        try check(image.withUnsafeBytes { bytes in table.cuModuleLoadData(&module, bytes.baseAddress) })
        var count: UInt32 = 0
        var status = table.cuModuleGetFunctionCount(&count, module)
        var functions = [CUfunction?](repeating: nil, count: Int(count))
        if status == CUDA_SUCCESS { status = table.cuModuleEnumerateFunctions(&functions, count, module) }
        guard status == CUDA_SUCCESS else {
            _ = table.cuModuleUnload(module)
            throw CallFailure(status)
        }
        let moduleID = register(.module, module)
        var kernels: [Kernel] = []
        for function in functions {
            var name: UnsafePointer<CChar>?
            try check(table.cuFuncGetName(&name, function))
            var parameters: [KernelParameter] = []
            var index = 0
            while true {
                var offset = 0
                var size = 0
                guard table.cuFuncGetParamInfo(function, index, &offset, &size) == CUDA_SUCCESS else { break }
                parameters.append(KernelParameter(offset: UInt32(offset), size: UInt32(size)))
                index += 1
            }
            var maxThreads: Int32 = 0
            var staticShared: Int32 = 0
            try check(table.cuFuncGetAttribute(&maxThreads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, function))
            try check(table.cuFuncGetAttribute(&staticShared, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, function))
            let functionID = register(.function, function, module: moduleID)
            kernelLayouts[functionID] = KernelLayout(parameters: parameters)
            kernels.append(
                Kernel(
                    function: functionID, name: name.map { String(cString: $0) } ?? "", parameters: parameters,
                    maxThreadsPerBlock: UInt32(clamping: maxThreads), staticSharedBytes: UInt32(clamping: staticShared)))
        }
        return ModuleLoadReply(module: moduleID, kernels: kernels)
    }

    /// Serves a launch frame read in place (Connection.serve): no copy of its parameter block,
    /// no allocation.
    func serveLaunch(_ frame: LaunchKernelFrame, following: BufferedLaunches) -> LaunchOutcome {
        let probe = launchWillReplay(stream: frame.stream)
        var status = CUDA_SUCCESS
        var deferred: CUresult?
        do {
            if computeScheduled {
                deferred = try launchInTurn(frame, following: following)
            } else {
                try check(enqueue(frame).status)
                _ = usage.launches.wrappingAdd(1, ordering: .relaxed)
            }
        } catch {
            status = error.status
        }
        if let probe { launchDidReplay(probe, status: status) }
        return LaunchOutcome(status: status, deferredFailure: deferred)
    }

    /// Validates a launch and hands it to the driver; returns the driver's status and the
    /// launch's stream. Argument errors throw before anything is launched.
    func enqueue(_ frame: LaunchKernelFrame) throws(CallFailure) -> (status: CUresult, stream: CUstream?) {
        // The lookup is the session's `lastLaunch`, which holds it: used without counting
        // references on it or its layout.
        let launched = try launchLookup(frame)._withUnsafeGuaranteedRef { lookup in
            lookup.launch(frame, on: table).map { (status: $0, stream: lookup.driverStream) }
        }
        guard let launched else { throw CallFailure(CUDA_ERROR_INVALID_VALUE) }
        return launched
    }

    /// The driver handles and parameter layout a launch frame names: the last launch's, when it
    /// named the same function and stream and no handle has been removed since.
    private func launchLookup(_ frame: LaunchKernelFrame) throws(CallFailure) -> Unmanaged<LaunchLookup> {
        if let last = lastLaunch, last.function == frame.function, last.stream == frame.stream,
            last.removals == handles.removals
        {
            return Unmanaged.passUnretained(last)
        }
        let function = try handle(.function, frame.function)
        guard let layout = kernelLayouts[frame.function] else { throw CallFailure(CUDA_ERROR_INVALID_HANDLE) }
        let stream = try handle(.stream, frame.stream)
        let lookup = LaunchLookup(
            function: frame.function, stream: frame.stream, removals: handles.removals, driverFunction: function,
            layout: layout, driverStream: stream)
        lastLaunch = lookup
        return Unmanaged.passUnretained(lookup)
    }
}
