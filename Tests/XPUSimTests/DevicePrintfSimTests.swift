import CXPUDriver
import Synchronization
import Testing
import XPUSim

/// Device printf on the simulated device: output waits in the context's FIFO until a
/// synchronizing call, then goes to the installed sink (the server's path; without a sink it goes
/// to stdout), tagged with the context; CU_LIMIT_PRINTF_FIFO_SIZE bounds what is kept.
@Suite(.serialized) struct DevicePrintfSimTests {
    /// `printf("value %d\n", n)` as nvcc lowers it: a global format string, the argument in a
    /// local buffer, `call vprintf`.
    static let ptx = """
        .version 8.5
        .target sm_80
        .address_size 64
        .extern .func (.param .b32 func_retval0) vprintf (.param .b64 vprintf_param_0, .param .b64 vprintf_param_1);
        .global .align 1 .b8 fmt[10] = {118, 97, 108, 117, 101, 32, 37, 100, 10, 0};
        .visible .entry print_value(.param .u32 n)
        {
            .local .align 8 .b8 depot[8];
            .reg .b64 %SP;
            .reg .b64 %SPL;
            .reg .b64 %rd<4>;
            .reg .b32 %r<4>;
            mov.u64 %SPL, depot;
            cvta.local.u64 %SP, %SPL;
            ld.param.u32 %r1, [n];
            st.local.u32 [%SPL], %r1;
            mov.u64 %rd1, fmt;
            cvta.global.u64 %rd2, %rd1;
            {
            .param .b64 param0;
            st.param.b64 [param0+0], %rd2;
            .param .b64 param1;
            st.param.b64 [param1+0], %SP;
            .param .b32 retval0;
            call.uni (retval0), vprintf, (param0, param1);
            ld.param.b32 %r2, [retval0+0];
            }
            ret;
        }
        """

    /// What the sink received, by context handle.
    static let received = Mutex<[UInt: [UInt8]]>([:])

    static func text(of context: CUcontext?) -> String {
        String(decoding: received.withLock { $0[UInt(bitPattern: context)] ?? [] }, as: UTF8.self)
    }

    @Test func outputReachesTheSinkAtSynchronization() throws {
        xpuSimSetDeviceOutputSink { context, bytes, count in
            guard let bytes else { return }
            let text = [UInt8](UnsafeRawBufferPointer(start: bytes, count: count))
            DevicePrintfSimTests.received.withLock { $0[UInt(bitPattern: context), default: []] += text }
        }
        defer { xpuSimSetDeviceOutputSink(nil) }
        withContext { ctx in
            var module: CUmodule?
            check(Self.ptx.withCString { cuModuleLoadData(&module, $0) })
            var function: CUfunction?
            check(cuModuleGetFunction(&function, module, "print_value"))
            func launch(_ n: UInt32) {
                var value = n
                withUnsafeMutablePointer(to: &value) { p in
                    var parameters: [UnsafeMutableRawPointer?] = [UnsafeMutableRawPointer(p)]
                    check(cuLaunchKernel(function, 1, 1, 1, 2, 1, 1, 0, nil, &parameters, nil))
                }
            }
            launch(7)
            // Until the host synchronizes, the output stays in the FIFO (even once the kernel ran).
            var status: CUresult = CUDA_ERROR_NOT_READY
            while status == CUDA_ERROR_NOT_READY { status = cuStreamQuery(nil) }
            check(status)
            #expect(Self.text(of: ctx) == "")
            check(cuCtxSynchronize())
            #expect(Self.text(of: ctx) == "value 7\nvalue 7\n")

            // A FIFO of 12 bytes keeps one 8-byte line of the next launch's two.
            var fifo = 0
            check(cuCtxGetLimit(&fifo, CU_LIMIT_PRINTF_FIFO_SIZE))
            #expect(fifo == 1 << 20)
            check(cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE, 12))
            defer { check(cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE, fifo)) }
            launch(9)
            check(cuStreamSynchronize(nil))
            #expect(Self.text(of: ctx) == "value 7\nvalue 7\nvalue 9\n")
            check(cuModuleUnload(module))
        }
    }
}
