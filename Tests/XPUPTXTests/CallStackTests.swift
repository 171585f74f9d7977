import Testing
@testable import XPUPTX

/// Calls that need a call stack: functions that call themselves (directly or through another
/// function) in the form nvcc 13.5 emits them (`.param` arguments and results, a `callseq` block
/// per call), and what the loader still refuses.
@Suite struct CallStackTests {
    static let header = """
        .version 8.0
        .target sm_80
        .address_size 64
        """

    /// Runs entry `k(out, n)` on `threads` threads; each thread writes one u64 at out[tid].
    static func run(_ source: String, n: UInt64, threads: Int = 1) throws -> (values: [UInt64], fault: PTXFault?) {
        let module = try PTXModule(source: source)
        let kernel = try #require(module.kernel(named: "k"))
        let memory = TestMemory()
        let out = memory.allocate(8 * threads)
        var params = ParameterBuffer()
        params.append(out, at: 0)
        params.append(n, at: 8)
        let fault = PTXLaunch(
            kernel: kernel, grid: PTXDim3(1), block: PTXDim3(threads), parameters: params.bytes, memory: memory.map
        ).run()
        let p = memory.pointer(out)
        return ((0..<threads).map { p.load(fromByteOffset: 8 * $0, as: UInt64.self) }, fault)
    }

    /// fib(n) = n < 2 ? n : fib(n - 1) + fib(n - 2): two recursive calls, the first result kept in
    /// a register across the second call (so each activation must keep its own registers).
    static let fibonacci = header + """

        .func (.param .b64 fib_ret) fib(.param .b64 fib_n)
        {
            .reg .pred %p<2>;
            .reg .b64 %rd<8>;
            ld.param.u64 %rd1, [fib_n];
            setp.lt.u64 %p1, %rd1, 2;
            @%p1 bra DONE;
            add.s64 %rd2, %rd1, -1;
            { // callseq 0, 0
            .param .b64 param0;
            st.param.b64 [param0+0], %rd2;
            .param .b64 retval0;
            call.uni (retval0), fib, (param0);
            ld.param.b64 %rd3, [retval0+0];
            } // callseq 0
            add.s64 %rd4, %rd1, -2;
            { // callseq 1, 0
            .param .b64 param0;
            st.param.b64 [param0+0], %rd4;
            .param .b64 retval0;
            call.uni (retval0), fib, (param0);
            ld.param.b64 %rd5, [retval0+0];
            } // callseq 1
            add.s64 %rd1, %rd3, %rd5;
        DONE:
            st.param.b64 [fib_ret+0], %rd1;
            ret;
        }
        .visible .entry k(.param .u64 k_out, .param .u64 k_n)
        {
            .reg .b32 %r<2>;
            .reg .b64 %rd<8>;
            ld.param.u64 %rd1, [k_out];
            ld.param.u64 %rd2, [k_n];
            mov.u32 %r1, %tid.x;
            cvt.u64.u32 %rd3, %r1;
            add.s64 %rd2, %rd2, %rd3;
            { // callseq 2, 0
            .param .b64 param0;
            st.param.b64 [param0+0], %rd2;
            .param .b64 retval0;
            call.uni (retval0), fib, (param0);
            ld.param.b64 %rd4, [retval0+0];
            } // callseq 2
            mul.wide.u32 %rd5, %r1, 8;
            add.s64 %rd6, %rd1, %rd5;
            st.global.u64 [%rd6], %rd4;
            ret;
        }
        """

    static func fib(_ n: UInt64) -> UInt64 { n < 2 ? n : fib(n - 1) + fib(n - 2) }

    @Test func selfRecursionKeepsEachActivationsValues() throws {
        let (values, fault) = try Self.run(Self.fibonacci, n: 10, threads: 4)
        #expect(fault == nil)
        #expect(values == (10..<14).map { Self.fib(UInt64($0)) })
    }

    /// even(n) = n == 0 ? 1 : odd(n - 1); odd(n) = n == 0 ? 0 : even(n - 1), with register
    /// parameters and results.
    static let parity = header + """

        .func (.reg .b64 odd_ret) odd(.reg .b64 odd_n);
        .func (.reg .b64 even_ret) even(.reg .b64 even_n)
        {
            .reg .pred %p<2>;
            .reg .b64 %rd<4>;
            mov.b64 even_ret, 1;
            setp.eq.u64 %p1, even_n, 0;
            @%p1 bra DONE;
            add.s64 %rd1, even_n, -1;
            call.uni (%rd2), odd, (%rd1);
            mov.b64 even_ret, %rd2;
        DONE:
            ret;
        }
        .func (.reg .b64 odd_ret) odd(.reg .b64 odd_n)
        {
            .reg .pred %p<2>;
            .reg .b64 %rd<4>;
            mov.b64 odd_ret, 0;
            setp.eq.u64 %p1, odd_n, 0;
            @%p1 bra DONE;
            add.s64 %rd1, odd_n, -1;
            call.uni (%rd2), even, (%rd1);
            mov.b64 odd_ret, %rd2;
        DONE:
            ret;
        }
        .visible .entry k(.param .u64 k_out, .param .u64 k_n)
        {
            .reg .b64 %rd<4>;
            ld.param.u64 %rd1, [k_out];
            ld.param.u64 %rd2, [k_n];
            call.uni (%rd3), even, (%rd2);
            st.global.u64 [%rd1], %rd3;
            ret;
        }
        """

    @Test func mutualRecursionThroughRegisterParameters() throws {
        for n: UInt64 in [0, 1, 7, 40] {
            let (values, fault) = try Self.run(Self.parity, n: n)
            #expect(fault == nil)
            #expect(values == [n % 2 == 0 ? 1 : 0], "n = \(n)")
        }
    }

    @Test func recursionPastTheCallStackFaults() throws {
        // A call level here is the kernel's local layout plus fib's 11 saved registers (144
        // bytes): 64 KiB hold about 450 levels, so the first chain of calls, 5000 deep, overflows.
        let (_, fault) = try Self.run(Self.fibonacci, n: 5000)
        #expect(fault?.kind == .illegalAddress)
    }

    /// numba's calling convention: the result goes through a pointer to the caller's local
    /// memory (its `__local_depot`, made generic with `cvta.local`), and the return value is a status.
    static let resultThroughPointer = header + """

        .func (.param .b32 fibp_status) fibp(.param .b64 fibp_out, .param .b64 fibp_n)
        {
            .local .align 8 .b8 __local_depot0[16];
            .reg .b64 %SP;
            .reg .b64 %SPL;
            .reg .pred %p<2>;
            .reg .b32 %r<3>;
            .reg .b64 %rd<10>;
            mov.u64 %SPL, __local_depot0;
            cvta.local.u64 %SP, %SPL;
            ld.param.u64 %rd1, [fibp_out];
            ld.param.u64 %rd2, [fibp_n];
            setp.lt.u64 %p1, %rd2, 2;
            @%p1 bra BASE;
            add.u64 %rd3, %SP, 0;
            add.s64 %rd4, %rd2, -1;
            { // callseq 0, 0
            .param .b64 param0;
            st.param.b64 [param0+0], %rd3;
            .param .b64 param1;
            st.param.b64 [param1+0], %rd4;
            .param .b32 retval0;
            call.uni (retval0), fibp, (param0, param1);
            ld.param.b32 %r1, [retval0+0];
            } // callseq 0
            add.u64 %rd5, %SP, 8;
            add.s64 %rd6, %rd2, -2;
            { // callseq 1, 0
            .param .b64 param0;
            st.param.b64 [param0+0], %rd5;
            .param .b64 param1;
            st.param.b64 [param1+0], %rd6;
            .param .b32 retval0;
            call.uni (retval0), fibp, (param0, param1);
            ld.param.b32 %r2, [retval0+0];
            } // callseq 1
            ld.u64 %rd7, [%SP];
            ld.u64 %rd8, [%SP+8];
            add.s64 %rd2, %rd7, %rd8;
        BASE:
            st.u64 [%rd1], %rd2;
            mov.u32 %r1, 0;
            st.param.b32 [fibp_status+0], %r1;
            ret;
        }
        .visible .entry k(.param .u64 k_out, .param .u64 k_n)
        {
            .reg .b32 %r<3>;
            .reg .b64 %rd<8>;
            ld.param.u64 %rd1, [k_out];
            ld.param.u64 %rd2, [k_n];
            mov.u32 %r1, %tid.x;
            cvt.u64.u32 %rd3, %r1;
            add.s64 %rd2, %rd2, %rd3;
            mul.wide.u32 %rd5, %r1, 8;
            add.s64 %rd6, %rd1, %rd5;
            { // callseq 2, 0
            .param .b64 param0;
            st.param.b64 [param0+0], %rd6;
            .param .b64 param1;
            st.param.b64 [param1+0], %rd2;
            .param .b32 retval0;
            call.uni (retval0), fibp, (param0, param1);
            ld.param.b32 %r2, [retval0+0];
            } // callseq 2
            ret;
        }
        """

    @Test func resultsThroughPointersToTheCallersLocalMemory() throws {
        let (values, fault) = try Self.run(Self.resultThroughPointer, n: 8, threads: 3)
        #expect(fault == nil)
        #expect(values == (8..<11).map { Self.fib(UInt64($0)) })
    }

    @Test func callsToUnknownFunctionsAndThroughRegistersFailTheLoad() throws {
        let unknown = Self.header + """

            .visible .entry k()
            {
                call g, ();
                ret;
            }
            """
        #expect {
            try PTXModule(source: unknown)
        } throws: { error in
            (error as? PTXError)?.code == .unknownIdentifier
        }
        // numba's runtime (NRT) calls destructors through a function pointer: the prototype
        // parses, and the load fails naming the indirect call (every body is lowered, called or not).
        let runDestructor = """

            .visible .func run_dtor(.param .b64 run_dtor_f)
            {
                .reg .b64 %rd<3>;
                ld.param.u64 %rd1, [run_dtor_f];
                { // callseq 0, 0
                .param .b64 param0;
                st.param.b64 [param0+0], 0;
                prototype_0 : .callprototype ()_ (.param .b64 _);
                call %rd1, (param0), prototype_0;
                } // callseq 0
                ret;
            }
            .visible .entry unused()
            {
                ret;
            }
            """
        let indirect = Self.header + runDestructor + """

            .visible .entry k(.param .u64 k_f)
            {
                .reg .b64 %rd<2>;
                ld.param.u64 %rd1, [k_f];
                { // callseq 1, 0
                .param .b64 param0;
                st.param.b64 [param0+0], %rd1;
                call.uni run_dtor, (param0);
                } // callseq 1
                ret;
            }
            """
        #expect {
            try PTXModule(source: indirect)
        } throws: { error in
            guard let error = error as? PTXError else { return false }
            return error.code == .unsupported && error.message.contains("indirect")
        }
    }
}
