import CXPUDriver
import XPUProtocol
import XPUTransport

// Bulk copies (proto/PROTOCOL.md, "Bulk data"). Where the driver offers host views of device
// memory (the simulated device's `xpu_sim_device_range`), a host-to-device chunk is received from
// the socket straight into device memory (or LZ4-inflated straight into it), and a device-to-host
// chunk is sent straight from it: no staging buffer, no driver copy. The view is taken only once
// the copy's turn has come on its stream (every earlier piece of work it is ordered after has
// finished), the session's thread enqueues nothing until the data has moved, and the session's own
// range check comes first: the in-place copy is the driver's copy, done by the server.
//
// Otherwise (real drivers, `--staged-copies`, any refusal) the data goes through the session's
// staging buffer and the driver's copy, which also gives every error exactly as the driver does;
// a compressed chunk of one byte value becomes the driver's memset instead.

extension Session {
    /// Fields of a host-to-device request before its data: destination, remainingBytes, stream,
    /// asynchronous, (rawCount when compressed,) data count.
    static let copyToDeviceFields = 8 + 8 + 8 + 1 + 4

    /// Handles a host-to-device chunk whose header was just read: its payload is still in the
    /// channel and lands where it belongs. A payload that does not decode exactly, a blob above the
    /// bulk limit or LZ4 data that does not inflate to its stated size is a protocol violation.
    /// The outcome says whether more chunks of the same copy follow (`bulkFollows`).
    func receiveCopyToDevice(_ header: FrameHeader, from channel: FrameChannel) throws(FrameError) -> CallOutcome {
        var follows = false
        var outcome = try receiveChunk(header, from: channel, follows: &follows)
        outcome.bulkFollows = follows
        return outcome
    }

    private func receiveChunk(_ header: FrameHeader, from channel: FrameChannel, follows: inout Bool) throws(FrameError)
        -> CallOutcome
    {
        let compressed = header.flags.contains(.compressed)
        let length = Int(header.length)
        let fieldBytes = Self.copyToDeviceFields + (compressed ? 4 : 0)
        guard length >= fieldBytes else {
            throw Self.violation(.truncated, "copy request of \(length) bytes")
        }
        // A large chunk's data is not read ahead with its fields: it goes straight to its place.
        try channel.receivePayload(
            into: UnsafeMutableRawBufferPointer(rebasing: bulkFields[0..<fieldBytes]), readAhead: length < FrameChannel.bulkThreshold)
        let fields = UnsafeRawBufferPointer(rebasing: bulkFields[0..<fieldBytes])
        let destination = UInt64(littleEndian: fields.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let remainingBytes = UInt64(littleEndian: fields.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let stream = UInt64(littleEndian: fields.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        let asynchronous = fields[24] != 0
        let rawCount = compressed ? Int(UInt32(littleEndian: fields.loadUnaligned(fromByteOffset: 25, as: UInt32.self))) : 0
        let count = Int(UInt32(littleEndian: fields.loadUnaligned(fromByteOffset: fieldBytes - 4, as: UInt32.self)))
        guard count <= ProtocolLimits.maximumBulkBytes else {
            throw Self.violation(.tooLarge, "blob of \(count) bytes exceeds \(ProtocolLimits.maximumBulkBytes)")
        }
        let data = length - fieldBytes
        guard data == count else {
            throw Self.violation(data < count ? .truncated : .malformed, "copy data of \(data) bytes, \(count) announced")
        }
        let copy = DeviceCopy(address: destination, remainingBytes: remainingBytes, stream: stream, asynchronous: asynchronous)
        follows = remainingBytes > UInt64(compressed ? rawCount : count)

        if compressed {
            guard rawCount <= ProtocolLimits.maximumBulkBytes, let codec = LZ4Codec.shared else {
                throw Self.violation(.tooLarge, "compressed chunk of \(rawCount) bytes")
            }
            let packed = UnsafeMutableRawBufferPointer(rebasing: packedScratch[0..<count])
            try channel.receivePayload(into: packed)
            // Inflated straight into device memory when it may be written in place.
            if let view = deviceView(copy, bytes: rawCount) {
                try Self.inflate(packed, into: view, codec: codec)
                return directOutcome()
            }
            if let value = LZ4Run.byte(ofBlock: UnsafeRawBufferPointer(packed), count: rawCount) {
                return stagedSetOnDevice(copy, value: value, count: rawCount)
            }
            let staged = uploads.take(count: rawCount)
            try Self.inflate(packed, into: staged.memory, codec: codec)
            return stagedCopyToDevice(copy, slot: staged.slot, count: rawCount)
        }
        if let view = deviceView(copy, bytes: count) {
            try channel.receivePayload(into: view)
            return directOutcome()
        }
        let staged = uploads.take(count: count)
        try channel.receivePayload(into: staged.memory)
        return stagedCopyToDevice(copy, slot: staged.slot, count: count)
    }

    private static func inflate(_ packed: UnsafeMutableRawBufferPointer, into target: UnsafeMutableRawBufferPointer, codec: LZ4Codec)
        throws(FrameError)
    {
        guard codec.decompress(UnsafeRawBufferPointer(packed), into: target) else {
            throw violation(.malformed, "LZ4 data does not inflate to \(target.count) bytes")
        }
    }

    /// Answers a device-to-host chunk: its data, sent from device memory or from the staging buffer
    /// (LZ4-compressed where the client asked for it and it pays).
    /// (`compressible`: the client's request frame asked for a compressed reply).
    func copyToHost(_ request: MemcpyDtoHRequest, compressible: Bool) throws(ProtocolError) -> CallOutcome {
        guard request.count <= UInt64(ProtocolLimits.maximumBulkBytes) else {
            throw ProtocolError(.tooLarge, "device-to-host chunk of \(request.count) bytes")
        }
        let copy = DeviceCopy(
            address: request.source, remainingBytes: request.remainingBytes, stream: request.stream,
            asynchronous: request.asynchronous != 0)
        let data: UnsafeRawBufferPointer
        if let view = deviceView(copy, bytes: Int(request.count)) {
            statistics.directChunks += 1
            data = UnsafeRawBufferPointer(view)
        } else {
            let target = UnsafeMutableRawBufferPointer(rebasing: staging[0..<Int(request.count)])
            do {
                try stagedCopyToHost(copy, into: target)
            } catch {
                return .failure(error.status)
            }
            data = UnsafeRawBufferPointer(target)
        }
        if compressible, let packed = compressedReply(data) { return packed }
        // The reply is `bytes data`: its u32 count, then the data sent from where it lies.
        var prefix = WireWriter(capacity: 4)
        prefix.write(UInt32(data.count))
        return CallOutcome(status: CUDA_SUCCESS, payload: prefix.bytes, bulk: data)
    }

    /// A copy's device side as the client named it.
    struct DeviceCopy {
        var address: UInt64
        /// Bytes from `address` to the end of the whole copy: the range checked on every chunk.
        var remainingBytes: UInt64
        var stream: UInt64
        var asynchronous: Bool
    }

    /// Device memory to read or write in place for `bytes` of `copy`, once the copy's turn has
    /// come on its stream; nil where that cannot be (the driver offers no views, or the range is
    /// not the session's, or the stream not its own, or the context is broken: the staged path
    /// then gives the driver's answer).
    private func deviceView(_ copy: DeviceCopy, bytes: Int) -> UnsafeMutableRawBufferPointer? {
        // The session's own memory, checked over the whole rest of the copy (as the staged path does).
        guard let deviceRange, bytes > 0, (try? checkChunk(copy, count: bytes)) != nil else { return nil }
        // A synchronous copy runs on the legacy stream, as the driver's cuMemcpyHtoD/DtoH do.
        let stream: CUstream?
        if copy.asynchronous {
            guard let resolved = try? handle(.stream, copy.stream) else { return nil }
            stream = resolved
        } else {
            stream = nil
        }
        var host: UnsafeMutableRawPointer?
        guard deviceRange(copy.address, bytes, stream, &host) == CUDA_SUCCESS, let host else { return nil }
        return UnsafeMutableRawBufferPointer(start: host, count: bytes)
    }

    /// What every chunk is checked for first, in place or staged: it lies within what the client
    /// said is left of its copy, and that whole rest lies inside one of the session's allocations.
    private func checkChunk(_ copy: DeviceCopy, count: Int) throws(CallFailure) {
        guard UInt64(count) <= copy.remainingBytes else { throw CallFailure(CUDA_ERROR_INVALID_VALUE) }
        try checkRange(copy.address, count: copy.remainingBytes, elementSize: 1)
    }

    private func directOutcome() -> CallOutcome {
        statistics.directChunks += 1
        return CallOutcome(status: CUDA_SUCCESS, payload: [])
    }

    /// The driver's copy out of the upload buffer `slot` (the data is where it arrived). It is
    /// left running while the next chunk arrives (UploadStaging), except the last chunk of a
    /// synchronous copy: the copy has finished when that one answers, as `cuMemcpyHtoD` has.
    private func stagedCopyToDevice(_ copy: DeviceCopy, slot: Int, count: Int) -> CallOutcome {
        perform { () throws(CallFailure) in
            try checkChunk(copy, count: count)
            let stream = copy.asynchronous ? try handle(.stream, copy.stream) : nil
            let last = UInt64(count) == copy.remainingBytes
            try check(uploads.copy(slot: slot, count: count, to: copy.address, stream: stream, wait: !copy.asynchronous && last))
            return MemcpyHtoDReply()
        }
    }

    /// A chunk of one byte value (zero-filled memory above all) set by the driver's memset in place
    /// of the staged copy: no inflating, no host-to-device transfer. An asynchronous copy stays
    /// asynchronous (no staging buffer waits on it); a synchronous one has finished when it answers,
    /// as `cuMemcpyHtoD` has.
    private func stagedSetOnDevice(_ copy: DeviceCopy, value: UInt8, count: Int) -> CallOutcome {
        perform { () throws(CallFailure) in
            try checkChunk(copy, count: count)
            let stream = copy.asynchronous ? try handle(.stream, copy.stream) : nil
            try check(table.cuMemsetD8Async(copy.address, value, count, stream))
            if !copy.asynchronous { try check(table.cuStreamSynchronize(nil)) }
            statistics.memsetChunks += 1
            return MemcpyHtoDReply()
        }
    }

    private func stagedCopyToHost(_ copy: DeviceCopy, into target: UnsafeMutableRawBufferPointer) throws(CallFailure) {
        try checkChunk(copy, count: target.count)
        if copy.asynchronous {
            let stream = try handle(.stream, copy.stream)
            try check(table.cuMemcpyDtoHAsync_v2(target.baseAddress, copy.address, target.count, stream))
            try check(table.cuStreamSynchronize(stream))
        } else {
            try check(table.cuMemcpyDtoH_v2(target.baseAddress, copy.address, target.count))
        }
    }

    /// A device-to-host chunk as LZ4 data (u32 size before compression, then the blob), when the
    /// session negotiated compression, the client asked for it and it pays; nil to send it raw.
    private func compressedReply(_ data: UnsafeRawBufferPointer) -> CallOutcome? {
        guard compression, let codec = LZ4Codec.shared,
            let count = downloadGovernor.compress(data, codec: codec, into: packedScratch, sampleScratch: sampleScratch)
        else { return nil }
        var prefix = WireWriter(capacity: 8)
        prefix.write(UInt32(data.count))
        prefix.write(UInt32(count))
        return CallOutcome(
            status: CUDA_SUCCESS, payload: prefix.bytes, bulk: UnsafeRawBufferPointer(rebasing: packedScratch[0..<count]),
            flags: .compressed)
    }

    private static func violation(_ code: ProtocolError.Code, _ message: String) -> FrameError {
        .protocolViolation(ProtocolError(code, "\(CallID.memcpyHtoD): \(message)"))
    }
}
