import Testing
@testable import XPUPTX

/// Device-side `assert`: nvcc 13.5 compiles a failed assertion to a call of the device runtime's
/// `__assertfail(message, file, line, function, charSize)`. CUDA prints the report where printf
/// output goes and stops the kernel; the context then holds CUDA_ERROR_ASSERT (the simulated
/// device maps the `.assertion` fault to it).
@Suite struct AssertFailTests {
    /// `assert(threadIdx.x != 2); out[threadIdx.x] = 1;` in the form nvcc emits (a.cu line 7).
    static let kernel = """
        .version 8.0
        .target sm_80
        .address_size 64
        .extern .func __assertfail
        (
        \t.param .b64 __assertfail_param_0,
        \t.param .b64 __assertfail_param_1,
        \t.param .b32 __assertfail_param_2,
        \t.param .b64 __assertfail_param_3,
        \t.param .b64 __assertfail_param_4
        )
        ;
        .global .align 1 .b8 __unnamed_1[23] = {118, 111, 105, 100, 32, 107, 40, 117, 110, 115, 105, 103, 110, 101, 100, 32, 105, 110, 116, 32, 42, 41, 0};
        .global .align 1 .b8 $str[17] = {116, 104, 114, 101, 97, 100, 73, 100, 120, 46, 120, 32, 33, 61, 32, 50, 0};
        .global .align 1 .b8 $str$1[5] = {97, 46, 99, 117, 0};
        .visible .entry k(
        \t.param .u64 k_param_0
        )
        {
        \t.reg .pred \t%p<2>;
        \t.reg .b32 \t%r<3>;
        \t.reg .b64 \t%rd<12>;
        \tld.param.u64 \t%rd1, [k_param_0];
        \tmov.u32 \t%r1, %tid.x;
        \tsetp.ne.s32 \t%p1, %r1, 2;
        \t@%p1 bra \t$L__BB0_2;
        \tmov.u64 \t%rd7, $str;
        \tcvta.global.u64 \t%rd8, %rd7;
        \tmov.u64 \t%rd9, $str$1;
        \tcvta.global.u64 \t%rd10, %rd9;
        \tmov.u64 \t%rd11, __unnamed_1;
        \tcvta.global.u64 \t%rd2, %rd11;
        \t{ // callseq 0, 0
        \t.reg .b32 temp_param_reg;
        \t.param .b64 param0;
        \tst.param.b64 \t[param0+0], %rd8;
        \t.param .b64 param1;
        \tst.param.b64 \t[param1+0], %rd10;
        \t.param .b32 param2;
        \tst.param.b32 \t[param2+0], 7;
        \t.param .b64 param3;
        \tst.param.b64 \t[param3+0], %rd2;
        \t.param .b64 param4;
        \tst.param.b64 \t[param4+0], 1;
        \tcall.uni
        \t__assertfail,
        \t(
        \tparam0,
        \tparam1,
        \tparam2,
        \tparam3,
        \tparam4
        \t);
        \t} // callseq 0
        $L__BB0_2:
        \tcvta.to.global.u64 \t%rd3, %rd1;
        \tmul.wide.u32 \t%rd4, %r1, 4;
        \tadd.s64 \t%rd5, %rd3, %rd4;
        \tmov.u32 \t%r2, 1;
        \tst.global.u32 \t[%rd5], %r2;
        \tret;
        }
        """

    static func run(threads: Int) throws -> (fault: PTXFault?, output: String, stored: [UInt32]) {
        let module = try PTXModule(source: kernel)
        let k = try #require(module.kernel(named: "k"))
        #expect(k.prints)
        let memory = TestMemory()
        let out = memory.allocate(4 * threads)
        var params = ParameterBuffer()
        params.append(out, at: 0)
        let variables = module.variables.map { v in
            let address = memory.allocate(max(v.size, 8))
            for (i, byte) in v.initialBytes.enumerated() { memory.pointer(address).storeBytes(of: byte, toByteOffset: i, as: UInt8.self) }
            return address
        }
        let output = DeviceOutput()
        let fault = PTXLaunch(
            kernel: k, grid: PTXDim3(2), block: PTXDim3(threads), parameters: params.bytes, memory: memory.map,
            variableAddresses: variables, output: output
        ).run()
        let p = memory.pointer(out)
        return (fault, String(decoding: output.drain().bytes, as: UTF8.self), (0..<threads).map { p.load(fromByteOffset: 4 * $0, as: UInt32.self) })
    }

    @Test func aFailedAssertionReportsAndStopsTheKernel() throws {
        let (fault, output, stored) = try Self.run(threads: 4)
        #expect(fault?.kind == .assertion)
        #expect(fault?.kernel == "k")
        #expect(output == "a.cu:7: void k(unsigned int *): block: [0,0,0], thread: [2,0,0] Assertion `threadIdx.x != 2` failed.\n")
        // The failing thread stored nothing.
        #expect(stored[2] == 0)
    }

    @Test func assertionsThatHoldChangeNothing() throws {
        let (fault, output, stored) = try Self.run(threads: 2)
        #expect(fault == nil)
        #expect(output.isEmpty)
        #expect(stored == [1, 1])
    }
}
