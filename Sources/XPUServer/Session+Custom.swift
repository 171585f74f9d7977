import CXPUDriver
import XPUProtocol
import XPUTransport

extension Session {
    /// Replays the calls whose handling is written by hand (`custom` in proto/cuda-driver.api).
    func dispatchCustom(_ call: CallID, _ reader: inout WireReader) throws(ProtocolError) -> CallOutcome {
        switch call {
        case .initialize:
            let request = try decode(InitializeRequest.self, &reader)
            return perform { () throws(CallFailure) in
                try check(table.cuInit(request.flags))
                return InitializeReply()
            }
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
        case .memcpyHtoD:
            // Decoded in place: the data is used where it arrived, not copied into a message.
            let destination: UInt64 = try reader.read()
            let remainingBytes: UInt64 = try reader.read()
            let stream: UInt64 = try reader.read()
            let asynchronous: UInt8 = try reader.read()
            let compressed = frameFlags.contains(.compressed)
            let rawCount = compressed ? Int(try reader.read(UInt32.self)) : 0
            let count = Int(try reader.read(UInt32.self))
            guard count <= ProtocolLimits.maximumBulkBytes else {
                throw ProtocolError(.tooLarge, "blob of \(count) bytes exceeds \(ProtocolLimits.maximumBulkBytes)")
            }
            guard reader.remaining == count else {
                throw ProtocolError(reader.remaining < count ? .truncated : .malformed, "copy data of \(reader.remaining) bytes, \(count) announced")
            }
            let start = reader.offset
            if compressed {
                guard rawCount <= ProtocolLimits.maximumBulkBytes, let codec = LZ4Codec.shared else {
                    throw ProtocolError(.tooLarge, "compressed chunk of \(rawCount) bytes")
                }
                let target = UnsafeMutableRawBufferPointer(rebasing: staging[0..<rawCount])
                let inflated = reader.bytes.withUnsafeBytes { payload in
                    codec.decompress(UnsafeRawBufferPointer(rebasing: payload[start...]), into: target)
                }
                guard inflated else { throw ProtocolError(.malformed, "LZ4 data does not inflate to \(rawCount) bytes") }
                return perform { () throws(CallFailure) in
                    try copyToDevice(
                        destination: destination, data: UnsafeRawBufferPointer(target), remainingBytes: remainingBytes,
                        stream: stream, asynchronous: asynchronous != 0)
                    return MemcpyHtoDReply()
                }
            }
            return perform { () throws(CallFailure) in
                let copied: Result<Void, CallFailure> = reader.bytes.withUnsafeBytes { payload in
                    Result { () throws(CallFailure) in
                        try copyToDevice(
                            destination: destination, data: UnsafeRawBufferPointer(rebasing: payload[start...]),
                            remainingBytes: remainingBytes, stream: stream, asynchronous: asynchronous != 0)
                    }
                }
                try copied.get()
                return MemcpyHtoDReply()
            }
        case .memcpyDtoH:
            let request = try decode(MemcpyDtoHRequest.self, &reader)
            guard request.count <= UInt64(ProtocolLimits.maximumBulkBytes) else {
                throw ProtocolError(.tooLarge, "device-to-host chunk of \(request.count) bytes")
            }
            do {
                let data = try copyToHost(request)
                if let packed = compressedReply(data) { return packed }
                // The reply is `bytes data`: its u32 count, then the data sent from where it lies.
                var prefix = WireWriter(capacity: 4)
                prefix.write(UInt32(data.count))
                return CallOutcome(status: CUDA_SUCCESS, payload: prefix.bytes, bulk: data)
            } catch {
                return .failure(error.status)
            }
        case .pointerGetAttribute:
            let request = try decode(PointerGetAttributeRequest.self, &reader)
            return perform { () throws(CallFailure) in PointerGetAttributeReply(value: try pointerAttribute(request)) }
        case .moduleLoad:
            let request = try decode(ModuleLoadRequest.self, &reader)
            return perform { () throws(CallFailure) in try loadModule(request.image) }
        case .launchKernel:
            let request = try decode(LaunchKernelRequest.self, &reader)
            return perform { () throws(CallFailure) in
                try launch(request)
                return LaunchKernelReply()
            }
        case .managementOpen, .deviceFacts, .deviceView: return try dispatchManagement(call, &reader)
        default:
            throw ProtocolError(.unknownCall, "call \(call) is not served")
        }
    }

    /// A device-to-host chunk as LZ4 data (u32 size before compression, then the blob), when the
    /// session negotiated compression and it pays; nil to send the data raw.
    private func compressedReply(_ data: [UInt8]) -> CallOutcome? {
        guard compression, frameFlags.contains(.compressed), let codec = LZ4Codec.shared else { return nil }
        return data.withUnsafeBytes { raw -> CallOutcome? in
            guard downloadGovernor.shouldCompress(raw, codec: codec, scratch: sampleScratch) else { return nil }
            let limit = Int(Double(raw.count) * CompressionGovernor.worthwhileRatio)
            var compressed = false
            let packed = [UInt8](unsafeUninitializedCapacity: codec.bound(raw.count)) { buffer, written in
                written = codec.compress(raw, into: UnsafeMutableRawBufferPointer(buffer), limit: limit) ?? 0
                compressed = written > 0
            }
            guard compressed else { return nil }
            let count = packed.count
            var prefix = WireWriter(capacity: 8)
            prefix.write(UInt32(raw.count))
            prefix.write(UInt32(count))
            return CallOutcome(status: CUDA_SUCCESS, payload: prefix.bytes, bulk: packed, flags: .compressed)
        }
    }

    private func decode<Request: WireMessage>(_: Request.Type, _ reader: inout WireReader) throws(ProtocolError) -> Request {
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

    private func copyToDevice(
        destination: UInt64, data: UnsafeRawBufferPointer, remainingBytes: UInt64, stream streamID: UInt64, asynchronous: Bool
    ) throws(CallFailure) {
        guard UInt64(data.count) <= remainingBytes else { throw CallFailure(CUDA_ERROR_INVALID_VALUE) }
        try checkRange(destination, count: remainingBytes, elementSize: 1)
        if asynchronous {
            let stream = try handle(.stream, streamID)
            try check(table.cuMemcpyHtoDAsync_v2(destination, data.baseAddress, data.count, stream))
            // The data lives in the received frame, which is gone after this call: finish the
            // copy first (protocol version 1).
            try check(table.cuStreamSynchronize(stream))
        } else {
            try check(table.cuMemcpyHtoD_v2(destination, data.baseAddress, data.count))
        }
    }

    private func copyToHost(_ request: MemcpyDtoHRequest) throws(CallFailure) -> [UInt8] {
        guard request.count <= request.remainingBytes else { throw CallFailure(CUDA_ERROR_INVALID_VALUE) }
        try checkRange(request.source, count: request.remainingBytes, elementSize: 1)
        var data = [UInt8](repeating: 0, count: Int(request.count))
        let count = data.count
        if request.asynchronous != 0 {
            let stream = try handle(.stream, request.stream)
            try check(
                data.withUnsafeMutableBytes { bytes in
                    let status = table.cuMemcpyDtoHAsync_v2(bytes.baseAddress, request.source, count, stream)
                    return status == CUDA_SUCCESS ? self.table.cuStreamSynchronize(stream) : status
                })
        } else {
            try check(
                data.withUnsafeMutableBytes { bytes in
                    table.cuMemcpyDtoH_v2(bytes.baseAddress, request.source, count)
                })
        }
        return data
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
    private func loadModule(_ image: [UInt8]) throws(CallFailure) -> ModuleLoadReply {
        var image = image
        if image.last != 0 { image.append(0) }  // PTX text must end in NUL; binary formats carry their size
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

    private func launch(_ request: LaunchKernelRequest) throws(CallFailure) {
        guard computeScheduled else {
            try check(enqueue(request).status)
            _ = usage.launches.wrappingAdd(1, ordering: .relaxed)
            return
        }
        try launchInTurn(request)
    }

    /// Validates a launch and hands it to the driver; returns the driver's status and the
    /// launch's stream. Argument errors throw before anything is launched.
    func enqueue(_ request: LaunchKernelRequest) throws(CallFailure) -> (status: CUresult, stream: CUstream?) {
        let function = try handle(.function, request.function)
        guard let layout = kernelLayouts[request.function] else { throw CallFailure(CUDA_ERROR_INVALID_HANDLE) }
        guard request.parameters.count == layout.bytes else { throw CallFailure(CUDA_ERROR_INVALID_VALUE) }
        let stream = try handle(.stream, request.stream)
        // kernelParams point into the received block (the driver only reads them), from a
        // temporary on the stack: a launch allocates nothing here.
        let status = request.parameters.withUnsafeBytes { block in
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: max(layout.parameters.count, 1)) {
                arguments in
                for (index, parameter) in layout.parameters.enumerated() {
                    arguments[index] = UnsafeMutableRawPointer(mutating: block.baseAddress! + Int(parameter.offset))
                }
                return self.table.cuLaunchKernel(
                    function, request.gridX, request.gridY, request.gridZ, request.blockX, request.blockY, request.blockZ,
                    request.sharedMemBytes, stream, layout.parameters.isEmpty ? nil : arguments.baseAddress, nil)
            }
        }
        return (status, stream)
    }
}
