import CXPUOpenCL
import XPUProtocol

// Contexts and command queues: created on the server (one round trip), described here.

extension ICDState {
    /// Checks a context's properties (only CL_CONTEXT_PLATFORM, naming this platform) and keeps them
    /// for CL_CONTEXT_PROPERTIES.
    mutating func contextProperties(_ properties: UnsafePointer<cl_context_properties>?) throws(ICDError) -> [cl_context_properties] {
        guard let properties else { return [] }
        var kept: [cl_context_properties] = []
        var index = 0
        while properties[index] != 0 {
            let (name, value) = (properties[index], properties[index + 1])
            guard name == cl_context_properties(CL_CONTEXT_PLATFORM) else { throw ICDError(CL_INVALID_PROPERTY) }
            _ = try requirePlatform(OpaquePointer(bitPattern: Int(value)))
            kept += [name, value]
            index += 2
        }
        return kept + [0]
    }

    mutating func createContext(_ devices: [CLObject], properties: [cl_context_properties]) throws(ICDError) -> CLObject {
        let reply = try exchange(CLCreateContextRequest(devices: devices.map(\.remote)))
        guard let context = adopt(.context, remote: reply.context) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        context.devices = devices
        context.facts[cl_uint(CL_CONTEXT_PROPERTIES)] = properties.flatMap { Info.bytes(of: $0) }
        return context
    }

    mutating func createQueue(_ contextHandle: OpaquePointer?, _ deviceHandle: OpaquePointer?, properties: UInt64, array: [UInt64]) throws(ICDError) -> CLObject {
        let context = try require(contextHandle, .context)
        let device = try require(deviceHandle, .device)
        guard context.devices.contains(where: { $0 === device }) else { throw ICDError(CL_INVALID_DEVICE) }
        let reply = try exchange(CLCreateCommandQueueRequest(context: context.remote, device: device.remote, properties: properties))
        guard let queue = adopt(.queue, remote: reply.queue) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        queue.context = context
        queue.device = device
        queue.flags = properties
        queue.facts[cl_uint(CL_QUEUE_PROPERTIES_ARRAY)] = array.flatMap { Info.bytes(of: $0) }
        context.references += 1
        return queue
    }
}

@c @implementation public func clCreateContext(
    _ properties: UnsafePointer<cl_context_properties>?, _ num_devices: cl_uint, _ devices: UnsafePointer<cl_device_id?>?,
    _ pfn_notify: (@convention(c) (UnsafePointer<CChar>?, UnsafeRawPointer?, Int, UnsafeMutableRawPointer?) -> Void)?,
    _ user_data: UnsafeMutableRawPointer?, _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> cl_context? {
    ICD.create(errcode_ret) { state throws(ICDError) in
        guard num_devices > 0, devices != nil, pfn_notify != nil || user_data == nil else { throw ICDError(CL_INVALID_VALUE) }
        let kept = try state.contextProperties(properties)
        var chosen: [CLObject] = []
        for handle in handleList(num_devices, devices) { chosen.append(try state.require(handle, .device)) }
        return try state.createContext(chosen, properties: kept)
    }
}

@c @implementation public func clCreateContextFromType(
    _ properties: UnsafePointer<cl_context_properties>?, _ device_type: cl_device_type,
    _ pfn_notify: (@convention(c) (UnsafePointer<CChar>?, UnsafeRawPointer?, Int, UnsafeMutableRawPointer?) -> Void)?,
    _ user_data: UnsafeMutableRawPointer?, _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> cl_context? {
    ICD.create(errcode_ret) { state throws(ICDError) in
        guard pfn_notify != nil || user_data == nil else { throw ICDError(CL_INVALID_VALUE) }
        let kept = try state.contextProperties(properties)
        let platform = try state.loadedPlatform()
        let chosen = try state.devices(of: platform, type: device_type)
        guard !chosen.isEmpty else { throw ICDError(CL_DEVICE_NOT_FOUND) }
        return try state.createContext(chosen, properties: kept)
    }
}

@c @implementation public func clRetainContext(_ context: cl_context?) -> cl_int {
    ICD.call { state throws(ICDError) in try state.require(context, .context).references += 1 }
}

@c @implementation public func clReleaseContext(_ context: cl_context?) -> cl_int {
    ICD.call { state throws(ICDError) in state.release(try state.require(context, .context)) }
}

@c @implementation public func clGetContextInfo(
    _ context: cl_context?, _ param_name: cl_context_info, _ param_value_size: Int,
    _ param_value: UnsafeMutableRawPointer?, _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let context = try state.require(context, .context)
        let bytes: [UInt8]
        switch Int32(param_name) {
        case CL_CONTEXT_REFERENCE_COUNT: bytes = Info.bytes(of: context.references)
        case CL_CONTEXT_DEVICES: bytes = Info.handles(context.devices)
        case CL_CONTEXT_NUM_DEVICES: bytes = Info.bytes(of: cl_uint(context.devices.count))
        case CL_CONTEXT_PROPERTIES: bytes = context.facts[param_name] ?? []
        default: bytes = try Info.remote(&state, .context, context, param_name)
        }
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

@c @implementation public func clCreateCommandQueue(
    _ context: cl_context?, _ device: cl_device_id?, _ properties: cl_command_queue_properties,
    _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> cl_command_queue? {
    ICD.create(errcode_ret) { state throws(ICDError) in
        try state.createQueue(context, device, properties: properties, array: [])
    }
}

@c @implementation public func clCreateCommandQueueWithProperties(
    _ context: cl_context?, _ device: cl_device_id?, _ properties: UnsafePointer<cl_queue_properties>?,
    _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> cl_command_queue? {
    ICD.create(errcode_ret) { state throws(ICDError) in
        var flags: UInt64 = 0
        var array: [UInt64] = []
        if let properties {
            var index = 0
            while properties[index] != 0 {
                // Only CL_QUEUE_PROPERTIES is served (no on-device queues, no queue size).
                guard properties[index] == UInt64(CL_QUEUE_PROPERTIES) else { throw ICDError(CL_INVALID_VALUE) }
                flags = properties[index + 1]
                array += [properties[index], properties[index + 1]]
                index += 2
            }
            array.append(0)
        }
        return try state.createQueue(context, device, properties: flags, array: array)
    }
}

@c @implementation public func clRetainCommandQueue(_ command_queue: cl_command_queue?) -> cl_int {
    ICD.call { state throws(ICDError) in try state.require(command_queue, .queue).references += 1 }
}

@c @implementation public func clReleaseCommandQueue(_ command_queue: cl_command_queue?) -> cl_int {
    ICD.call { state throws(ICDError) in
        let queue = try state.require(command_queue, .queue)
        // Releasing a queue flushes it; its commands still run (the server finishes it first).
        state.release(queue)
    }
}

@c @implementation public func clGetCommandQueueInfo(
    _ command_queue: cl_command_queue?, _ param_name: cl_command_queue_info, _ param_value_size: Int,
    _ param_value: UnsafeMutableRawPointer?, _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let queue = try state.require(command_queue, .queue)
        let bytes: [UInt8]
        switch Int32(param_name) {
        case CL_QUEUE_CONTEXT: bytes = Info.handles([queue.context!])
        case CL_QUEUE_DEVICE: bytes = Info.handles([queue.device!])
        case CL_QUEUE_REFERENCE_COUNT: bytes = Info.bytes(of: queue.references)
        case CL_QUEUE_PROPERTIES: bytes = Info.bytes(of: queue.flags)
        case CL_QUEUE_PROPERTIES_ARRAY: bytes = queue.facts[param_name] ?? []
        default: bytes = try Info.remote(&state, .queue, queue, param_name)
        }
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

@c @implementation public func clFlush(_ command_queue: cl_command_queue?) -> cl_int {
    ICD.call { state throws(ICDError) in
        let queue = try state.require(command_queue, .queue)
        try state.post(CLFlushRequest(queue: queue.remote))
    }
}

@c @implementation public func clFinish(_ command_queue: cl_command_queue?) -> cl_int {
    ICD.blocking { state throws(ICDError) in
        try state.dependencies(command_queue, 0, nil)
    } _: { state throws(ICDError) in
        let queue = try state.require(command_queue, .queue)
        _ = try state.exchange(CLFinishRequest(queue: queue.remote))
    }
}
