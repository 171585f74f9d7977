#if canImport(Glibc)
import Glibc
#endif
import CXPUOpenCL
import XPUProtocol

// Programs are built by the server's platform; kernels are created there, and their arguments
// set there (one round trip each, so a wrong argument fails at clSetKernelArg as OpenCL requires).

extension ICDState {
    mutating func adoptProgram(_ context: CLObject, remote: UInt64, devices: [CLObject]) throws(ICDError) -> CLObject {
        guard let program = adopt(.program, remote: remote) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        program.context = context
        context.references += 1
        program.devices = devices
        return program
    }

    /// The devices a call names (all of `owner`'s when none), each one of `owner`'s.
    func devices(_ count: cl_uint, _ list: UnsafePointer<cl_device_id?>?, of owner: CLObject) throws(ICDError) -> [CLObject] {
        guard (count == 0) == (list == nil) else { throw ICDError(CL_INVALID_VALUE) }
        guard count > 0 else { return owner.devices }
        var chosen: [CLObject] = []
        for handle in handleList(count, list) {
            guard let device = object(handle, .device), owner.devices.contains(where: { $0 === device }) else {
                throw ICDError(CL_INVALID_DEVICE)
            }
            chosen.append(device)
        }
        return chosen
    }
}

@c @implementation public func clCreateProgramWithSource(
    _ context: cl_context?, _ count: cl_uint, _ strings: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
    _ lengths: UnsafePointer<Int>?, _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> cl_program? {
    ICD.create(errcode_ret) { state throws(ICDError) in
        let context = try state.require(context, .context)
        guard count > 0, let strings else { throw ICDError(CL_INVALID_VALUE) }
        var source: [UInt8] = []
        for index in 0..<Int(count) {
            guard let string = strings[index] else { throw ICDError(CL_INVALID_VALUE) }
            let length = lengths.map { $0[index] } ?? 0
            let bytes = UnsafeRawPointer(string).assumingMemoryBound(to: UInt8.self)
            source += length > 0
                ? Array(UnsafeBufferPointer(start: bytes, count: length))
                : Array(UnsafeBufferPointer(start: bytes, count: strlen(string)))
        }
        guard source.count <= ProtocolLimits.maximumBulkBytes else { throw ICDError(CL_OUT_OF_RESOURCES) }
        let reply = try state.exchange(CLCreateProgramWithSourceRequest(context: context.remote, source: source))
        let program = try state.adoptProgram(context, remote: reply.program, devices: context.devices)
        program.facts[cl_uint(CL_PROGRAM_SOURCE)] = source + [0]
        return program
    }
}

@c @implementation public func clCreateProgramWithBinary(
    _ context: cl_context?, _ num_devices: cl_uint, _ device_list: UnsafePointer<cl_device_id?>?, _ lengths: UnsafePointer<Int>?,
    _ binaries: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, _ binary_status: UnsafeMutablePointer<cl_int>?,
    _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> cl_program? {
    ICD.create(errcode_ret) { state throws(ICDError) in
        let context = try state.require(context, .context)
        guard num_devices > 0, let lengths, let binaries else { throw ICDError(CL_INVALID_VALUE) }
        let devices = try state.devices(num_devices, device_list, of: context)
        var images: [CLBinary] = []
        for index in 0..<Int(num_devices) {
            guard let binary = binaries[index], lengths[index] > 0 else {
                binary_status?[index] = CL_INVALID_VALUE
                throw ICDError(CL_INVALID_VALUE)
            }
            images.append(CLBinary(image: Array(UnsafeBufferPointer(start: binary, count: lengths[index]))))
        }
        let reply = try state.exchange(
            CLCreateProgramWithBinaryRequest(context: context.remote, devices: devices.map(\.remote), binaries: images))
        for index in 0..<Int(num_devices) { binary_status?[index] = CL_SUCCESS }
        return try state.adoptProgram(context, remote: reply.program, devices: devices)
    }
}

@c @implementation public func clRetainProgram(_ program: cl_program?) -> cl_int {
    ICD.call { state throws(ICDError) in try state.require(program, .program).references += 1 }
}

@c @implementation public func clReleaseProgram(_ program: cl_program?) -> cl_int {
    ICD.call { state throws(ICDError) in state.release(try state.require(program, .program)) }
}

@c @implementation public func clBuildProgram(
    _ program: cl_program?, _ num_devices: cl_uint, _ device_list: UnsafePointer<cl_device_id?>?, _ options: UnsafePointer<CChar>?,
    _ pfn_notify: (@convention(c) (cl_program?, UnsafeMutableRawPointer?) -> Void)?, _ user_data: UnsafeMutableRawPointer?
) -> cl_int {
    var notify: (() -> Void)?
    let status = ICD.call { state throws(ICDError) in
        let program = try state.require(program, .program)
        guard pfn_notify != nil || user_data == nil else { throw ICDError(CL_INVALID_VALUE) }
        let devices = try state.devices(num_devices, device_list, of: program)
        let text = options.map { String(cString: $0) } ?? ""
        // The build completes before the call returns; the callback, if any, follows at once.
        if let pfn_notify { notify = { pfn_notify(program.opaque, user_data) } }
        _ = try state.exchange(CLBuildProgramRequest(program: program.remote, devices: devices.map(\.remote), options: text))
        program.nonUniformWorkGroups = (text.contains("-cl-std=CL2") || text.contains("-cl-std=CL3"))
            && !text.contains("-cl-uniform-work-group-size")
    }
    notify?()
    return status
}

/// Compiles on the server like clBuildProgram (synchronously; the callback follows); each header
/// travels as the program holding its source and the name the source includes it by.
@c @implementation public func clCompileProgram(
    _ program: cl_program?, _ num_devices: cl_uint, _ device_list: UnsafePointer<cl_device_id?>?, _ options: UnsafePointer<CChar>?,
    _ num_input_headers: cl_uint, _ input_headers: UnsafePointer<cl_program?>?,
    _ header_include_names: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
    _ pfn_notify: (@convention(c) (cl_program?, UnsafeMutableRawPointer?) -> Void)?, _ user_data: UnsafeMutableRawPointer?
) -> cl_int {
    var notify: (() -> Void)?
    let status = ICD.call { state throws(ICDError) in
        let program = try state.require(program, .program)
        guard pfn_notify != nil || user_data == nil else { throw ICDError(CL_INVALID_VALUE) }
        guard (num_input_headers == 0) == (input_headers == nil), (num_input_headers == 0) == (header_include_names == nil) else {
            throw ICDError(CL_INVALID_VALUE)
        }
        let devices = try state.devices(num_devices, device_list, of: program)
        var headers: [CLHeader] = []
        for index in 0..<Int(num_input_headers) {
            let header = try state.require(input_headers?[index], .program)
            guard let name = header_include_names?[index] else { throw ICDError(CL_INVALID_VALUE) }
            headers.append(CLHeader(program: header.remote, name: String(cString: name)))
        }
        if let pfn_notify { notify = { pfn_notify(program.opaque, user_data) } }
        _ = try state.exchange(
            CLCompileProgramRequest(
                program: program.remote, devices: devices.map(\.remote), options: options.map { String(cString: $0) } ?? "",
                headers: headers))
    }
    notify?()
    return status
}

/// Links compiled programs into a new one on the server (synchronously; the callback follows).
/// A failed link returns NULL with the error, and no program to ask for a log.
@c @implementation public func clLinkProgram(
    _ context: cl_context?, _ num_devices: cl_uint, _ device_list: UnsafePointer<cl_device_id?>?, _ options: UnsafePointer<CChar>?,
    _ num_input_programs: cl_uint, _ input_programs: UnsafePointer<cl_program?>?,
    _ pfn_notify: (@convention(c) (cl_program?, UnsafeMutableRawPointer?) -> Void)?, _ user_data: UnsafeMutableRawPointer?,
    _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> cl_program? {
    var notify: ((cl_program?) -> Void)?
    let linked = ICD.create(errcode_ret) { state throws(ICDError) in
        let context = try state.require(context, .context)
        guard pfn_notify != nil || user_data == nil, num_input_programs > 0, input_programs != nil else { throw ICDError(CL_INVALID_VALUE) }
        let devices = try state.devices(num_devices, device_list, of: context)
        var programs: [UInt64] = []
        for handle in handleList(num_input_programs, input_programs) { programs.append(try state.require(handle, .program).remote) }
        if let pfn_notify { notify = { pfn_notify($0, user_data) } }
        let reply = try state.exchange(
            CLLinkProgramRequest(
                context: context.remote, devices: devices.map(\.remote), options: options.map { String(cString: $0) } ?? "",
                programs: programs))
        return try state.adoptProgram(context, remote: reply.program, devices: devices)
    }
    if linked != nil { notify?(linked) }
    return linked
}

@c @implementation public func clGetProgramInfo(
    _ program: cl_program?, _ param_name: cl_program_info, _ param_value_size: Int, _ param_value: UnsafeMutableRawPointer?,
    _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let program = try state.require(program, .program)
        let bytes: [UInt8]
        switch Int32(param_name) {
        case CL_PROGRAM_REFERENCE_COUNT: bytes = Info.bytes(of: program.references)
        case CL_PROGRAM_CONTEXT: bytes = Info.handles([program.context!])
        case CL_PROGRAM_NUM_DEVICES: bytes = Info.bytes(of: cl_uint(program.devices.count))
        case CL_PROGRAM_DEVICES: bytes = Info.handles(program.devices)
        case CL_PROGRAM_SOURCE: bytes = program.facts[param_name] ?? [0]
        case CL_PROGRAM_BINARIES:
            // An array of the caller's buffers, one per device, each CL_PROGRAM_BINARY_SIZES long:
            // the server sends the binaries one after another.
            let sizes = try Info.remote(&state, .program, program, cl_uint(CL_PROGRAM_BINARY_SIZES)).withUnsafeBytes {
                Array($0.bindMemory(to: Int.self))
            }
            let pointerBytes = sizes.count * MemoryLayout<UInt>.size
            param_value_size_ret?.pointee = pointerBytes
            guard let param_value else { return }
            guard param_value_size >= pointerBytes else { throw ICDError(CL_INVALID_VALUE) }
            let joined = try Info.remote(&state, .program, program, param_name)
            guard joined.count == sizes.reduce(0, +) else { throw ICDError.lost("program binaries do not match their sizes") }
            let destinations = param_value.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
            var start = 0
            for (index, size) in sizes.enumerated() {
                if let destination = destinations[index], size > 0 {
                    joined[start..<start + size].withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: size) }
                }
                start += size
            }
            return
        default: bytes = try Info.remote(&state, .program, program, param_name)
        }
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

@c @implementation public func clGetProgramBuildInfo(
    _ program: cl_program?, _ device: cl_device_id?, _ param_name: cl_program_build_info, _ param_value_size: Int,
    _ param_value: UnsafeMutableRawPointer?, _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let program = try state.require(program, .program)
        let device = try state.require(device, .device)
        let bytes = try Info.remote(&state, .programBuild, program, device: device, param_name)
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

extension ICDState {
    mutating func createKernel(_ program: CLObject, _ name: String) throws(ICDError) -> CLObject {
        let reply = try exchange(CLCreateKernelRequest(program: program.remote, name: name))
        guard let kernel = adopt(.kernel, remote: reply.kernel) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        kernel.program = program
        kernel.context = program.context
        program.references += 1
        program.context?.references += 1
        kernel.name = name
        kernel.arguments = reply.arguments
        return kernel
    }
}

@c @implementation public func clCreateKernel(
    _ program: cl_program?, _ kernel_name: UnsafePointer<CChar>?, _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> cl_kernel? {
    ICD.create(errcode_ret) { state throws(ICDError) in
        let program = try state.require(program, .program)
        guard let kernel_name else { throw ICDError(CL_INVALID_VALUE) }
        return try state.createKernel(program, String(cString: kernel_name))
    }
}

/// One kernel per kernel function of the program, named by the program's CL_PROGRAM_KERNEL_NAMES
/// (which fails with CL_INVALID_PROGRAM_EXECUTABLE until the program is built).
@c @implementation public func clCreateKernelsInProgram(
    _ program: cl_program?, _ num_kernels: cl_uint, _ kernels: UnsafeMutablePointer<cl_kernel?>?,
    _ num_kernels_ret: UnsafeMutablePointer<cl_uint>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let program = try state.require(program, .program)
        let list = try Info.remote(&state, .program, program, cl_uint(CL_PROGRAM_KERNEL_NAMES))
        let names = String(decoding: list.prefix { $0 != 0 }, as: UTF8.self).split(separator: ";").map(String.init)
        if let kernels {
            guard num_kernels >= names.count else { throw ICDError(CL_INVALID_VALUE) }
            var created: [CLObject] = []
            do throws(ICDError) {
                for name in names { created.append(try state.createKernel(program, name)) }
            } catch {
                for kernel in created { state.release(kernel) }
                throw error
            }
            for (index, kernel) in created.enumerated() { kernels[index] = kernel.opaque }
        }
        num_kernels_ret?.pointee = cl_uint(names.count)
    }
}

@c @implementation public func clRetainKernel(_ kernel: cl_kernel?) -> cl_int {
    ICD.call { state throws(ICDError) in try state.require(kernel, .kernel).references += 1 }
}

@c @implementation public func clReleaseKernel(_ kernel: cl_kernel?) -> cl_int {
    ICD.call { state throws(ICDError) in state.release(try state.require(kernel, .kernel)) }
}

@c @implementation public func clSetKernelArg(
    _ kernel: cl_kernel?, _ arg_index: cl_uint, _ arg_size: Int, _ arg_value: UnsafeRawPointer?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let kernel = try state.require(kernel, .kernel)
        guard arg_index < kernel.arguments else { throw ICDError(CL_INVALID_ARG_INDEX) }
        let request: CLSetKernelArgRequest
        if let arg_value {
            // A buffer argument is a pointer to one of our cl_mem handles: it travels as the
            // buffer's id. Anything else is bytes the server hands to its platform.
            let pointer = arg_size == MemoryLayout<UInt>.size ? arg_value.loadUnaligned(as: OpaquePointer?.self) : nil
            if let buffer = state.object(pointer, .buffer) {
                request = CLSetKernelArgRequest(
                    kernel: kernel.remote, index: arg_index, kind: 1, size: UInt64(arg_size), value: Info.bytes(of: buffer.remote))
            } else {
                request = CLSetKernelArgRequest(
                    kernel: kernel.remote, index: arg_index, kind: 0, size: UInt64(arg_size),
                    value: Array(UnsafeRawBufferPointer(start: arg_value, count: arg_size)))
            }
        } else {
            // NULL: a __local argument of `arg_size` bytes (or a NULL buffer; the platform decides).
            request = CLSetKernelArgRequest(kernel: kernel.remote, index: arg_index, kind: 2, size: UInt64(arg_size), value: [])
        }
        _ = try state.exchange(request)
        kernel.argumentsSet.insert(arg_index)
    }
}

@c @implementation public func clGetKernelInfo(
    _ kernel: cl_kernel?, _ param_name: cl_kernel_info, _ param_value_size: Int, _ param_value: UnsafeMutableRawPointer?,
    _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let kernel = try state.require(kernel, .kernel)
        let bytes: [UInt8]
        switch Int32(param_name) {
        case CL_KERNEL_FUNCTION_NAME: bytes = Info.string(kernel.name)
        case CL_KERNEL_NUM_ARGS: bytes = Info.bytes(of: kernel.arguments)
        case CL_KERNEL_REFERENCE_COUNT: bytes = Info.bytes(of: kernel.references)
        case CL_KERNEL_CONTEXT: bytes = Info.handles([kernel.context!])
        case CL_KERNEL_PROGRAM: bytes = Info.handles([kernel.program!])
        default: bytes = try Info.remote(&state, .kernel, kernel, param_name)
        }
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

@c @implementation public func clGetKernelArgInfo(
    _ kernel: cl_kernel?, _ arg_index: cl_uint, _ param_name: cl_kernel_arg_info, _ param_value_size: Int,
    _ param_value: UnsafeMutableRawPointer?, _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let kernel = try state.require(kernel, .kernel)
        guard arg_index < kernel.arguments, arg_index <= 0xFFFF else { throw ICDError(CL_INVALID_ARG_INDEX) }
        let bytes = try Info.remote(&state, .kernelArgument, kernel, arg_index << 16 | (param_name & 0xFFFF))
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

@c @implementation public func clGetKernelWorkGroupInfo(
    _ kernel: cl_kernel?, _ device: cl_device_id?, _ param_name: cl_kernel_work_group_info, _ param_value_size: Int,
    _ param_value: UnsafeMutableRawPointer?, _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let kernel = try state.require(kernel, .kernel)
        let device = try device.map { handle throws(ICDError) in try state.require(handle, .device) } ?? kernel.context?.devices.first
        let bytes = try Info.remote(&state, .kernelWorkGroup, kernel, device: device, param_name)
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

@c @implementation public func clEnqueueNDRangeKernel(
    _ command_queue: cl_command_queue?, _ kernel: cl_kernel?, _ work_dim: cl_uint, _ global_work_offset: UnsafePointer<Int>?,
    _ global_work_size: UnsafePointer<Int>?, _ local_work_size: UnsafePointer<Int>?, _ num_events_in_wait_list: cl_uint,
    _ event_wait_list: UnsafePointer<cl_event?>?, _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let queue = try state.require(command_queue, .queue)
        let kernel = try state.require(kernel, .kernel)
        guard kernel.context === queue.context else { throw ICDError(CL_INVALID_CONTEXT) }
        guard kernel.argumentsSet.count == Int(kernel.arguments) else { throw ICDError(CL_INVALID_KERNEL_ARGS) }
        guard (1...3).contains(work_dim) else { throw ICDError(CL_INVALID_WORK_DIMENSION) }
        guard let global_work_size else { throw ICDError(CL_INVALID_VALUE) }
        func list(_ values: UnsafePointer<Int>?) -> [UInt64] {
            guard let values else { return [] }
            return (0..<Int(work_dim)).map { UInt64(values[$0]) }
        }
        // Uneven work-groups are an option of the program's build; without it the platform
        // refuses them at the enqueue, so the client does too rather than defer the error.
        if let local_work_size, kernel.program?.nonUniformWorkGroups == false {
            for dimension in 0..<Int(work_dim) where local_work_size[dimension] != 0 {
                guard global_work_size[dimension] % local_work_size[dimension] == 0 else { throw ICDError(CL_INVALID_WORK_GROUP_SIZE) }
            }
        }
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        try state.enqueue(queue, CL_COMMAND_NDRANGE_KERNEL, event, after: wait) { state, id throws(ICDError) in
            try state.post(
                CLEnqueueNDRangeKernelRequest(
                    queue: queue.remote, kernel: kernel.remote, offset: list(global_work_offset), global: list(global_work_size),
                    local: list(local_work_size), waitList: wait.ids, event: id))
        }
    }
}
