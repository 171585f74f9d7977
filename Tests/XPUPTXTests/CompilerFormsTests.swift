import Testing
@testable import XPUPTX

/// Instructions and spellings that nvcc 13.5 and NVVM emit for CUDA's headers and libdevice (the
/// forms numba-cuda's kernels reach): FP8 conversions, `copysign`, `set`, the `WARP_SZ` constant,
/// and inline assembly's `.reg.b16` declarations with `0X...U` literals.
@Suite struct CompilerFormsTests {
    /// `cvt.rn.satfinite.<fp8>x2.f32 d, a, b` for each (a, b), as the 16-bit result.
    static func toFP8(_ format: String, _ cases: [(Float, Float)]) throws -> [UInt64] {
        try evaluate(
            "cvt.rn.satfinite.\(format)x2.f32", result: .h, operands: [.f, .f],
            cases: cases.map { [UInt64($0.0.bitPattern), UInt64($0.1.bitPattern)] })
    }

    @Test func floatPairsRoundToNearestEvenAndSaturateToE4M3() throws {
        // (value, E4M3 byte): exact values, ties to even, saturation, subnormals, NaN.
        let cases: [(Float, UInt64)] = [
            (1, 0x38), (-2, 0xC0), (448, 0x7E), (480, 0x7E), (1e9, 0x7E), (-.infinity, 0xFE), (.infinity, 0x7E),
            (.nan, 0x7F), (0x1p-9, 0x01), (0x1p-10, 0x00), (0x3p-10, 0x02), (1.0625, 0x38), (1.1875, 0x3A), (0, 0x00),
            (-0.0, 0x80), (0.1, 0x1D),
        ]
        // `a` goes to the upper byte; pair each value with 1.0 (0x38) below it.
        let results = try Self.toFP8("e4m3", cases.map { ($0.0, 1) })
        for (result, (value, byte)) in zip(results, cases) {
            #expect(result == byte << 8 | 0x38, "\(value)")
        }
    }

    @Test func floatPairsRoundToNearestEvenAndSaturateToE5M2() throws {
        let cases: [(Float, UInt64)] = [
            (1, 0x3C), (57344, 0x7B), (61440, 0x7B), (.infinity, 0x7B), (-.infinity, 0xFB), (.nan, 0x7F), (0x1p-16, 0x01),
            (1.125, 0x3C), (1.375, 0x3E), (-1.5, 0xBE),
        ]
        let results = try Self.toFP8("e5m2", cases.map { (2, $0.0) })  // 2.0 (0x40) in the upper byte
        for (result, (value, byte)) in zip(results, cases) {
            #expect(result == 0x40 << 8 | byte, "\(value)")
        }
    }

    @Test func everyFP8ValueSurvivesTheTripThroughHalfPrecision() throws {
        // f16x2 <- fp8x2 is exact, and fp8x2 <- f16x2 gives the same byte back (NaN aside).
        for format in ["e4m3", "e5m2"] {
            // Every byte but the NaNs (and E5M2's infinities, which saturate).
            let special: UInt64 = format == "e4m3" ? 0x7F : 0x7C
            var bytes: [UInt64] = []
            for b in UInt64(0)..<256 where b & special != special { bytes.append(b) }
            var pairs: [UInt64] = []
            for k in stride(from: 0, to: bytes.count - 1, by: 2) { pairs.append(bytes[k + 1] << 8 | bytes[k]) }
            let body = pairs.enumerated().map { k, value in
                """
                    mov.b64 %rd10, \(value);
                    cvt.u16.u64 %h2, %rd10;
                    cvt.rn.f16x2.\(format)x2 %r1, %h2;
                    cvt.rn.satfinite.\(format)x2.f16x2 %h3, %r1;
                    cvt.u64.u16 %rd11, %h3;
                    st.global.u64 [%rd0+\(16 * k)], %rd11;
                    cvt.u64.u32 %rd11, %r1;
                    st.global.u64 [%rd0+\(16 * k + 8)], %rd11;
                """
            }.joined(separator: "\n")
            let out = try runSingleThread(body, slots: 2 * pairs.count)
            for (k, pair) in pairs.enumerated() {
                #expect(out[2 * k] == pair, "\(format) \(pair)")
            }
            // Known halves: E4M3 0x38 = 1.0 (f16 0x3C00), 0x7E = 448 (0x5F00), 0x01 = 2^-9 (0x1800);
            // E5M2 0x3C = 1.0, 0x7B = 57344 (0x7B00), 0x01 = 2^-16 (0x0100).
            let known: [UInt64: UInt64] = format == "e4m3" ? [0x38: 0x3C00, 0x7E: 0x5F00, 0x01: 0x1800, 0xB8: 0xBC00]
                : [0x3C: 0x3C00, 0x7B: 0x7B00, 0x01: 0x0100, 0xBC: 0xBC00]
            var checked = 0
            for (k, pair) in pairs.enumerated() {
                let halves: UInt64 = out[2 * k + 1]
                if let half = known[pair & 0xFF] {
                    #expect(halves & 0xFFFF == half)
                    checked += 1
                }
                if let half = known[pair >> 8] {
                    #expect(halves >> 16 == half)
                    checked += 1
                }
            }
            #expect(checked == known.count)
        }
    }

    @Test func conversionsThePTXISADoesNotDefineFailTheLoad() {
        for instruction in [
            "cvt.rn.e4m3x2.f32 %h1, %f1, %f2;",  // .satfinite is required
            "cvt.rz.satfinite.e4m3x2.f32 %h1, %f1, %f2;",
            "cvt.rn.satfinite.e4m3x2.f64 %h1, %fd1, %fd2;",
            "cvt.rn.satfinite.e4m3x2.f32 %h1, %f1;",
        ] {
            #expect(throws: PTXError.self, "\(instruction)") { try runSingleThread(instruction, slots: 0) }
        }
    }

    @Test func fusedMultiplyAddWithRelu() throws {
        // bf16: 1.0 = 0x3F80, 2.0 = 0x4000, -3.0 = 0xC040; f16: 1.0 = 0x3C00, -3.0 = 0xC200.
        let bf16 = try evaluate(
            "fma.rn.relu.bf16", result: .h, operands: [.h, .h, .h],
            cases: [[0x3F80, 0x4000, 0x3F80], [0x3F80, 0x4000, 0xC040], [0x7FC1, 0x3F80, 0x3F80]])
        #expect(bf16 == [0x4040, 0, 0x7FFF])
        let f16 = try evaluate("fma.rn.relu.f16", result: .h, operands: [.h, .h, .h], cases: [[0x3C00, 0x3C00, 0xC200]])
        #expect(f16 == [0])
        #expect(throws: PTXError.self) { try runSingleThread("fma.rn.relu.f32 %f1, %f2, %f3, %f4;", slots: 0) }
    }

    @Test func sm90aTensorMapEditingIsRefusedByName() {
        #expect {
            try runSingleThread("tensormap.replace.tile.global_address.global.b1024.b64 [%rd1], %rd2;", slots: 0)
        } throws: { error in
            guard let error = error as? PTXError else { return false }
            return error.code == .unsupported && error.message.contains("tensormap.replace") && error.message.contains("sm_90a")
        }
    }

    @Test func copysignTakesTheSignOfTheFirstOperand() throws {
        let f64 = try evaluate(
            "copysign.f64", result: .fd, operands: [.fd, .fd],
            cases: [
                [Double(-1).bitPattern, Double(2.5).bitPattern], [Double(1).bitPattern, Double(-2.5).bitPattern],
                [Double(-0.0).bitPattern, Double.nan.bitPattern],
            ])
        #expect(f64 == [Double(-2.5).bitPattern, Double(2.5).bitPattern, (-Double.nan).bitPattern])
        let f32 = try evaluate(
            "copysign.f32", result: .f, operands: [.f, .f],
            cases: [[UInt64(Float(-1).bitPattern), UInt64(Float(3).bitPattern)], [UInt64(Float(1).bitPattern), UInt64(Float(-3).bitPattern)]])
        #expect(f32 == [UInt64(Float(-3).bitPattern), UInt64(Float(3).bitPattern)])
    }

    @Test func setWritesTheComparisonAsAValue() throws {
        let one = UInt64(Float(1).bitPattern)
        let two = UInt64(Float(2).bitPattern)
        #expect(try evaluate("set.lt.u32.f32", result: .r, operands: [.f, .f], cases: [[one, two], [two, one]]) == [0xFFFF_FFFF, 0])
        #expect(try evaluate("set.lt.f32.f32", result: .f, operands: [.f, .f], cases: [[one, two], [two, one]]) == [one, 0])
        #expect(try evaluate("set.lo.u32.u32", result: .r, operands: [.r, .r], cases: [[1, 2], [2, 1]]) == [0xFFFF_FFFF, 0])
        // f16 results (1.0 is 0x3C00), as CUDA's half-precision headers use it.
        #expect(try evaluate("set.eq.f16.f16", result: .h, operands: [.h, .h], cases: [[0x3C00, 0x3C00], [0x3C00, 0x4000]]) == [0x3C00, 0])
    }

    @Test func inlineAssemblySpellingsAndTheWarpSizeConstant() throws {
        // From cuda_fp16.hpp's hsin as NVVM emits it: `.reg.b16` in a nested scope, `0X...U` literals.
        let out = try runSingleThread(
            """
                mov.u32 %r1, WARP_SZ;
                cvt.u64.u32 %rd1, %r1;
                st.global.u64 [%rd0], %rd1;
                {
                  .reg.b16 i, r, spc, ulp, p;
                  mov.b16 i, 0X32B3U;
                  mov.b16 r, 0x3C00U;
                  mov.b16 spc, 0X32B3U;
                  mov.b16 ulp, 0X1400U;
                  set.eq.f16.f16 p, i, spc;
                  fma.rn.f16 r, p, ulp, r;
                  mov.b16 %h1, r;
                }
                cvt.u64.u16 %rd2, %h1;
                st.global.u64 [%rd0+8], %rd2;
                // cuda_bf16.hpp's __bfloat162char_rz: a byte and a literal packed into 16 bits.
                { .reg.b8 myreg;
                  mov.b16 %h2, 0xC000;
                  cvt.rzi.s8.bf16 myreg, %h2;
                  mov.b16 %h3, {myreg, 0};
                }
                cvt.u64.u16 %rd3, %h3;
                st.global.u64 [%rd0+16], %rd3;
            """, slots: 3)
        #expect(out[0] == 32)
        #expect(out[2] == 0xFE)
        // p is 1.0, so r = 1.0 * 2^-10 (0x1400) + 1.0: one f16 ulp above 1.0.
        #expect(out[1] == 0x3C01)
    }
}
