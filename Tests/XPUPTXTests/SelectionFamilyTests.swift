import Testing
@testable import XPUPTX

/// `setp` with every comparison (ordered and unordered floats, signed and unsigned integers, the
/// boolean combinations), `selp` and `slct`.
@Suite struct SelectionFamilyTests {
    static let comparisons = ["eq", "ne", "lt", "le", "gt", "ge", "equ", "neu", "ltu", "leu", "gtu", "geu", "num", "nan"]

    static func compare<F: BinaryFloatingPoint>(_ op: String, _ a: F, _ b: F) -> Bool {
        let unordered = a.isNaN || b.isNaN
        switch op {
        case "eq": return a == b
        case "ne": return !unordered && a != b
        case "lt": return a < b
        case "le": return a <= b
        case "gt": return a > b
        case "ge": return a >= b
        case "equ": return unordered || a == b
        case "neu": return unordered || a != b
        case "ltu": return unordered || a < b
        case "leu": return unordered || a <= b
        case "gtu": return unordered || a > b
        case "geu": return unordered || a >= b
        case "num": return !unordered
        default: return unordered
        }
    }

    @Test func floatComparisonsOrderedAndUnordered() throws {
        let f32: [Float] = [0, -0.0, 1, -1, .infinity, -.infinity, .nan, 0x1p-149]
        let f64: [Double] = [0, -0.0, 2, -2, .infinity, .nan]
        let h: [Float16] = [0, 1, -1, .nan, .infinity]
        for op in Self.comparisons {
            let c32 = pairs(f32.map { UInt64($0.bitPattern) })
            let g32 = try evaluate("setp.\(op).f32", result: .p, operands: [.f, .f], cases: c32)
            for (k, p) in c32.enumerated() {
                let a = Float(bitPattern: UInt32(p[0])), b = Float(bitPattern: UInt32(p[1]))
                #expect((g32[k] == 1) == Self.compare(op, a, b), "setp.\(op).f32 \(a) \(b)")
            }
            let c64 = pairs(f64.map(\.bitPattern))
            let g64 = try evaluate("setp.\(op).f64", result: .p, operands: [.fd, .fd], cases: c64)
            for (k, p) in c64.enumerated() {
                let a = Double(bitPattern: p[0]), b = Double(bitPattern: p[1])
                #expect((g64[k] == 1) == Self.compare(op, a, b), "setp.\(op).f64 \(a) \(b)")
            }
            let c16 = pairs(h.map { UInt64($0.bitPattern) })
            let g16 = try evaluate("setp.\(op).f16", result: .p, operands: [.h, .h], cases: c16)
            for (k, p) in c16.enumerated() {
                let a = Float16(bitPattern: UInt16(p[0])), b = Float16(bitPattern: UInt16(p[1]))
                #expect((g16[k] == 1) == Self.compare(op, a, b), "setp.\(op).f16 \(a) \(b)")
            }
        }
    }

    @Test func integerComparisonsSignedAndUnsigned() throws {
        let ops: [(String, (Int64, Int64) -> Bool, (UInt64, UInt64) -> Bool)] = [
            ("eq", { $0 == $1 }, { $0 == $1 }), ("ne", { $0 != $1 }, { $0 != $1 }), ("lt", { $0 < $1 }, { $0 < $1 }),
            ("le", { $0 <= $1 }, { $0 <= $1 }), ("gt", { $0 > $1 }, { $0 > $1 }), ("ge", { $0 >= $1 }, { $0 >= $1 }),
            ("lo", { UInt64(bitPattern: $0) < UInt64(bitPattern: $1) }, { $0 < $1 }),
            ("ls", { UInt64(bitPattern: $0) <= UInt64(bitPattern: $1) }, { $0 <= $1 }),
            ("hi", { UInt64(bitPattern: $0) > UInt64(bitPattern: $1) }, { $0 > $1 }),
            ("hs", { UInt64(bitPattern: $0) >= UInt64(bitPattern: $1) }, { $0 >= $1 }),
        ]
        for bits in [16, 32, 64] {
            let cls = RegisterClass(bits: bits)
            let values = [0, 1, 0x7F, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, ~0].map { low($0, bits) }
            let cases = pairs(Array(Set(values)).sorted())
            for (op, signed, unsigned) in ops {
                for s in [true, false] {
                    // lo/ls/hi/hs compare unsigned whatever the type says.
                    let type = (s ? "s" : "u") + "\(bits)"
                    let got = try evaluate("setp.\(op).\(type)", result: .p, operands: [cls, cls], cases: cases)
                    for (k, p) in cases.enumerated() {
                        let sa = Int64(bitPattern: p[0] << UInt64(64 - bits)) >> Int64(64 - bits)
                        let sb = Int64(bitPattern: p[1] << UInt64(64 - bits)) >> Int64(64 - bits)
                        let want = s ? signed(sa, sb) : unsigned(p[0], p[1])
                        #expect((got[k] == 1) == want, "setp.\(op).\(type) \(p)")
                    }
                }
            }
        }
    }

    @Test func combinedPredicatesSelpAndSlct() throws {
        let out = try runSingleThread(
            """
                mov.u32 %r1, 5;
                mov.u32 %r2, 7;
                setp.eq.u32 %p7, %r1, 5;
                setp.lt.and.u32 %p1|%p2, %r1, %r2, %p7;
                setp.lt.or.u32 %p3|%p4, %r2, %r1, !%p7;
                setp.lt.xor.u32 %p5|%p6, %r1, %r2, %p7;
                selp.u32 %r3, 1, 0, %p1;
                selp.u32 %r4, 2, 0, %p2;
                selp.u32 %r5, 4, 0, %p3;
                selp.u32 %r6, 8, 0, %p4;
                selp.u32 %r7, 16, 0, %p5;
                selp.u32 %r8, 32, 0, %p6;
                add.u32 %r3, %r3, %r4;
                add.u32 %r3, %r3, %r5;
                add.u32 %r3, %r3, %r6;
                add.u32 %r3, %r3, %r7;
                add.u32 %r3, %r3, %r8;
                st.global.u32 [%rd0], %r3;
                selp.f64 %fd1, 0d3FF0000000000000, 0d4000000000000000, %p1;
                selp.s16 %h1, -3, 4, %p2;
                selp.b64 %rd1, 0x1122334455667788, 0, %p1;
                st.global.f64 [%rd0+8], %fd1;
                st.global.s16 [%rd0+16], %h1;
                st.global.u64 [%rd0+24], %rd1;
                slct.s32.s32 %r9, 10, 20, 0;
                slct.s32.s32 %r10, 10, 20, -5;
                slct.f32.f32 %f1, 0f3F800000, 0f40000000, 0f80000000;
                slct.f32.f32 %f2, 0f3F800000, 0f40000000, 0fBF800000;
                slct.u64.s32 %rd2, 0xFFFFFFFFFF, 3, 2;
                mov.b64 %rd3, {%r9, %r10};
                st.global.u64 [%rd0+32], %rd3;
                mov.b64 %rd4, {%f1, %f2};
                st.global.u64 [%rd0+40], %rd4;
                st.global.u64 [%rd0+48], %rd2;
            """, slots: 7)
        // p7 = true: and → (true, false); or with !p7 → (false, true); xor → (false, true).
        #expect(out[0] & 0xFFFF_FFFF == 1 + 8 + 32)
        #expect(Double(bitPattern: out[1]) == 1)
        #expect(out[2] & 0xFFFF == 4)
        #expect(out[3] == 0x1122_3344_5566_7788)
        #expect(out[4] == 10 | 20 << 32)
        // -0.0 counts as >= 0.
        #expect(out[5] == UInt64(Float(1).bitPattern) | UInt64(Float(2).bitPattern) << 32)
        #expect(out[6] == 0xFF_FFFF_FFFF)
    }
}

@Suite("Packed comparisons")
struct PackedComparisonTests {
    @Test("setp on packed halves is refused at load, not computed as one value", arguments: ["f16x2", "bf16x2"])
    func packedSetpRefused(type: String) {
        let source = """
            .version 7.8
            .target sm_90
            .address_size 64
            .visible .entry k() {
                .reg .pred %p<3>;
                .reg .b32 %r<3>;
                mov.b32 %r1, 0;
                mov.b32 %r2, 0;
                setp.eq.\(type) %p1|%p2, %r1, %r2;
                ret;
            }
            """
        #expect(throws: PTXError.self) { _ = try PTXModule(source: source) }
    }
}
