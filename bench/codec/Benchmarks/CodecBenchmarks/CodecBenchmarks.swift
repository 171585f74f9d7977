import Benchmark
import XPUProtocol

// Encode and decode, as the shim and the server do, the frames on the hot path: one request (header +
// payload) and its reply. `scaledIterations` repeats a call 1,000 times per sample and the framework
// divides by the scaling factor, so the metrics marked `*` read per call (ns per call, mallocs per
// call). Allocation counts are locked: Thresholds/ holds the accepted values and
// `swift package benchmark thresholds check` fails (exit 2) when a count grows, or reports an
// improvement (exit 4) that must then be accepted with `thresholds update`.

/// One frame, header then payload, encoded into a single buffer as the sender writes it.
@inline(__always)
func encodeFrame<M: WireMessage>(_ message: M, call: UInt16, flags: FrameFlags = [], sequence: UInt32) -> [UInt8] {
    var payload = WireWriter()
    message.encode(into: &payload)
    let body = payload.bytes
    var frame = WireWriter(capacity: FrameHeader.size + body.count)
    FrameHeader(length: UInt32(body.count), call: call, flags: flags, sequence: sequence, context: 0x1000)
        .encode(into: &frame)
    frame.writeFixed(body)
    return frame.bytes
}

/// The receiver's side: header first (validated), then the payload, consumed exactly.
@inline(__always)
func decodeFrame<M: WireMessage>(_ bytes: [UInt8], as _: M.Type) throws -> (FrameHeader, M) {
    let header = try FrameHeader(decoding: Array(bytes[0..<FrameHeader.size]))
    var reader = WireReader(bytes, offset: FrameHeader.size)
    let message = try M(from: &reader)
    try reader.expectEnd()
    return (header, message)
}

/// A kernel launch with three pointer parameters (a 24-byte parameter block): fire-and-forget.
let launch = LaunchKernelRequest(
    function: 0x1002, gridX: 1, gridY: 1, gridZ: 1, blockX: 32, blockY: 1, blockZ: 1,
    sharedMemBytes: 0, stream: 0, parameters: [UInt8](repeating: 7, count: 24))

/// The request for one device-to-host chunk: a fixed-size header with no data.
let dtohChunk = MemcpyDtoHRequest(
    source: 0x7f00_0000_0000, count: 4 << 20, remainingBytes: 16 << 20, stream: 0, asynchronous: 0)

/// A host-to-device chunk carrying 4 KiB of data (the smallest size xpu-bench measures).
let htodChunk = MemcpyHtoDRequest(
    destination: 0x7f00_0000_0000, remainingBytes: 4096, stream: 0, asynchronous: 0,
    data: [UInt8](repeating: 0x5a, count: 4096))

/// A small synchronous call: cuMemGetInfo_v2 (empty request, 16-byte reply).
let memInfoReply = CuMemGetInfo_v2Reply(free: 15 << 30, total: 16 << 30)

// Names carry no spaces: benchmark 1.38.1 writes threshold files with spaces turned into
// underscores but reads them back by the raw name, so a name with a space never finds its file.
let benchmarks: @Sendable () -> Void = {
    // Allocation counts are exact and must not move at all; time is reported, not locked (this
    // machine has 2 shared cores), but a 25% regression at p50 is flagged when comparing baselines.
    let thresholds: [BenchmarkMetric: BenchmarkThresholds] = [
        .mallocCountTotal: .init(relative: [.p50: 0, .p90: 0], absolute: [.p50: 0, .p90: 0]),
        .wallClock: .init(relative: [.p50: 25]),
    ]
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 200,
        thresholds: thresholds
    )

    Benchmark("FrameHeader.encodeDecode") { benchmark in
        for sequence in benchmark.scaledIterations {
            let header = FrameHeader(length: 16, call: CallID.cuMemGetInfo_v2.rawValue, flags: .reply,
                                     sequence: UInt32(truncatingIfNeeded: sequence), context: 0x1000)
            blackHole(try FrameHeader(decoding: header.encoded))
        }
    }

    Benchmark("LaunchKernel.threePointerParams.encodeDecode") { benchmark in
        for sequence in benchmark.scaledIterations {
            let frame = encodeFrame(launch, call: CallID.launchKernel.rawValue, flags: .noReply,
                                    sequence: UInt32(truncatingIfNeeded: sequence))
            blackHole(try decodeFrame(frame, as: LaunchKernelRequest.self))
        }
    }

    Benchmark("LaunchKernel.threePointerParams.encodeOnly") { benchmark in
        for sequence in benchmark.scaledIterations {
            blackHole(encodeFrame(launch, call: CallID.launchKernel.rawValue, flags: .noReply,
                                  sequence: UInt32(truncatingIfNeeded: sequence)))
        }
    }

    // What the shim does per cuLaunchKernel: append the frame to its reused send buffer, the
    // parameter block copied in place from the argument pointers. Locked at zero allocations.
    Benchmark("LaunchKernel.threePointerParams.enqueueInPlace") { benchmark in
        // The queue is the shim's long-lived send buffer: created before measuring starts.
        var queue = WireWriter(capacity: 1 << 20)
        var pointers: (UInt64, UInt64, UInt64) = (0x7f00_0000_0000, 0x7f00_0000_1000, 0x7f00_0000_2000)
        benchmark.startMeasurement()
        for sequence in benchmark.scaledIterations {
            if queue.count > (1 << 20) - 256 { queue.removeAll() }
            withUnsafeBytes(of: &pointers) { arguments in
                LaunchKernelRequest.appendFrame(
                    to: &queue, flags: .noReply, sequence: UInt32(truncatingIfNeeded: sequence), context: 0x1000,
                    function: 0x1002, grid: (1, 1, 1), block: (32, 1, 1), sharedMemBytes: 0, stream: 0,
                    parameterBytes: 24
                ) { block in block.copyMemory(from: arguments) }
            }
        }
        blackHole(queue.count)
    }

    // What the server does per launch frame: the header and the launch read where they lie in
    // its receive buffer (LaunchKernelFrame), the parameter block left in place. Locked at zero
    // allocations.
    Benchmark("LaunchKernel.threePointerParams.decodeInPlace") { benchmark in
        let received = encodeFrame(launch, call: CallID.launchKernel.rawValue, flags: .noReply, sequence: 1)
        benchmark.startMeasurement()
        received.withUnsafeBytes { buffer in
            for _ in benchmark.scaledIterations {
                let header = try! FrameHeader(decodingRaw: buffer)
                let payload = UnsafeRawBufferPointer(rebasing: buffer[FrameHeader.size..<FrameHeader.size + Int(header.length)])
                let frame = try! LaunchKernelFrame(decoding: payload)
                blackHole(frame.function &+ frame.stream &+ UInt64(frame.parameters.count))
            }
        }
    }

    Benchmark("MemcpyDtoH.chunkRequest.encodeDecode") { benchmark in
        for sequence in benchmark.scaledIterations {
            let frame = encodeFrame(dtohChunk, call: CallID.memcpyDtoH.rawValue,
                                    sequence: UInt32(truncatingIfNeeded: sequence))
            blackHole(try decodeFrame(frame, as: MemcpyDtoHRequest.self))
        }
    }

    Benchmark("MemcpyHtoD.chunkFramePrefix.encode") { benchmark in
        // What the shim writes in front of each host-to-device chunk sent from the caller's memory.
        for sequence in benchmark.scaledIterations {
            blackHole(MemcpyHtoDRequest.framePrefix(
                sequence: UInt32(truncatingIfNeeded: sequence), flags: .noReply, context: 0x1000,
                destination: 0x7f00_0000_0000, remainingBytes: 16 << 20, stream: 0, asynchronous: false,
                dataCount: 4 << 20))
        }
    }

    Benchmark("MemcpyHtoD.chunk4KiB.encodeDecode") { benchmark in
        for sequence in benchmark.scaledIterations {
            let frame = encodeFrame(htodChunk, call: CallID.memcpyHtoD.rawValue,
                                    sequence: UInt32(truncatingIfNeeded: sequence))
            blackHole(try decodeFrame(frame, as: MemcpyHtoDRequest.self))
        }
    }

    Benchmark("cuMemGetInfo_v2.requestAndReply.encodeDecode") { benchmark in
        for sequence in benchmark.scaledIterations {
            let seq = UInt32(truncatingIfNeeded: sequence)
            let request = encodeFrame(CuMemGetInfo_v2Request(), call: CallID.cuMemGetInfo_v2.rawValue, sequence: seq)
            blackHole(try decodeFrame(request, as: CuMemGetInfo_v2Request.self))
            let reply = encodeFrame(memInfoReply, call: CallID.cuMemGetInfo_v2.rawValue, flags: .reply, sequence: seq)
            blackHole(try decodeFrame(reply, as: CuMemGetInfo_v2Reply.self))
        }
    }
}
