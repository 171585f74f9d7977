#if canImport(Glibc)
import Glibc
#endif
import CXPUOpenCL
import XPUProtocol

// Buffers and the commands that move their bytes. Data travels in chunks of at most
// `ProtocolLimits.copyChunkBytes`, inside the requests (writes) and replies (reads). Writes,
// copies and fills are sent fire-and-forget unless blocking; reads wait for their data. Mapping
// is emulated: the region is read into host memory at map time and written back at unmap.

let chunkBytes = ProtocolLimits.copyChunkBytes

/// An enqueue's wait list: its events' server ids, and the user events not set yet that they
/// wait for.
struct WaitList {
    var ids: [UInt64] = []
    var userEvents: Set<UInt64> = []
}

extension ICDState {
    /// The server ids of a wait list's events; CL_INVALID_EVENT_WAIT_LIST for anything else.
    func waitList(_ count: cl_uint, _ list: UnsafePointer<cl_event?>?) throws(ICDError) -> WaitList {
        guard (count == 0) == (list == nil) else { throw ICDError(CL_INVALID_EVENT_WAIT_LIST) }
        var wait = WaitList()
        for handle in handleList(count, list) {
            guard let event = object(handle, .event) else { throw ICDError(CL_INVALID_EVENT_WAIT_LIST) }
            wait.ids.append(event.remote)
            wait.userEvents.formUnion(event.userEvents)
        }
        return wait
    }

    /// The user events not set yet that a command enqueued on `queueHandle` after
    /// `count`/`list` would wait for (what a blocking call waits for on the client first).
    func dependencies(_ queueHandle: OpaquePointer?, _ count: cl_uint, _ list: UnsafePointer<cl_event?>?) throws(ICDError) -> Set<UInt64> {
        let queue = try require(queueHandle, .queue)
        return ICD.userEvents.pending(queue.userEvents.union(try waitList(count, list).userEvents))
    }

    /// Runs an enqueue: `send` gets the id of the event to create (0 when the caller wants none)
    /// and sends the command; on success the event is handed to the caller. The command waits
    /// for the user events its wait list and its queue's earlier commands wait for.
    mutating func enqueue(
        _ queue: CLObject, _ command: Int32, _ event: UnsafeMutablePointer<cl_event?>?, after wait: WaitList,
        _ send: (inout ICDState, UInt64) throws(ICDError) -> Void
    ) throws(ICDError) {
        let dependencies = ICD.userEvents.pending(queue.userEvents.union(wait.userEvents))
        defer { queue.userEvents = dependencies }
        guard let event else { return try send(&self, 0) }
        let id = try connected().mintEvent()
        try send(&self, id)
        guard let object = adopt(.event, remote: id) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        object.queue = queue
        object.context = queue.context
        object.commandType = cl_uint(command)
        object.userEvents = dependencies
        queue.references += 1
        queue.context?.references += 1
        event.pointee = object.opaque
    }

    /// Reads `size` bytes at `offset` of `buffer` into `destination`, chunk by chunk.
    mutating func read(
        _ queue: CLObject, _ buffer: CLObject, offset: Int, size: Int, into destination: UnsafeMutableRawPointer,
        wait: [UInt64], event: UInt64
    ) throws(ICDError) {
        var done = 0
        repeat {
            let count = min(chunkBytes, size - done)
            let last = done + count == size
            let reply = try exchange(
                CLEnqueueReadBufferRequest(
                    queue: queue.remote, buffer: buffer.remote, offset: UInt64(offset + done), size: UInt64(count),
                    waitList: done == 0 ? wait : [], event: last ? event : 0))
            guard reply.data.count == count else { throw ICDError.lost("read of \(count) bytes answered with \(reply.data.count)") }
            reply.data.withUnsafeBytes { (destination + done).copyMemory(from: $0.baseAddress!, byteCount: count) }
            done += count
        } while done < size
    }

    /// Writes `size` bytes from `source` at `offset` of `buffer`; the last chunk waits for its
    /// reply when `blocking` (so its failure is this call's).
    mutating func write(
        _ queue: CLObject?, _ buffer: CLObject, offset: Int, size: Int, from source: UnsafeRawPointer,
        wait: [UInt64], event: UInt64, blocking: Bool
    ) throws(ICDError) {
        var done = 0
        repeat {
            let count = min(chunkBytes, size - done)
            let last = done + count == size
            let request = CLEnqueueWriteBufferRequest(
                queue: queue?.remote ?? 0, buffer: buffer.remote, offset: UInt64(offset + done), waitList: done == 0 ? wait : [],
                event: last ? event : 0, data: Array(UnsafeRawBufferPointer(start: source + done, count: count)))
            if last && blocking { _ = try exchange(request) } else { try post(request) }
            done += count
        } while done < size
    }

    /// The buffer and the queue of an enqueue, checked: the same context, the range inside.
    func bufferCommand(_ queueHandle: OpaquePointer?, _ bufferHandle: OpaquePointer?, offset: Int, size: Int) throws(ICDError) -> (CLObject, CLObject) {
        let queue = try require(queueHandle, .queue)
        let buffer = try require(bufferHandle, .buffer)
        guard buffer.context === queue.context else { throw ICDError(CL_INVALID_CONTEXT) }
        guard offset >= 0, size >= 0, offset <= buffer.size, size <= buffer.size - offset else { throw ICDError(CL_INVALID_VALUE) }
        return (queue, buffer)
    }
}

@c @implementation public func clCreateBuffer(
    _ context: cl_context?, _ flags: cl_mem_flags, _ size: Int, _ host_ptr: UnsafeMutableRawPointer?,
    _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> cl_mem? {
    ICD.create(errcode_ret) { state throws(ICDError) in
        let context = try state.require(context, .context)
        let usesHost = flags & UInt64(CL_MEM_USE_HOST_PTR | CL_MEM_COPY_HOST_PTR) != 0
        guard usesHost == (host_ptr != nil) else { throw ICDError(CL_INVALID_HOST_PTR) }
        guard size > 0 else { throw ICDError(CL_INVALID_BUFFER_SIZE) }
        // Small initial contents travel with the creation; larger ones follow as writes.
        let inline = usesHost && size <= chunkBytes
        let contents = inline ? Array(UnsafeRawBufferPointer(start: host_ptr, count: size)) : []
        let sentFlags = inline || !usesHost ? flags : flags & ~UInt64(CL_MEM_USE_HOST_PTR | CL_MEM_COPY_HOST_PTR)
        let reply = try state.exchange(
            CLCreateBufferRequest(context: context.remote, flags: sentFlags, size: UInt64(size), contents: contents))
        guard let buffer = state.adopt(.buffer, remote: reply.buffer) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        buffer.context = context
        context.references += 1
        buffer.flags = flags
        buffer.size = size
        if flags & UInt64(CL_MEM_USE_HOST_PTR) != 0 { buffer.hostPointer = host_ptr }
        if usesHost && !inline, let host_ptr {
            do throws(ICDError) {
                try state.write(nil, buffer, offset: 0, size: size, from: host_ptr, wait: [], event: 0, blocking: true)
            } catch {
                state.release(buffer)
                throw error
            }
        }
        return buffer
    }
}

@c @implementation public func clRetainMemObject(_ memobj: cl_mem?) -> cl_int {
    ICD.call { state throws(ICDError) in try state.require(memobj, .buffer).references += 1 }
}

@c @implementation public func clReleaseMemObject(_ memobj: cl_mem?) -> cl_int {
    ICD.call { state throws(ICDError) in state.release(try state.require(memobj, .buffer)) }
}

@c @implementation public func clGetMemObjectInfo(
    _ memobj: cl_mem?, _ param_name: cl_mem_info, _ param_value_size: Int, _ param_value: UnsafeMutableRawPointer?,
    _ param_value_size_ret: UnsafeMutablePointer<Int>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let buffer = try state.require(memobj, .buffer)
        let bytes: [UInt8]
        switch Int32(param_name) {
        case CL_MEM_TYPE: bytes = Info.bytes(of: cl_uint(CL_MEM_OBJECT_BUFFER))
        case CL_MEM_FLAGS: bytes = Info.bytes(of: buffer.flags)
        case CL_MEM_SIZE: bytes = Info.bytes(of: buffer.size)
        case CL_MEM_HOST_PTR: bytes = Info.bytes(of: UInt(bitPattern: buffer.hostPointer))
        case CL_MEM_MAP_COUNT: bytes = Info.bytes(of: cl_uint(buffer.mappings.count))
        case CL_MEM_REFERENCE_COUNT: bytes = Info.bytes(of: buffer.references)
        case CL_MEM_CONTEXT: bytes = Info.handles([buffer.context!])
        case CL_MEM_ASSOCIATED_MEMOBJECT: bytes = Info.bytes(of: UInt(bitPattern: buffer.buffer?.handle))
        case CL_MEM_OFFSET: bytes = Info.bytes(of: buffer.offset)
        default: bytes = try Info.remote(&state, .buffer, buffer, param_name)
        }
        try Info.answer(bytes, param_value_size, param_value, param_value_size_ret)
    }
}

@c @implementation public func clEnqueueReadBuffer(
    _ command_queue: cl_command_queue?, _ buffer: cl_mem?, _ blocking_read: cl_bool, _ offset: Int, _ size: Int,
    _ ptr: UnsafeMutableRawPointer?, _ num_events_in_wait_list: cl_uint, _ event_wait_list: UnsafePointer<cl_event?>?,
    _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    // A non-blocking read held back by a user event not set yet is deferred (DeferredReads.swift);
    // every other read completes before it returns (a non-blocking read already done is valid).
    ICD.blocking { state throws(ICDError) in
        blocking_read == 0 ? [] : try state.dependencies(command_queue, num_events_in_wait_list, event_wait_list)
    } _: { state throws(ICDError) in
        let (queue, buffer) = try state.bufferCommand(command_queue, buffer, offset: offset, size: size)
        guard let ptr, size > 0 else { throw ICDError(CL_INVALID_VALUE) }
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        if blocking_read == 0, !ICD.userEvents.pending(queue.userEvents.union(wait.userEvents)).isEmpty {
            return try state.deferRead(queue, buffer, offset: offset, size: size, into: ptr, after: wait, event: event)
        }
        try state.enqueue(queue, CL_COMMAND_READ_BUFFER, event, after: wait) { state, id throws(ICDError) in
            try state.read(queue, buffer, offset: offset, size: size, into: ptr, wait: wait.ids, event: id)
        }
    }
}

@c @implementation public func clEnqueueWriteBuffer(
    _ command_queue: cl_command_queue?, _ buffer: cl_mem?, _ blocking_write: cl_bool, _ offset: Int, _ size: Int,
    _ ptr: UnsafeRawPointer?, _ num_events_in_wait_list: cl_uint, _ event_wait_list: UnsafePointer<cl_event?>?,
    _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    ICD.blocking { state throws(ICDError) in
        blocking_write == 0 ? [] : try state.dependencies(command_queue, num_events_in_wait_list, event_wait_list)
    } _: { state throws(ICDError) in
        let (queue, buffer) = try state.bufferCommand(command_queue, buffer, offset: offset, size: size)
        guard let ptr, size > 0 else { throw ICDError(CL_INVALID_VALUE) }
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        // The bytes are copied into the request, so the caller may reuse `ptr` at once either way.
        try state.enqueue(queue, CL_COMMAND_WRITE_BUFFER, event, after: wait) { state, id throws(ICDError) in
            try state.write(queue, buffer, offset: offset, size: size, from: ptr, wait: wait.ids, event: id, blocking: blocking_write != 0)
        }
    }
}

@c @implementation public func clEnqueueCopyBuffer(
    _ command_queue: cl_command_queue?, _ src_buffer: cl_mem?, _ dst_buffer: cl_mem?, _ src_offset: Int, _ dst_offset: Int,
    _ size: Int, _ num_events_in_wait_list: cl_uint, _ event_wait_list: UnsafePointer<cl_event?>?,
    _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let (queue, source) = try state.bufferCommand(command_queue, src_buffer, offset: src_offset, size: size)
        let (_, destination) = try state.bufferCommand(command_queue, dst_buffer, offset: dst_offset, size: size)
        guard size > 0 else { throw ICDError(CL_INVALID_VALUE) }
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        try state.enqueue(queue, CL_COMMAND_COPY_BUFFER, event, after: wait) { state, id throws(ICDError) in
            try state.post(
                CLEnqueueCopyBufferRequest(
                    queue: queue.remote, source: source.remote, destination: destination.remote, sourceOffset: UInt64(src_offset),
                    destinationOffset: UInt64(dst_offset), size: UInt64(size), waitList: wait.ids, event: id))
        }
    }
}

@c @implementation public func clEnqueueFillBuffer(
    _ command_queue: cl_command_queue?, _ buffer: cl_mem?, _ pattern: UnsafeRawPointer?, _ pattern_size: Int, _ offset: Int,
    _ size: Int, _ num_events_in_wait_list: cl_uint, _ event_wait_list: UnsafePointer<cl_event?>?,
    _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let (queue, buffer) = try state.bufferCommand(command_queue, buffer, offset: offset, size: size)
        guard let pattern, [1, 2, 4, 8, 16, 32, 64, 128].contains(pattern_size), offset % pattern_size == 0, size % pattern_size == 0
        else { throw ICDError(CL_INVALID_VALUE) }
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        let bytes = Array(UnsafeRawBufferPointer(start: pattern, count: pattern_size))
        try state.enqueue(queue, CL_COMMAND_FILL_BUFFER, event, after: wait) { state, id throws(ICDError) in
            try state.post(
                CLEnqueueFillBufferRequest(
                    queue: queue.remote, buffer: buffer.remote, pattern: bytes, offset: UInt64(offset), size: UInt64(size),
                    waitList: wait.ids, event: id))
        }
    }
}

@c @implementation public func clEnqueueMapBuffer(
    _ command_queue: cl_command_queue?, _ buffer: cl_mem?, _ blocking_map: cl_bool, _ map_flags: cl_map_flags, _ offset: Int,
    _ size: Int, _ num_events_in_wait_list: cl_uint, _ event_wait_list: UnsafePointer<cl_event?>?,
    _ event: UnsafeMutablePointer<cl_event?>?, _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> UnsafeMutableRawPointer? {
    var mapped: UnsafeMutableRawPointer?
    let status = ICD.blocking { state throws(ICDError) in
        try state.dependencies(command_queue, num_events_in_wait_list, event_wait_list)
    } _: { state throws(ICDError) in
        let (queue, buffer) = try state.bufferCommand(command_queue, buffer, offset: offset, size: size)
        guard size > 0 else { throw ICDError(CL_INVALID_VALUE) }
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        let allocated = buffer.hostPointer == nil
        guard let region = buffer.hostPointer.map({ $0 + offset }) ?? malloc(size) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        let invalidates = map_flags & UInt64(CL_MAP_WRITE_INVALIDATE_REGION) != 0
        do throws(ICDError) {
            try state.enqueue(queue, CL_COMMAND_MAP_BUFFER, event, after: wait) { state, id throws(ICDError) in
                if invalidates {
                    try state.post(CLEnqueueMarkerRequest(queue: queue.remote, barrier: 0, waitList: wait.ids, event: id))
                } else {
                    try state.read(queue, buffer, offset: offset, size: size, into: region, wait: wait.ids, event: id)
                }
            }
        } catch {
            if allocated { free(region) }
            throw error
        }
        let writes = map_flags & UInt64(CL_MAP_WRITE | CL_MAP_WRITE_INVALIDATE_REGION) != 0
        buffer.mappings[region] = CLObject.Mapping(offset: offset, size: size, writes: writes, allocated: allocated)
        mapped = region
    }
    errcode_ret?.pointee = status
    return mapped
}

@c @implementation public func clEnqueueUnmapMemObject(
    _ command_queue: cl_command_queue?, _ memobj: cl_mem?, _ mapped_ptr: UnsafeMutableRawPointer?,
    _ num_events_in_wait_list: cl_uint, _ event_wait_list: UnsafePointer<cl_event?>?, _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let (queue, buffer) = try state.bufferCommand(command_queue, memobj, offset: 0, size: 0)
        guard let mapped_ptr, let mapping = buffer.mappings[mapped_ptr] else { throw ICDError(CL_INVALID_VALUE) }
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        try state.enqueue(queue, CL_COMMAND_UNMAP_MEM_OBJECT, event, after: wait) { state, id throws(ICDError) in
            if mapping.writes {
                try state.write(queue, buffer, offset: mapping.offset, size: mapping.size, from: mapped_ptr, wait: wait.ids, event: id, blocking: false)
            } else {
                try state.post(CLEnqueueMarkerRequest(queue: queue.remote, barrier: 0, waitList: wait.ids, event: id))
            }
        }
        buffer.mappings[mapped_ptr] = nil
        if mapping.allocated { free(mapped_ptr) }
    }
}

/// The platform's image formats, so that a program can see the device's image support (images
/// themselves are not served: clCreateImage and the image calls fail). An answer is the
/// platform's array of cl_image_format, two cl_uint each.
@c @implementation public func clGetSupportedImageFormats(
    _ context: cl_context?, _ flags: cl_mem_flags, _ image_type: cl_mem_object_type, _ num_entries: cl_uint,
    _ image_formats: OpaquePointer?, _ num_image_formats: UnsafeMutablePointer<cl_uint>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let context = try state.require(context, .context)
        guard num_entries > 0 || image_formats == nil else { throw ICDError(CL_INVALID_VALUE) }
        let formats = try state.exchange(
            CLGetInfoRequest(query: Info.Query.imageFormats.rawValue, object: context.remote, device: flags, param: image_type)
        ).value
        let formatBytes = 2 * MemoryLayout<cl_uint>.size
        guard formats.count % formatBytes == 0 else { throw ICDError.lost("image formats answered with \(formats.count) bytes") }
        if let image_formats {
            let count = min(formats.count, Int(num_entries) * formatBytes)
            formats.withUnsafeBytes { UnsafeMutableRawPointer(image_formats).copyMemory(from: $0.baseAddress!, byteCount: count) }
        }
        num_image_formats?.pointee = cl_uint(formats.count / formatBytes)
    }
}

/// Migration moves nothing: every buffer lives on the server's platform, which places it. The
/// command orders like a marker after its wait list, and its event completes as the platform's.
@c @implementation public func clEnqueueMigrateMemObjects(
    _ command_queue: cl_command_queue?, _ num_mem_objects: cl_uint, _ mem_objects: UnsafePointer<cl_mem?>?,
    _ flags: cl_mem_migration_flags, _ num_events_in_wait_list: cl_uint, _ event_wait_list: UnsafePointer<cl_event?>?,
    _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let queue = try state.require(command_queue, .queue)
        guard num_mem_objects > 0, mem_objects != nil else { throw ICDError(CL_INVALID_VALUE) }
        guard flags & ~UInt64(CL_MIGRATE_MEM_OBJECT_HOST | CL_MIGRATE_MEM_OBJECT_CONTENT_UNDEFINED) == 0 else { throw ICDError(CL_INVALID_VALUE) }
        for handle in handleList(num_mem_objects, mem_objects) {
            guard try state.require(handle, .buffer).context === queue.context else { throw ICDError(CL_INVALID_CONTEXT) }
        }
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        try state.enqueue(queue, CL_COMMAND_MIGRATE_MEM_OBJECTS, event, after: wait) { state, id throws(ICDError) in
            try state.post(CLEnqueueMarkerRequest(queue: queue.remote, barrier: 0, waitList: wait.ids, event: id))
        }
    }
}

/// A sub-buffer: a buffer of its own on the server, over `origin..<origin + size` of `buffer`
/// (the platform checks the origin's alignment and the flags). Its access flags default to the
/// buffer's; its host pointer, if the buffer has one, is the buffer's at the origin.
@c @implementation public func clCreateSubBuffer(
    _ buffer: cl_mem?, _ flags: cl_mem_flags, _ buffer_create_type: cl_buffer_create_type, _ buffer_create_info: UnsafeRawPointer?,
    _ errcode_ret: UnsafeMutablePointer<cl_int>?
) -> cl_mem? {
    ICD.create(errcode_ret) { state throws(ICDError) in
        let parent = try state.require(buffer, .buffer)
        guard parent.buffer == nil else { throw ICDError(CL_INVALID_MEM_OBJECT) }
        guard buffer_create_type == cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION), let info = buffer_create_info else {
            throw ICDError(CL_INVALID_VALUE)
        }
        // cl_buffer_region: origin, size.
        let origin = info.loadUnaligned(as: Int.self)
        let size = info.loadUnaligned(fromByteOffset: MemoryLayout<Int>.size, as: Int.self)
        guard size > 0 else { throw ICDError(CL_INVALID_BUFFER_SIZE) }
        guard origin >= 0, origin <= parent.size, size <= parent.size - origin else { throw ICDError(CL_INVALID_VALUE) }
        let reply = try state.exchange(
            CLCreateSubBufferRequest(buffer: parent.remote, flags: flags, origin: UInt64(origin), size: UInt64(size)))
        guard let sub = state.adopt(.buffer, remote: reply.buffer) else { throw ICDError(CL_OUT_OF_HOST_MEMORY) }
        let access = UInt64(CL_MEM_READ_WRITE | CL_MEM_WRITE_ONLY | CL_MEM_READ_ONLY)
        let hostAccess = UInt64(CL_MEM_HOST_WRITE_ONLY | CL_MEM_HOST_READ_ONLY | CL_MEM_HOST_NO_ACCESS)
        let inherited = UInt64(CL_MEM_USE_HOST_PTR | CL_MEM_ALLOC_HOST_PTR | CL_MEM_COPY_HOST_PTR)
        sub.flags = (flags & access != 0 ? flags & access : parent.flags & access)
            | (flags & hostAccess != 0 ? flags & hostAccess : parent.flags & hostAccess) | parent.flags & inherited
        sub.buffer = parent
        sub.context = parent.context
        parent.references += 1
        parent.context?.references += 1
        sub.size = size
        sub.offset = origin
        sub.hostPointer = parent.hostPointer.map { $0 + origin }
        return sub
    }
}

/// A rectangular copy between two buffers, checked here for the ranges (the default pitches
/// filled in) and sent fire-and-forget like clEnqueueCopyBuffer.
@c @implementation public func clEnqueueCopyBufferRect(
    _ command_queue: cl_command_queue?, _ src_buffer: cl_mem?, _ dst_buffer: cl_mem?, _ src_origin: UnsafePointer<Int>?,
    _ dst_origin: UnsafePointer<Int>?, _ region: UnsafePointer<Int>?, _ src_row_pitch: Int, _ src_slice_pitch: Int,
    _ dst_row_pitch: Int, _ dst_slice_pitch: Int, _ num_events_in_wait_list: cl_uint, _ event_wait_list: UnsafePointer<cl_event?>?,
    _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    ICD.call { state throws(ICDError) in
        let (queue, source) = try state.bufferCommand(command_queue, src_buffer, offset: 0, size: 0)
        let (_, destination) = try state.bufferCommand(command_queue, dst_buffer, offset: 0, size: 0)
        guard let src_origin, let dst_origin, let region else { throw ICDError(CL_INVALID_VALUE) }
        let extent = try Rectangle.extent(region)
        let (sourceRow, sourceSlice) = try Rectangle.layout(extent, src_origin, src_row_pitch, src_slice_pitch, size: source.size).pitches
        let (destinationRow, destinationSlice) = try Rectangle.layout(extent, dst_origin, dst_row_pitch, dst_slice_pitch, size: destination.size).pitches
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        let values = { (pointer: UnsafePointer<Int>) in (0..<3).map { UInt64(pointer[$0]) } }
        try state.enqueue(queue, CL_COMMAND_COPY_BUFFER_RECT, event, after: wait) { state, id throws(ICDError) in
            try state.post(
                CLEnqueueCopyBufferRectRequest(
                    queue: queue.remote, source: source.remote, destination: destination.remote, sourceOrigin: values(src_origin),
                    destinationOrigin: values(dst_origin), region: extent.map(UInt64.init),
                    pitches: [sourceRow, sourceSlice, destinationRow, destinationSlice].map(UInt64.init), waitList: wait.ids, event: id))
        }
    }
}

/// A rectangle of bytes in a buffer or in host memory, as the *Rect calls describe it.
enum Rectangle {
    /// The region's three sizes, each at least 1.
    static func extent(_ region: UnsafePointer<Int>) throws(ICDError) -> [Int] {
        let extent = (0..<3).map { region[$0] }
        guard extent.allSatisfy({ $0 > 0 }) else { throw ICDError(CL_INVALID_VALUE) }
        return extent
    }

    /// The pitches with their defaults and the offset of the rectangle's first byte; when `size`
    /// is given, its last byte must lie inside it.
    static func layout(
        _ extent: [Int], _ origin: UnsafePointer<Int>, _ row: Int, _ slice: Int, size: Int?
    ) throws(ICDError) -> (pitches: (Int, Int), first: Int) {
        let rowPitch = row == 0 ? extent[0] : row
        let slicePitch = slice == 0 ? extent[1] * rowPitch : slice
        guard rowPitch >= extent[0], slicePitch >= extent[1] * rowPitch, slicePitch % rowPitch == 0 else { throw ICDError(CL_INVALID_VALUE) }
        guard (0..<3).allSatisfy({ origin[$0] >= 0 }) else { throw ICDError(CL_INVALID_VALUE) }
        let first = origin[2] * slicePitch + origin[1] * rowPitch + origin[0]
        let end = first + (extent[2] - 1) * slicePitch + (extent[1] - 1) * rowPitch + extent[0]
        if let size, end > size { throw ICDError(CL_INVALID_VALUE) }
        return ((rowPitch, slicePitch), first)
    }

    /// Each row's offset from the first byte, slice by slice.
    static func rows(_ extent: [Int], _ pitches: (Int, Int)) -> [Int] {
        (0..<extent[2]).flatMap { z in (0..<extent[1]).map { y in z * pitches.1 + y * pitches.0 } }
    }
}

/// Reads the buffer's span from the rectangle's first byte to its last (one chunked read, which
/// completes before the call returns, as every read here) and copies each row into host memory.
@c @implementation public func clEnqueueReadBufferRect(
    _ command_queue: cl_command_queue?, _ buffer: cl_mem?, _ blocking_read: cl_bool, _ buffer_origin: UnsafePointer<Int>?,
    _ host_origin: UnsafePointer<Int>?, _ region: UnsafePointer<Int>?, _ buffer_row_pitch: Int, _ buffer_slice_pitch: Int,
    _ host_row_pitch: Int, _ host_slice_pitch: Int, _ ptr: UnsafeMutableRawPointer?, _ num_events_in_wait_list: cl_uint,
    _ event_wait_list: UnsafePointer<cl_event?>?, _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    ICD.blocking { state throws(ICDError) in
        try state.dependencies(command_queue, num_events_in_wait_list, event_wait_list)
    } _: { state throws(ICDError) in
        let (queue, buffer) = try state.bufferCommand(command_queue, buffer, offset: 0, size: 0)
        guard let buffer_origin, let host_origin, let region, let ptr else { throw ICDError(CL_INVALID_VALUE) }
        let extent = try Rectangle.extent(region)
        let source = try Rectangle.layout(extent, buffer_origin, buffer_row_pitch, buffer_slice_pitch, size: buffer.size)
        let target = try Rectangle.layout(extent, host_origin, host_row_pitch, host_slice_pitch, size: nil)
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        let sourceRows = Rectangle.rows(extent, source.pitches)
        let span = sourceRows.last! + extent[0]
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: span, alignment: 16)
        defer { bytes.deallocate() }
        try state.enqueue(queue, CL_COMMAND_READ_BUFFER_RECT, event, after: wait) { state, id throws(ICDError) in
            try state.read(queue, buffer, offset: source.first, size: span, into: bytes, wait: wait.ids, event: id)
        }
        for (sourceRow, targetRow) in zip(sourceRows, Rectangle.rows(extent, target.pitches)) {
            (ptr + target.first + targetRow).copyMemory(from: bytes + sourceRow, byteCount: extent[0])
        }
    }
}

/// Writes each row of the rectangle as a write of its own (after the wait list), then a marker
/// that carries the event: it completes once every row is written, on any queue.
@c @implementation public func clEnqueueWriteBufferRect(
    _ command_queue: cl_command_queue?, _ buffer: cl_mem?, _ blocking_write: cl_bool, _ buffer_origin: UnsafePointer<Int>?,
    _ host_origin: UnsafePointer<Int>?, _ region: UnsafePointer<Int>?, _ buffer_row_pitch: Int, _ buffer_slice_pitch: Int,
    _ host_row_pitch: Int, _ host_slice_pitch: Int, _ ptr: UnsafeRawPointer?, _ num_events_in_wait_list: cl_uint,
    _ event_wait_list: UnsafePointer<cl_event?>?, _ event: UnsafeMutablePointer<cl_event?>?
) -> cl_int {
    ICD.blocking { state throws(ICDError) in
        blocking_write == 0 ? [] : try state.dependencies(command_queue, num_events_in_wait_list, event_wait_list)
    } _: { state throws(ICDError) in
        let (queue, buffer) = try state.bufferCommand(command_queue, buffer, offset: 0, size: 0)
        guard let buffer_origin, let host_origin, let region, let ptr else { throw ICDError(CL_INVALID_VALUE) }
        let extent = try Rectangle.extent(region)
        let target = try Rectangle.layout(extent, buffer_origin, buffer_row_pitch, buffer_slice_pitch, size: buffer.size)
        let source = try Rectangle.layout(extent, host_origin, host_row_pitch, host_slice_pitch, size: nil)
        let wait = try state.waitList(num_events_in_wait_list, event_wait_list)
        let pairs = Array(zip(Rectangle.rows(extent, source.pitches), Rectangle.rows(extent, target.pitches)))
        try state.enqueue(queue, CL_COMMAND_WRITE_BUFFER_RECT, event, after: wait) { state, id throws(ICDError) in
            for (index, (sourceRow, targetRow)) in pairs.enumerated() {
                try state.write(
                    queue, buffer, offset: target.first + targetRow, size: extent[0], from: ptr + source.first + sourceRow, wait: wait.ids,
                    event: 0, blocking: blocking_write != 0 && index == pairs.count - 1)
            }
            try state.post(CLEnqueueMarkerRequest(queue: queue.remote, barrier: 0, waitList: [], event: id))
        }
    }
}
