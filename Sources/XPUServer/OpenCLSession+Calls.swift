#if canImport(Glibc)
import Glibc
#endif
import CXPUOpenCL
import XPUAdmission
import XPUProtocol

extension OpenCLSession {
    /// Replays one call; the encoded reply on success.
    func handle(_ call: CallID, _ payload: [UInt8]) throws(Failure) -> [UInt8] {
        switch call {
        case .cLGetPlatform:
            _ = try decode(CLGetPlatformRequest.self, payload)
            return CLGetPlatformReply(info: platform.platformInfo, devices: platform.deviceFacts(quota: usage.slice?.memoryQuota)).encoded
        case .cLRelease:
            try forget(try decode(CLReleaseRequest.self, payload).object)
            return []
        case .cLCreateContext:
            let request = try decode(CLCreateContextRequest.self, payload)
            guard !request.devices.isEmpty else { throw Failure(CL_INVALID_VALUE) }
            var devices: [cl_device_id?] = []
            for id in request.devices { devices.append(try device(id)) }
            var status: cl_int = CL_SUCCESS
            let context = library.clCreateContext!(nil, cl_uint(devices.count), devices, nil, nil, &status)
            try check(status)
            return CLCreateContextReply(context: try adopt(.context, context)).encoded
        case .cLCreateCommandQueue:
            let request = try decode(CLCreateCommandQueueRequest.self, payload)
            let context = try pointer(request.context, .context)
            var status: cl_int = CL_SUCCESS
            // A scheduled session's kernels are charged their profiled device time.
            let profiling = turns == nil ? 0 : cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE)
            let queue = library.clCreateCommandQueue!(context, try device(request.device), request.properties | profiling, &status)
            try check(status)
            return CLCreateCommandQueueReply(queue: try adopt(.queue, queue, context: request.context)).encoded
        case .cLCreateBuffer:
            return try createBuffer(try decode(CLCreateBufferRequest.self, payload)).encoded
        case .cLEnqueueWriteBuffer:
            let request = try decode(CLEnqueueWriteBufferRequest.self, payload)
            let buffer = try object(request.buffer, .buffer)
            let queue = request.queue == 0 ? try uploadQueue(buffer.context) : try pointer(request.queue, .queue)
            let wait = try waitList(request.waitList)
            // Blocking on the platform: the bytes live in this frame only.
            try enqueue(event: request.event) { event in
                request.data.withUnsafeBytes { data in
                    library.clEnqueueWriteBuffer!(
                        queue, buffer.pointer, cl_bool(CL_TRUE), Int(request.offset), data.count, data.baseAddress,
                        cl_uint(wait.count), wait.isEmpty ? nil : wait, event)
                }
            }
            return []
        case .cLEnqueueReadBuffer:
            let request = try decode(CLEnqueueReadBufferRequest.self, payload)
            let queue = try pointer(request.queue, .queue)
            let buffer = try pointer(request.buffer, .buffer)
            guard request.size <= UInt64(ProtocolLimits.maximumBulkBytes) else { throw Failure(CL_INVALID_VALUE) }
            let wait = try waitList(request.waitList)
            var data = [UInt8](repeating: 0, count: Int(request.size))
            try enqueue(event: request.event) { event in
                data.withUnsafeMutableBytes { bytes in
                    library.clEnqueueReadBuffer!(
                        queue, buffer, cl_bool(CL_TRUE), Int(request.offset), bytes.count, bytes.baseAddress, cl_uint(wait.count),
                        wait.isEmpty ? nil : wait, event)
                }
            }
            return CLEnqueueReadBufferReply(data: data).encoded
        case .cLEnqueueCopyBuffer:
            let request = try decode(CLEnqueueCopyBufferRequest.self, payload)
            let queue = try pointer(request.queue, .queue)
            let source = try pointer(request.source, .buffer)
            let destination = try pointer(request.destination, .buffer)
            let wait = try waitList(request.waitList)
            try enqueue(event: request.event) { event in
                library.clEnqueueCopyBuffer!(
                    queue, source, destination, Int(request.sourceOffset), Int(request.destinationOffset), Int(request.size),
                    cl_uint(wait.count), wait.isEmpty ? nil : wait, event)
            }
            return []
        case .cLEnqueueFillBuffer:
            let request = try decode(CLEnqueueFillBufferRequest.self, payload)
            let queue = try pointer(request.queue, .queue)
            let buffer = try pointer(request.buffer, .buffer)
            let wait = try waitList(request.waitList)
            // The platform copies the pattern before the call returns.
            try enqueue(event: request.event) { event in
                request.pattern.withUnsafeBytes { pattern in
                    library.clEnqueueFillBuffer!(
                        queue, buffer, pattern.baseAddress, pattern.count, Int(request.offset), Int(request.size), cl_uint(wait.count),
                        wait.isEmpty ? nil : wait, event)
                }
            }
            return []
        case .cLCreateProgramWithSource:
            let request = try decode(CLCreateProgramWithSourceRequest.self, payload)
            let context = try pointer(request.context, .context)
            var status: cl_int = CL_SUCCESS
            // The source's bytes with their length (it need not end in NUL), NUL-terminated too
            // so that an empty source is an empty string rather than a length of 0.
            let program = (request.source + [0]).withUnsafeBytes { bytes in
                var strings: [UnsafePointer<CChar>?] = [bytes.baseAddress!.assumingMemoryBound(to: CChar.self)]
                var lengths = [request.source.count]
                return library.clCreateProgramWithSource!(context, 1, &strings, &lengths, &status)
            }
            try check(status)
            return CLCreateProgramWithSourceReply(program: try adopt(.program, program, context: request.context)).encoded
        case .cLCreateProgramWithBinary:
            let request = try decode(CLCreateProgramWithBinaryRequest.self, payload)
            let context = try pointer(request.context, .context)
            guard !request.devices.isEmpty, request.devices.count == request.binaries.count else { throw Failure(CL_INVALID_VALUE) }
            var devices: [cl_device_id?] = []
            for id in request.devices { devices.append(try device(id)) }
            let images = request.binaries.map(\.image)
            var lengths = images.map(\.count)
            var statuses = [cl_int](repeating: 0, count: images.count)
            var status: cl_int = CL_SUCCESS
            let program = Self.withPointers(images) { pointers in
                library.clCreateProgramWithBinary!(context, cl_uint(devices.count), devices, &lengths, pointers, &statuses, &status)
            }
            try check(status)
            return CLCreateProgramWithBinaryReply(program: try adopt(.program, program, context: request.context)).encoded
        case .cLBuildProgram:
            let request = try decode(CLBuildProgramRequest.self, payload)
            let program = try pointer(request.program, .program)
            var devices: [cl_device_id?] = []
            for id in request.devices { devices.append(try device(id)) }
            try check(library.clBuildProgram!(program, cl_uint(devices.count), devices.isEmpty ? nil : devices, request.options, nil, nil))
            return []
        case .cLCompileProgram:
            let request = try decode(CLCompileProgramRequest.self, payload)
            let program = try pointer(request.program, .program)
            var devices: [cl_device_id?] = []
            for id in request.devices { devices.append(try device(id)) }
            var headers: [cl_program?] = []
            for header in request.headers { headers.append(try pointer(header.program, .program)) }
            let names = request.headers.map { strdup($0.name) }
            defer { names.forEach { free($0) } }
            var namePointers: [UnsafePointer<CChar>?] = names.map { UnsafePointer<CChar>($0) }
            let status = namePointers.withUnsafeMutableBufferPointer { names in
                library.clCompileProgram!(
                    program, cl_uint(devices.count), devices.isEmpty ? nil : devices, request.options, cl_uint(headers.count),
                    headers.isEmpty ? nil : headers, headers.isEmpty ? nil : names.baseAddress, nil, nil)
            }
            try check(status)
            return []
        case .cLLinkProgram:
            let request = try decode(CLLinkProgramRequest.self, payload)
            let context = try pointer(request.context, .context)
            var devices: [cl_device_id?] = []
            for id in request.devices { devices.append(try device(id)) }
            var programs: [cl_program?] = []
            for id in request.programs { programs.append(try pointer(id, .program)) }
            var status: cl_int = CL_SUCCESS
            let linked = library.clLinkProgram!(
                context, cl_uint(devices.count), devices.isEmpty ? nil : devices, request.options, cl_uint(programs.count),
                programs.isEmpty ? nil : programs, nil, nil, &status)
            guard status == CL_SUCCESS else {
                if let linked { _ = library.clReleaseProgram!(linked) }
                throw Failure(status)
            }
            return CLLinkProgramReply(program: try adopt(.program, linked, context: request.context)).encoded
        case .cLGetInfo:
            return CLGetInfoReply(value: try info(try decode(CLGetInfoRequest.self, payload))).encoded
        case .cLCreateKernel:
            let request = try decode(CLCreateKernelRequest.self, payload)
            let program = try pointer(request.program, .program)
            var status: cl_int = CL_SUCCESS
            let kernel = library.clCreateKernel!(program, request.name, &status)
            try check(status)
            let id = try adopt(.kernel, kernel)
            var arguments: cl_uint = 0
            _ = library.clGetKernelInfo!(kernel, cl_uint(CL_KERNEL_NUM_ARGS), MemoryLayout<cl_uint>.size, &arguments, nil)
            return CLCreateKernelReply(kernel: id, arguments: arguments).encoded
        case .cLSetKernelArg:
            try setKernelArgument(try decode(CLSetKernelArgRequest.self, payload))
            return []
        case .cLEnqueueNDRangeKernel:
            let request = try decode(CLEnqueueNDRangeKernelRequest.self, payload)
            let queue = try pointer(request.queue, .queue)
            let kernel = try pointer(request.kernel, .kernel)
            let dimensions = request.global.count
            guard (1...3).contains(dimensions), request.offset.isEmpty || request.offset.count == dimensions,
                request.local.isEmpty || request.local.count == dimensions
            else { throw Failure(CL_INVALID_WORK_DIMENSION) }
            let wait = try waitList(request.waitList)
            let offset = request.offset.map { Int($0) }
            let global = request.global.map { Int($0) }
            let local = request.local.map { Int($0) }
            let enqueueKernel = library.clEnqueueNDRangeKernel!
            let launch = { (event: UnsafeMutablePointer<cl_event?>?) -> cl_int in
                enqueueKernel(
                    queue, kernel, cl_uint(dimensions), offset.isEmpty ? nil : offset, global, local.isEmpty ? nil : local,
                    cl_uint(wait.count), wait.isEmpty ? nil : wait, event)
            }
            if let turns, !holdsPendingUserEvent() {
                try enqueueInTurn(turns, event: request.event, launch)
            } else {
                try enqueue(event: request.event, launch)
            }
            usage.launches.add(1, ordering: .relaxed)
            return []
        case .cLWaitForEvents:
            let request = try decode(CLWaitForEventsRequest.self, payload)
            guard !request.events.isEmpty else { throw Failure(CL_INVALID_VALUE) }
            var events: [cl_event?] = []
            for id in request.events { events.append(try pointer(id, .event)) }
            try check(library.clWaitForEvents!(cl_uint(events.count), events))
            return []
        case .cLFinish:
            try check(library.clFinish!(try pointer(try decode(CLFinishRequest.self, payload).queue, .queue)))
            return []
        case .cLFlush:
            try check(library.clFlush!(try pointer(try decode(CLFlushRequest.self, payload).queue, .queue)))
            return []
        case .cLEnqueueMarker:
            let request = try decode(CLEnqueueMarkerRequest.self, payload)
            let queue = try pointer(request.queue, .queue)
            let wait = try waitList(request.waitList)
            let enqueueMarker = request.barrier != 0 ? library.clEnqueueBarrierWithWaitList! : library.clEnqueueMarkerWithWaitList!
            try enqueue(event: request.event) { event in enqueueMarker(queue, cl_uint(wait.count), wait.isEmpty ? nil : wait, event) }
            return []
        case .cLCreateUserEvent:
            let request = try decode(CLCreateUserEventRequest.self, payload)
            let context = try pointer(request.context, .context)
            try checkNewEvent(request.event)
            guard request.event != 0 else { throw Failure(CL_INVALID_EVENT) }
            var status: cl_int = CL_SUCCESS
            let event = library.clCreateUserEvent!(context, &status)
            try check(status)
            guard let event else { throw Failure(CL_OUT_OF_HOST_MEMORY) }
            objects[request.event] = Object(kind: .event, pointer: event, context: request.context)
            if turns != nil {
                _ = library.clRetainEvent!(event)
                pendingUserEvents.append(event)
            }
            return []
        case .cLSetUserEventStatus:
            let request = try decode(CLSetUserEventStatusRequest.self, payload)
            try check(library.clSetUserEventStatus!(try pointer(request.event, .event), request.status))
            return []
        case .cLCreateSubBuffer:
            // Not charged: its bytes are its buffer's, charged when that was made.
            let request = try decode(CLCreateSubBufferRequest.self, payload)
            let buffer = try object(request.buffer, .buffer)
            var region = (Int(truncatingIfNeeded: request.origin), Int(truncatingIfNeeded: request.size))
            var status: cl_int = CL_SUCCESS
            let sub = library.clCreateSubBuffer!(buffer.pointer, request.flags, cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION), &region, &status)
            try check(status)
            return CLCreateSubBufferReply(buffer: try adopt(.buffer, sub, context: buffer.context)).encoded
        case .cLEnqueueCopyBufferRect:
            let request = try decode(CLEnqueueCopyBufferRectRequest.self, payload)
            let queue = try pointer(request.queue, .queue)
            let source = try pointer(request.source, .buffer)
            let destination = try pointer(request.destination, .buffer)
            guard [request.sourceOrigin, request.destinationOrigin, request.region].allSatisfy({ $0.count == 3 }), request.pitches.count == 4
            else { throw Failure(CL_INVALID_VALUE) }
            let wait = try waitList(request.waitList)
            let sizes = { (values: [UInt64]) in values.map { Int(truncatingIfNeeded: $0) } }
            let (sourceOrigin, destinationOrigin, region, pitches) = (
                sizes(request.sourceOrigin), sizes(request.destinationOrigin), sizes(request.region), sizes(request.pitches)
            )
            try enqueue(event: request.event) { event in
                library.clEnqueueCopyBufferRect!(
                    queue, source, destination, sourceOrigin, destinationOrigin, region, pitches[0], pitches[1], pitches[2], pitches[3],
                    cl_uint(wait.count), wait.isEmpty ? nil : wait, event)
            }
            return []
        default:
            // A CUDA call on an OpenCL server.
            throw Failure(CL_INVALID_OPERATION)
        }
    }

    /// A new buffer, charged against the slice's memory quota first: over it the allocation fails
    /// with CL_MEM_OBJECT_ALLOCATION_FAILURE and the platform is never asked.
    func createBuffer(_ request: CLCreateBufferRequest) throws(Failure) -> CLCreateBufferReply {
        let context = try pointer(request.context, .context)
        let charge = Slice.charge(request.size)
        let (wanted, overflow) = chargedBytes.addingReportingOverflow(charge)
        if let quota = usage.slice?.memoryQuota, overflow || wanted > quota {
            logger.debug("buffer over the slice's memory quota", metadata: ["bytes": "\(request.size)", "charged": "\(chargedBytes)"])
            throw Failure(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        }
        let hostFlags = UInt64(CL_MEM_USE_HOST_PTR | CL_MEM_COPY_HOST_PTR)
        let hasContents = request.flags & hostFlags != 0
        guard hasContents == !request.contents.isEmpty, !hasContents || UInt64(request.contents.count) == request.size else {
            throw Failure(CL_INVALID_HOST_PTR)
        }
        // The client's host memory is not the server's: initial contents are always copied.
        let flags = hasContents ? request.flags & ~hostFlags | UInt64(CL_MEM_COPY_HOST_PTR) : request.flags
        var status: cl_int = CL_SUCCESS
        let buffer = request.contents.withUnsafeBytes { contents in
            library.clCreateBuffer!(context, flags, Int(request.size), hasContents ? UnsafeMutableRawPointer(mutating: contents.baseAddress) : nil, &status)
        }
        try check(status)
        let id = try adopt(.buffer, buffer, context: request.context, charge: charge)
        chargedBytes = wanted
        usage.memoryBytes.store(chargedBytes, ordering: .relaxed)
        return CLCreateBufferReply(buffer: id)
    }

    /// The queue that carries writes of no queue in `context` (made on its first device on first use).
    func uploadQueue(_ context: UInt64) throws(Failure) -> OpaquePointer {
        if let queue = uploadQueues[context] { return queue }
        let pointer = try pointer(context, .context)
        var device: cl_device_id?
        try check(library.clGetContextInfo!(pointer, cl_uint(CL_CONTEXT_DEVICES), MemoryLayout<cl_device_id?>.size, &device, nil))
        var status: cl_int = CL_SUCCESS
        let queue = library.clCreateCommandQueue!(pointer, device, 0, &status)
        try check(status)
        guard let queue else { throw Failure(CL_OUT_OF_HOST_MEMORY) }
        uploadQueues[context] = queue
        return queue
    }

    func setKernelArgument(_ request: CLSetKernelArgRequest) throws(Failure) {
        let kernel = try pointer(request.kernel, .kernel)
        switch request.kind {
        case 0:
            guard UInt64(request.value.count) == request.size else { throw Failure(CL_INVALID_ARG_SIZE) }
            try check(request.value.withUnsafeBytes { library.clSetKernelArg!(kernel, request.index, $0.count, $0.baseAddress) })
        case 1:
            guard request.value.count == 8 else { throw Failure(CL_INVALID_ARG_VALUE) }
            let id = request.value.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            var buffer: cl_mem? = id == 0 ? nil : try pointer(id, .buffer)
            try check(library.clSetKernelArg!(kernel, request.index, MemoryLayout<cl_mem?>.size, &buffer))
        case 2:
            try check(library.clSetKernelArg!(kernel, request.index, Int(request.size), nil))
        default:
            throw Failure(CL_INVALID_ARG_VALUE)
        }
    }

    /// The platform's image formats for `flags` and `type` in a context: its cl_image_format
    /// array (two cl_uint each), as clients see the device's image support (images themselves are
    /// not served).
    func imageFormats(context: OpaquePointer, flags: UInt64, type: cl_uint) throws(Failure) -> [UInt8] {
        var count: cl_uint = 0
        try check(library.clGetSupportedImageFormats!(context, flags, type, 0, nil, &count))
        var formats = [UInt8](repeating: 0, count: Int(count) * 2 * MemoryLayout<cl_uint>.size)
        guard count > 0 else { return formats }
        let status = formats.withUnsafeMutableBytes { bytes in
            library.clGetSupportedImageFormats!(context, flags, type, count, OpaquePointer(bytes.baseAddress), nil)
        }
        try check(status)
        return formats
    }

    /// clGet*Info answers the client does not keep itself (proto/opencl.api, CLGetInfo).
    func info(_ request: CLGetInfoRequest) throws(Failure) -> [UInt8] {
        let parameter = request.param
        let answer: (cl_int, [UInt8])
        switch request.query {
        case 1:
            let program = try pointer(request.object, .program)
            if parameter == cl_uint(CL_PROGRAM_BINARIES) { return try binaries(program) }
            answer = OpenCLPlatform.answer { library.clGetProgramInfo!(program, parameter, $0, $1, $2) }
        case 2:
            let program = try pointer(request.object, .program)
            let device = try device(request.device)
            answer = OpenCLPlatform.answer { library.clGetProgramBuildInfo!(program, device, parameter, $0, $1, $2) }
        case 3:
            let kernel = try pointer(request.object, .kernel)
            answer = OpenCLPlatform.answer { library.clGetKernelInfo!(kernel, parameter, $0, $1, $2) }
        case 4:
            let kernel = try pointer(request.object, .kernel)
            let device = request.device == 0 ? nil : try device(request.device)
            answer = OpenCLPlatform.answer { library.clGetKernelWorkGroupInfo!(kernel, device, parameter, $0, $1, $2) }
        case 5:
            let event = try pointer(request.object, .event)
            answer = OpenCLPlatform.answer { library.clGetEventInfo!(event, parameter, $0, $1, $2) }
        case 6:
            let event = try pointer(request.object, .event)
            answer = OpenCLPlatform.answer { library.clGetEventProfilingInfo!(event, parameter, $0, $1, $2) }
        case 7:
            let buffer = try pointer(request.object, .buffer)
            answer = OpenCLPlatform.answer { library.clGetMemObjectInfo!(buffer, parameter, $0, $1, $2) }
        case 8:
            let queue = try pointer(request.object, .queue)
            answer = OpenCLPlatform.answer { library.clGetCommandQueueInfo!(queue, parameter, $0, $1, $2) }
        case 9:
            let context = try pointer(request.object, .context)
            answer = OpenCLPlatform.answer { library.clGetContextInfo!(context, parameter, $0, $1, $2) }
        case 10:
            let kernel = try pointer(request.object, .kernel)
            answer = OpenCLPlatform.answer { library.clGetKernelArgInfo!(kernel, parameter >> 16, parameter & 0xFFFF, $0, $1, $2) }
        case 11:
            return try imageFormats(context: try pointer(request.object, .context), flags: request.device, type: parameter)
        default:
            throw Failure(CL_INVALID_VALUE)
        }
        try check(answer.0)
        return answer.1
    }

    /// A program's binaries one after another (the client splits them by CL_PROGRAM_BINARY_SIZES).
    func binaries(_ program: OpaquePointer) throws(Failure) -> [UInt8] {
        guard let sizeBytes = OpenCLPlatform.query({ library.clGetProgramInfo!(program, cl_uint(CL_PROGRAM_BINARY_SIZES), $0, $1, $2) })
        else { throw Failure(CL_INVALID_PROGRAM) }
        let sizes = sizeBytes.withUnsafeBytes { Array($0.bindMemory(to: Int.self)) }
        var joined = [UInt8](repeating: 0, count: sizes.reduce(0, +))
        let status = joined.withUnsafeMutableBytes { bytes in
            var pointers: [UnsafeMutableRawPointer?] = []
            var start = 0
            for size in sizes {
                pointers.append(bytes.baseAddress.map { $0 + start })
                start += size
            }
            return pointers.withUnsafeMutableBytes { table in
                library.clGetProgramInfo!(program, cl_uint(CL_PROGRAM_BINARIES), table.count, table.baseAddress, nil)
            }
        }
        try check(status)
        return joined
    }

    /// Runs `body` with a table of pointers to each image (all kept in one buffer meanwhile).
    static func withPointers<R>(_ images: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafePointer<UInt8>?>) -> R) -> R {
        let joined = images.flatMap { $0 }
        return joined.withUnsafeBufferPointer { bytes in
            var pointers: [UnsafePointer<UInt8>?] = []
            var start = 0
            for image in images {
                pointers.append(bytes.baseAddress.map { $0 + start })
                start += image.count
            }
            return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
        }
    }
}
