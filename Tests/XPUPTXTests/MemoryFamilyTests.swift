import Testing
@testable import XPUPTX

/// `ld`/`st` on every state space with scalars and `.v2`/`.v4` vectors, `cvta` in both
/// directions, `mov` of variable addresses, `atom`/`red` on shared and global memory in the
/// widths not covered elsewhere, and `membar`/`fence`.
@Suite struct MemoryFamilyTests {
    @Test func vectorsOnEveryStateSpace() throws {
        let extra = """
            .const .align 16 .u32 ctab[4] = {11, 22, 33, 44};
            .global .align 16 .f32 gtab[4] = {0f3F800000, 0f40000000, 0f40400000, 0f40800000};
            .global .align 16 .b8 gbuf[64];
            .func (.param .align 16 .b8 result[16]) swap (.param .align 16 .b8 pair[16])
            {
                .reg .b32 %s<5>;
                ld.param.v4.u32 {%s1, %s2, %s3, %s4}, [pair];
                st.param.v4.u32 [result], {%s4, %s3, %s2, %s1};
                ret;
            }
            """
        let out = try runSingleThread(
            """
                .local .align 16 .b8 loc[32];
                .shared .align 16 .b8 sh[64];
                ld.const.v4.u32 {%r1, %r2, %r3, %r4}, [ctab];
                st.local.v4.u32 [loc], {%r1, %r2, %r3, %r4};
                ld.local.v2.u32 {%r5, %r6}, [loc+8];
                mov.b64 %rd1, {%r5, %r6};
                st.global.u64 [%rd0], %rd1;
                ld.global.v4.f32 {%f1, %f2, %f3, %f4}, [gtab];
                st.shared.v4.f32 [sh+16], {%f4, %f3, %f2, %f1};
                ld.shared.v2.f32 {%f5, %f6}, [sh+16];
                ld.shared.v2.f32 {%f7, _}, [sh+24];
                mov.b64 %rd2, {%f5, %f6};
                st.global.u64 [%rd0+8], %rd2;
                st.global.f32 [%rd0+16], %f7;
                ld.param.v2.u32 {%r7, %r8}, [out];
                mov.b64 %rd3, {%r7, %r8};
                sub.u64 %rd3, %rd3, %rd0;
                st.global.u64 [%rd0+24], %rd3;
                mov.f64 %fd1, 0d4000000000000000;
                mov.f64 %fd2, 0dC000000000000000;
                st.global.v2.f64 [gbuf], {%fd1, %fd2};
                ld.global.v2.u64 {%rd4, %rd5}, [gbuf];
                st.global.u64 [%rd0+32], %rd5;
                mov.b16 %h1, 0x1234;
                mov.b16 %h2, 0x5678;
                st.global.v4.u16 [gbuf+32], {%h1, %h2, %h2, %h1};
                ld.global.u64 %rd6, [gbuf+32];
                st.global.u64 [%rd0+40], %rd6;
                ld.global.v2.s8 {%h3, %h4}, [gbuf+32];
                cvt.s64.s16 %rd7, %h4;
                st.global.u64 [%rd0+48], %rd7;
                {
                    .param .align 16 .b8 arg[16];
                    .param .align 16 .b8 ret0[16];
                    st.param.v4.u32 [arg], {%r1, %r2, %r3, %r4};
                    call.uni (ret0), swap, (arg);
                    ld.param.v2.u32 {%r9, %r10}, [ret0];
                }
                mov.b64 %rd8, {%r9, %r10};
                st.global.u64 [%rd0+56], %rd8;
            """, slots: 8, extra: extra)
        #expect(out[0] == 33 | 44 << 32)
        #expect(out[1] == UInt64(Float(4).bitPattern) | UInt64(Float(3).bitPattern) << 32)
        #expect(UInt32(truncatingIfNeeded: out[2]) == Float(2).bitPattern)
        #expect(out[3] == 0, "ld.param.v2 reads the pointer parameter's two halves")
        #expect(Double(bitPattern: out[4]) == -2)
        #expect(out[5] == 0x1234_5678_5678_1234)
        #expect(Int64(bitPattern: out[6]) == 0x12, "second byte of 0x1234 (little-endian) sign-extended")
        #expect(out[7] == 44 | 33 << 32)
    }

    @Test func genericAddressesAndCvta() throws {
        let extra = ".global .align 8 .u32 garr[4] = {1, 2, 3, 4};"
        let out = try runSingleThread(
            """
                .local .align 8 .b8 loc[16];
                .shared .align 8 .b8 sh[16];
                mov.u64 %rd1, loc;
                cvta.local.u64 %rd2, %rd1;
                st.u32 [%rd2+4], 77;
                ld.local.u32 %r1, [loc+4];
                cvta.to.local.u64 %rd3, %rd2;
                sub.u64 %rd3, %rd3, %rd1;
                mov.u32 %r2, sh;
                cvta.shared.u32 %r3, %r2;
                mov.u64 %rd4, sh;
                cvta.shared.u64 %rd5, %rd4;
                st.u32 [%rd5+8], 88;
                ld.shared.u32 %r4, [sh+8];
                mov.u64 %rd6, garr;
                cvta.global.u64 %rd7, %rd6;
                cvta.to.global.u64 %rd8, %rd7;
                ld.u32 %r5, [%rd7+12];
                mov.u64 %rd9, garr+8;
                ld.global.u32 %r6, [%rd9];
                sub.u64 %rd10, %rd8, %rd6;
                mov.b64 %rd11, {%r1, %r4};
                st.global.u64 [%rd0], %rd11;
                st.global.u64 [%rd0+8], %rd3;
                mov.b64 %rd12, {%r5, %r6};
                st.global.u64 [%rd0+16], %rd12;
                st.global.u64 [%rd0+24], %rd10;
            """, slots: 4, extra: extra)
        #expect(out[0] == 77 | 88 << 32)
        #expect(out[1] == 0, "cvta.to.local undoes cvta.local")
        #expect(out[2] == 4 | 3 << 32)
        #expect(out[3] == 0, "global addresses are generic addresses")
    }

    @Test func atomicsAndReductionsInEveryWidth() throws {
        let threads = 64
        let body = """
                setp.eq.u32 %p1, %r0, 0;
                sub.s32 %r1, %r0, 32;
                cvt.s64.s32 %rd2, %r1;
                cvt.rn.f64.s32 %fd1, %r1;
                @%p1 st.shared.u32 [sh], 0;
                @%p1 st.shared.u32 [sh+4], 0;
                @%p1 st.shared.u64 [sh+8], 0;
                @%p1 st.shared.u32 [sh+16], 0;
                @%p1 st.shared.u64 [sh+24], 0;
                @%p1 st.shared.u64 [sh+32], 0;
                bar.sync 0;
                red.shared.add.u32 [sh], 2;
                red.shared.min.s32 [sh+4], %r1;
                red.global.max.s64 [%rd0+512], %rd2;
                red.global.min.s64 [%rd0+520], %rd2;
                red.global.add.f64 [%rd0+528], %fd1;
                red.global.add.f32 [%rd0+536], 0f3F000000;
                atom.global.min.u64 %rd3, [%rd0+544], %rd2;
                atom.shared.max.s32 %r2, [sh+16], %r1;
                atom.shared.exch.b64 %rd4, [sh+8], %rd2;
                red.shared.or.b32 [sh+24], %r0;
                red.shared.xor.b32 [sh+28], 1;
                atom.shared.cas.b64 %rd5, [sh+32], 0, 7;
                atom.global.and.b64 %rd6, [%rd0+552], %rd2;
                bar.sync 0;
                @%p1 ld.shared.v2.u32 {%r3, %r4}, [sh];
                @%p1 ld.shared.u32 %r5, [sh+16];
                @%p1 ld.shared.v2.u32 {%r6, %r7}, [sh+24];
                @%p1 ld.shared.u64 %rd7, [sh+32];
                @%p1 st.global.v2.u32 [%rd0+560], {%r3, %r4};
                @%p1 st.global.u32 [%rd0+568], %r5;
                @%p1 st.global.v2.u32 [%rd0+576], {%r6, %r7};
                @%p1 st.global.u64 [%rd0+584], %rd7;
                membar.cta;
                membar.gl;
                membar.sys;
                fence.sc.cta;
                fence.acq_rel.sys;
            """
        // The output buffer (zeroed, 64 bytes a thread) doubles as global memory from byte 512 on.
        let out = try runBody(body, threads: threads)
        let words = out.flatMap { $0 }
        // words[64...] is the shared region of the buffer at byte 512 onward.
        let r = Array(words[64..<74])  // bytes 512..<592
        let signed = (0..<threads).map { Int64($0) - 32 }
        #expect(Int64(bitPattern: r[0]) == signed.max()!, "red.global.max.s64 from 0")
        #expect(Int64(bitPattern: r[1]) == Swift.min(0, signed.min()!))
        #expect(Double(bitPattern: r[2]) == Double(signed.reduce(0, +)))
        #expect(Float(bitPattern: UInt32(truncatingIfNeeded: r[3])) == Float(threads) / 2)
        #expect(r[4] == 0, "atom.min.u64 against 0 leaves 0")
        #expect(r[5] == 0, "and with 0 stays 0")
        #expect(r[6] & 0xFFFF_FFFF == UInt64(2 * threads))
        #expect(Int32(truncatingIfNeeded: r[6] >> 32) == -32)
        #expect(Int32(truncatingIfNeeded: r[7]) == 31)
        #expect(r[8] & 0xFFFF_FFFF == 63 && r[8] >> 32 == 0, "or of 0..<64; 64 xors of 1")
        #expect(r[9] == 7)
    }
}
