import Glibc
import Testing
@testable import XPUPTX

/// Runs a hand-written kernel body on `threads` threads of one block (or `blocks` blocks). Each
/// thread owns eight u64 result slots at `%rd1` (`st.global.u64 [%rd1+8*k], ...`); `%r0` is
/// %tid.x and a 1 KiB shared array `sh` is declared. Returns the slots, per thread.
func runBody(
    _ body: String, threads: Int = 32, blocks: Int = 1, extra: String = "", sourceLocation: SourceLocation = #_sourceLocation
) throws -> [[UInt64]] {
    let source = """
        .version 8.0
        .target sm_80
        .address_size 64
        .global .align 8 .u64 gvar = 5;
        \(extra)
        .visible .entry t(.param .u64 out)
        {
            .reg .pred %p<8>;
            .reg .b16 %h<8>;
            .reg .b32 %r<32>;
            .reg .b64 %rd<16>;
            .reg .f32 %f<16>;
            .reg .f64 %fd<8>;
            .shared .align 8 .b8 sh[1024];
            ld.param.u64 %rd0, [out];
            mov.u32 %r0, %tid.x;
            mov.u32 %r30, %ctaid.x;
            mad.lo.u32 %r31, %r30, %ntid.x, %r0;
            mul.wide.u32 %rd1, %r31, 64;
            add.s64 %rd1, %rd0, %rd1;
        \(body)
            ret;
        }
        """
    let module = try PTXModule(source: source)
    let kernel = try #require(module.kernel(named: "t"), sourceLocation: sourceLocation)
    let memory = TestMemory()
    let out = memory.allocate(threads * blocks * 64)
    var params = ParameterBuffer()
    params.append(out, at: 0)
    // Module variables get memory, initialized as the device would at load.
    let variables = module.variables.map { v in
        let address = memory.allocate(max(v.size, 8))
        for (i, byte) in v.initialBytes.enumerated() { memory.pointer(address).storeBytes(of: byte, toByteOffset: i, as: UInt8.self) }
        return address
    }
    let fault = PTXLaunch(
        kernel: kernel, grid: PTXDim3(blocks), block: PTXDim3(threads), parameters: params.bytes, memory: memory.map,
        variableAddresses: variables
    ).run()
    #expect(fault == nil, sourceLocation: sourceLocation)
    let p = memory.pointer(out)
    return (0..<(threads * blocks)).map { t in (0..<8).map { p.load(fromByteOffset: t * 64 + 8 * $0, as: UInt64.self) } }
}

extension Float {
    var register: UInt64 { UInt64(bitPattern.self) }
    init(register: UInt64) { self = Float(bitPattern: UInt32(truncatingIfNeeded: register)) }
}

@Suite struct WarpTests {
    @Test func shuffleModesClampAndSegments() throws {
        let out = try runBody(
            """
                mul.lo.u32 %r1, %r0, 10;
                shfl.sync.down.b32 %r2|%p1, %r1, 3, 31, -1;
                selp.u32 %r3, 1, 0, %p1;
                shfl.sync.up.b32 %r4, %r1, 2, 0, -1;
                shfl.sync.bfly.b32 %r5, %r1, 5, 31, -1;
                shfl.sync.idx.b32 %r6, %r1, 7, 31, -1;
                shfl.sync.idx.b32 %r7, %r1, 2, 0x181f, -1;
                st.global.u64 [%rd1], %r2;
                st.global.u64 [%rd1+8], %r3;
                st.global.u64 [%rd1+16], %r4;
                st.global.u64 [%rd1+24], %r5;
                st.global.u64 [%rd1+32], %r6;
                st.global.u64 [%rd1+40], %r7;
            """, threads: 64)
        for t in 0..<64 {
            let lane = t % 32, warp = t - lane
            let v = { (l: Int) in UInt64((warp + l) * 10) }
            #expect(out[t][0] == (lane + 3 <= 31 ? v(lane + 3) : v(lane)), "down t=\(t)")
            #expect(out[t][1] == (lane + 3 <= 31 ? 1 : 0))
            #expect(out[t][2] == (lane >= 2 ? v(lane - 2) : v(lane)), "up t=\(t)")
            #expect(out[t][3] == v(lane ^ 5), "bfly t=\(t)")
            #expect(out[t][4] == v(7), "idx t=\(t)")
            #expect(out[t][5] == v((lane & ~7) | 2), "segmented idx t=\(t)")
        }
    }

    @Test func votesAndActiveMaskUnderDivergence() throws {
        let out = try runBody(
            """
                rem.u32 %r1, %r0, 3;
                setp.eq.u32 %p1, %r1, 0;
                vote.sync.ballot.b32 %r2, %p1, -1;
                vote.sync.any.pred %p2, %p1, -1;
                vote.sync.all.pred %p3, !%p1, -1;
                vote.sync.uni.pred %p4, %p1, -1;
                selp.u32 %r3, 1, 0, %p2;
                selp.u32 %r4, 1, 0, %p3;
                selp.u32 %r5, 1, 0, %p4;
                st.global.u64 [%rd1], %r2;
                st.global.u64 [%rd1+8], %r3;
                st.global.u64 [%rd1+16], %r4;
                st.global.u64 [%rd1+24], %r5;
                @%p1 bra SKIP;
                activemask.b32 %r6;
                st.global.u64 [%rd1+32], %r6;
                bar.warp.sync -1;
            SKIP:
                mov.u32 %r7, %laneid;
                mov.u32 %r8, %warpid;
                st.global.u64 [%rd1+40], %r7;
                st.global.u64 [%rd1+48], %r8;
            """, threads: 40)
        // The last warp has 8 lanes.
        for t in 0..<40 {
            let lanes = t < 32 ? 0..<32 : 0..<8
            let base = t < 32 ? 0 : 32
            var ballot: UInt64 = 0
            for l in lanes where (base + l) % 3 == 0 { ballot |= 1 << UInt64(l) }
            let all = lanes.reduce(UInt64(0)) { $0 | 1 << UInt64($1) }
            #expect(out[t][0] == ballot, "t=\(t)")
            #expect(out[t][1] == 1)
            #expect(out[t][2] == 0)
            #expect(out[t][3] == 0)
            if t % 3 != 0 { #expect(out[t][4] == all & ~ballot, "activemask t=\(t)") }
            #expect(out[t][5] == UInt64(t % 32))
            #expect(out[t][6] == UInt64(t / 32))
        }
    }

    @Test func barrierReductionsAndArrive() throws {
        let out = try runBody(
            """
                setp.lt.u32 %p1, %r0, 10;
                bar.red.popc.u32 %r1, 0, %p1;
                bar.red.and.pred %p2, 0, %p1;
                bar.red.or.pred %p3, 0, %p1;
                selp.u32 %r2, 1, 0, %p2;
                selp.u32 %r3, 1, 0, %p3;
                membar.gl;
                fence.acq_rel.gpu;
                bar.arrive 1, 64;
                barrier.sync 0;
                st.global.u64 [%rd1], %r1;
                st.global.u64 [%rd1+8], %r2;
                st.global.u64 [%rd1+16], %r3;
            """, threads: 64)
        for t in 0..<64 { #expect(out[t][0...2] == [10, 0, 1]) }
    }
}

@Suite struct InstructionFamilyTests {
    @Test func atomicsOnSharedAndGlobal() throws {
        // Every thread applies each operation once to a shared word and a global word (the
        // output buffer doubles as global memory: bytes 0..<64 hold the targets, 256..<320 the
        // final shared values copied out by thread 0).
        let threads = 96
        let ops: [(name: String, initial: UInt32, operand: String, apply: (UInt32, UInt32) -> UInt32)] = [
            ("add.u32", 0, "%r2", { $0 &+ $1 }), ("min.u32", 1000, "%r2", { min($0, $1) }),
            ("max.u32", 0, "%r2", { max($0, $1) }), ("and.b32", 0xFFFF_FFFF, "%r3", { $0 & $1 }),
            ("or.b32", 0, "%r2", { $0 | $1 }), ("xor.b32", 0, "%r2", { $0 ^ $1 }),
            ("inc.u32", 0, "7", { old, _ in old >= 7 ? 0 : old + 1 }), ("dec.u32", 5, "9", { old, _ in old == 0 || old > 9 ? 9 : old - 1 }),
        ]
        var body = """
                mul.lo.u32 %r2, %r0, 37;
                or.b32 %r3, %r2, 0xFFFFFF0F;
                setp.eq.u32 %p1, %r0, 0;

            """
        for (k, op) in ops.enumerated() {
            body += """
                    mov.u32 %r10, \(op.initial);
                    @%p1 st.shared.u32 [sh+\(4 * k)], %r10;
                    @%p1 st.global.u32 [%rd0+\(4 * k)], %r10;
                    bar.sync 0;
                    atom.shared.\(op.name) %r11, [sh+\(4 * k)], \(op.operand);
                    red.global.\(op.name) [%rd0+\(4 * k)], \(op.operand);
                    bar.sync 0;
                    ld.shared.u32 %r12, [sh+\(4 * k)];
                    @%p1 st.global.u32 [%rd0+\(256 + 4 * k)], %r12;

                """
        }
        body += """
                atom.shared.exch.b32 %r21, [sh+100], %r0;
                atom.global.cas.b32 %r22, [%rd0+128], 0, 99;
                atom.global.add.f32 %f1, [%rd0+132], 0f3F800000;
                atom.global.add.u64 %rd9, [%rd0+136], 3;
                bar.sync 0;
                ld.shared.u32 %r23, [sh+100];
                @%p1 st.global.u32 [%rd0+144], %r23;
            """
        let out = try runBody(body, threads: threads)
        let words = out.flatMap { $0 }.flatMap { [UInt32(truncatingIfNeeded: $0), UInt32(truncatingIfNeeded: $0 >> 32)] }
        for (k, op) in ops.enumerated() {
            // Each of these operations gives the same final value in any order.
            var expected = op.initial
            for t in 0..<threads {
                let operand: UInt32 = op.operand == "%r2" ? UInt32(t * 37) : op.operand == "%r3" ? UInt32(t * 37) | 0xFFFF_FF0F : UInt32(op.operand)!
                expected = op.apply(expected, operand)
            }
            #expect(words[k] == expected, "global \(op.name)")
            #expect(words[64 + k] == expected, "shared \(op.name)")
        }
        #expect(words[32] == 99)
        #expect(Float(bitPattern: words[33]) == Float(threads))
        #expect(UInt64(words[34]) | UInt64(words[35]) << 32 == UInt64(3 * threads))
        #expect((0..<UInt32(threads)).contains(words[36]), "exch leaves one thread's value")
    }

    @Test func integerFamily() throws {
        let out = try runBody(
            """
                mov.u32 %r1, 0xF0000001;
                mul.hi.u32 %r2, %r1, 16;
                mul.hi.s32 %r3, %r1, 16;
                mov.u64 %rd2, 0xFFFFFFFFFFFFFFFF;
                mul.hi.u64 %rd3, %rd2, %rd2;
                mul24.hi.u32 %r4, 0xFFFFFF, 0xFFFFFF;
                mad24.lo.u32 %r5, 1000, 1000, 7;
                slct.s32.s32 %r6, 11, 22, -1;
                slct.u32.f32 %r7, 11, 22, 0f3F800000;
                bfind.u32 %r8, 0x00010000;
                bfind.shiftamt.u32 %r9, 0x00010000;
                bfind.s32 %r10, -1;
                prmt.b32 %r11, 0x44332211, 0x88776655, 0x7140;
                st.global.u64 [%rd1], %r2;
                st.global.u64 [%rd1+8], %r3;
                st.global.u64 [%rd1+16], %rd3;
                st.global.u64 [%rd1+24], %r4;
                st.global.u64 [%rd1+32], %r5;
                st.global.u64 [%rd1+40], %r6;
                st.global.u64 [%rd1+48], %r7;
                mov.b64 %rd4, {%r8, %r9};
                st.global.u64 [%rd1+56], %rd4;
            """, threads: 1)
        #expect(out[0][0] == 0xF)
        #expect(out[0][1] == 0xFFFF_FFFF)  // -268435455 * 16 >> 32 = -1
        #expect(out[0][2] == 0xFFFF_FFFF_FFFF_FFFE)
        #expect(out[0][3] == 0xFFFF_FE00)  // bits 16..47 of the 48-bit product 0xFFFFFE000001
        #expect(out[0][4] == 1_000_007)
        #expect(out[0][5] == 22)
        #expect(out[0][6] == 11)
        #expect(out[0][7] == (UInt64(15) << 32) | 16)
    }

    @Test func addressesOfVariables() throws {
        let out = try runBody(
            """
                mov.u64 %rd2, sh;
                cvta.shared.u64 %rd3, %rd2;
                st.u32 [%rd3+16], 1234;
                ld.shared.u32 %r1, [sh+16];
                cvta.to.shared.u64 %rd4, %rd3;
                mov.u64 %rd5, gvar;
                ld.global.u64 %rd6, [%rd5];
                ld.global.u64 %rd7, [gvar];
                st.global.u64 [%rd1], %r1;
                st.global.u64 [%rd1+8], %rd4;
                st.global.u64 [%rd1+16], %rd6;
                st.global.u64 [%rd1+24], %rd7;
            """, threads: 1)
        #expect(out[0][0...3] == [1234, 0, 5, 5])
    }

    @Test func mathApproxAndFull() throws {
        let out = try runBody(
            """
                mov.f32 %f1, 0f40800000;
                rcp.approx.f32 %f2, %f1;
                rcp.rn.f32 %f3, %f1;
                sqrt.approx.f32 %f4, %f1;
                sqrt.rn.f32 %f5, %f1;
                rsqrt.approx.f32 %f6, %f1;
                ex2.approx.ftz.f32 %f7, %f1;
                lg2.approx.f32 %f8, %f1;
                sin.approx.f32 %f9, %f1;
                cos.approx.f32 %f10, %f1;
                mov.b64 %rd2, {%f2, %f3};
                mov.b64 %rd3, {%f4, %f5};
                mov.b64 %rd4, {%f6, %f7};
                mov.b64 %rd5, {%f8, %f9};
                st.global.u64 [%rd1], %rd2;
                st.global.u64 [%rd1+8], %rd3;
                st.global.u64 [%rd1+16], %rd4;
                st.global.u64 [%rd1+24], %rd5;
                st.global.f32 [%rd1+32], %f10;
                mov.f64 %fd1, 0d4010000000000000;
                sqrt.rn.f64 %fd2, %fd1;
                rcp.rn.f64 %fd3, %fd1;
                st.global.f64 [%rd1+40], %fd2;
                st.global.f64 [%rd1+48], %fd3;
            """, threads: 1)
        let r = out[0]
        func lo(_ v: UInt64) -> Float { Float(register: v) }
        func hi(_ v: UInt64) -> Float { Float(register: v >> 32) }
        #expect(lo(r[0]) == 0.25 && hi(r[0]) == 0.25)
        #expect(lo(r[1]) == 2 && hi(r[1]) == 2)
        #expect(lo(r[2]) == 0.5 && hi(r[2]) == 16)
        #expect(lo(r[3]) == 2 && abs(hi(r[3]) - sinf(4)) < 1e-6)
        #expect(abs(Float(register: r[4]) - cosf(4)) < 1e-6)
        #expect(Double(bitPattern: r[5]) == 2 && Double(bitPattern: r[6]) == 0.25)
    }

    @Test func halfAndBFloatConversionsAndRounding() throws {
        let out = try runBody(
            """
                mov.f32 %f1, 0f3FC00001;
                cvt.rn.f16.f32 %h1, %f1;
                cvt.rz.f16.f32 %h2, %f1;
                cvt.rp.f16.f32 %h3, %f1;
                cvt.f32.f16 %f2, %h3;
                cvt.rn.bf16.f32 %h4, %f1;
                cvt.rp.bf16.f32 %h5, %f1;
                cvt.f32.bf16 %f3, %h5;
                cvt.rn.f16x2.f32 %r1, %f1, %f2;
                mov.b64 %rd2, {%h1, %h2, %h3, %h4};
                st.global.u64 [%rd1], %rd2;
                st.global.u64 [%rd1+8], %h5;
                st.global.f32 [%rd1+16], %f2;
                st.global.f32 [%rd1+20], %f3;
                st.global.u64 [%rd1+24], %r1;
                mov.u32 %r2, 16777217;
                cvt.rn.f32.u32 %f4, %r2;
                cvt.rp.f32.u32 %f5, %r2;
                cvt.rz.f32.s32 %f6, -16777219;
                cvt.rm.f32.s32 %f7, -16777217;
                mov.b64 %rd3, {%f4, %f5};
                mov.b64 %rd4, {%f6, %f7};
                st.global.u64 [%rd1+32], %rd3;
                st.global.u64 [%rd1+40], %rd4;
            """, threads: 1)
        let r = out[0]
        let x = Float(bitPattern: 0x3FC0_0001)  // 1.5 + 1 ulp
        #expect(r[0] & 0xFFFF == UInt64(Float16(x).bitPattern))
        #expect((r[0] >> 16) & 0xFFFF == UInt64(Float16(1.5).bitPattern))
        #expect((r[0] >> 32) & 0xFFFF == UInt64(Float16(1.5).nextUp.bitPattern))
        #expect((r[0] >> 48) & 0xFFFF == 0x3FC0)
        #expect(r[1] == 0x3FC1)
        #expect(Float(register: r[2]) == Float(Float16(1.5).nextUp))
        #expect(Float(register: r[2] >> 32) == Float(bitPattern: 0x3FC1_0000))
        #expect(r[3] & 0xFFFF_FFFF == UInt64(Float16(1.5).bitPattern) << 16 | UInt64(Float16(Float16(1.5).nextUp).bitPattern))
        #expect(Float(register: r[4]) == 16_777_216 && Float(register: r[4] >> 32) == 16_777_218)
        #expect(Float(register: r[5]) == -16_777_218 && Float(register: r[5] >> 32) == -16_777_218)
    }

    @Test func clockIsMonotonic() throws {
        let out = try runBody(
            """
                mov.u64 %rd2, %clock64;
                mov.u32 %r1, %clock;
                mov.u64 %rd3, %clock64;
                sub.u64 %rd4, %rd3, %rd2;
                st.global.u64 [%rd1], %rd4;
                st.global.u64 [%rd1+8], %rd2;
            """, threads: 2)
        #expect(out[0][0] < 1 << 40 && out[0][1] > 0)
    }

    @Test func functionsWithRegisterAndParamArguments() throws {
        let extra = """
            .func (.reg .u32 %ret) twice (.reg .u32 %x)
            {
                add.u32 %ret, %x, %x;
                ret;
            }
            .func (.param .b64 out) widen (.param .b32 a, .param .b32 b)
            {
                .reg .b32 %t<3>;
                .reg .b64 %w;
                ld.param.b32 %t1, [a];
                ld.param.b32 %t2, [b];
                mul.wide.u32 %w, %t1, %t2;
                st.param.b64 [out], %w;
                ret;
            }
            """
        let out = try runBody(
            """
                call (%r1), twice, (%r0);
                {
                    .param .b32 p0;
                    .param .b32 p1;
                    .param .b64 r0;
                    st.param.b32 [p0], %r1;
                    st.param.b32 [p1], 0x40000000;
                    call.uni (r0), widen, (p0, p1);
                    ld.param.b64 %rd2, [r0];
                }
                st.global.u64 [%rd1], %r1;
                st.global.u64 [%rd1+8], %rd2;
            """, threads: 4, extra: extra)
        for t in 0..<4 {
            #expect(out[t][0] == UInt64(2 * t))
            #expect(out[t][1] == UInt64(2 * t) << 30)
        }
    }
}
