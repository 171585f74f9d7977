import CXPUDriver
import CXPURuntimeSupport
import Glibc
import Synchronization
import XPUPTX

/// Device-side printf on the simulated device: each context's FIFO (`DeviceOutput`), filled by
/// its kernels and written out at the next synchronizing call (context, stream and event
/// synchronize, blocking copies), as CUDA does. Output goes to the process's stdout through C's
/// `stdout` stream, so it lands in order with what the program printed itself; or, where a host
/// has installed a sink (`xpu_sim_set_device_output_sink`: the server, which sends it to its
/// client), to the sink.
enum DevicePrintfOutput {
    /// A context's FIFO, made on first use; `capacity` comes from CU_LIMIT_PRINTF_FIFO_SIZE.
    static func of(context: UInt) -> DeviceOutput {
        fifos.withLock { fifos in
            if let fifo = fifos[context] { return fifo }
            let fifo = DeviceOutput()
            fifos[context] = fifo
            anyFIFO.store(true, ordering: .releasing)
            return fifo
        }
    }

    /// Sizes the context's FIFO as CU_LIMIT_PRINTF_FIFO_SIZE says (the limit the program set with
    /// cuCtxSetLimit, else 1 MiB); called on the launching thread, where the context is current.
    static func applyLimit(context: UInt) {
        var size = 0
        guard cuCtxGetLimit(&size, CU_LIMIT_PRINTF_FIFO_SIZE) == CUDA_SUCCESS else { return }
        let fifo = of(context: context)
        if fifo.capacity != size { fifo.capacity = size }
    }

    /// Writes out what the context's kernels printed since the last flush.
    static func flush(context: UInt) {
        // Most programs never print: their synchronizations cost one load here.
        guard anyFIFO.load(ordering: .acquiring) else { return }
        guard let fifo = fifos.withLock({ $0[context] }) else { return }
        let (bytes, _) = fifo.drain()
        guard !bytes.isEmpty else { return }
        if let sink = sink.withLock({ $0 }) {
            bytes.withUnsafeBytes { sink(context.opaque, $0.baseAddress, $0.count) }
        } else {
            bytes.withUnsafeBytes { xpu_runtime_write_stdout($0.baseAddress, $0.count) }
        }
    }

    /// Flushes and forgets a context's FIFO (the context is being destroyed).
    static func discard(context: UInt) {
        flush(context: context)
        _ = fifos.withLock { $0.removeValue(forKey: context) }
    }

    typealias Sink = @convention(c) (CUcontext?, UnsafeRawPointer?, Int) -> Void

    private static let fifos = Mutex<[UInt: DeviceOutput]>([:])
    /// Whether any context ever had a FIFO (a kernel that prints was launched).
    private static let anyFIFO = Atomic<Bool>(false)
    static let sink = Mutex<Sink?>(nil)
}

/// Routes printf output to `sink(context, bytes, count)` instead of stdout (nil: back to stdout).
/// The server installs one so that output reaches the client that owns the context.
@c(xpu_sim_set_device_output_sink) public func xpuSimSetDeviceOutputSink(
    _ sink: (@convention(c) (CUcontext?, UnsafeRawPointer?, Int) -> Void)?
) {
    DevicePrintfOutput.sink.withLock { $0 = sink }
}
