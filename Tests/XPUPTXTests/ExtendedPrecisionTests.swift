import Testing
@testable import XPUPTX

/// Multi-word arithmetic through the carry flag, funnel shifts and byte dot products, each result
/// compared with the same computation done on the CPU in a wider type (UInt128 for 64-bit words)
/// or from the PTX ISA's definition written out element by element.
@Suite struct ExtendedPrecisionTests {
    static let words64: [UInt64] = [0, 1, 2, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x1_0000_0000, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFE, 0xFFFF_FFFF_FFFF_FFFF, 0x1234_5678_9ABC_DEF0]
    static let words32: [UInt32] = [0, 1, 3, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF, 0x9ABC_DEF0]

    static func hex<T: FixedWidthInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }

    /// 128-bit sums and differences as two 64-bit words chained through the carry flag, the final
    /// carry (borrow) read out with `addc`/`subc` of zeros.
    @Test func doubleWordAddAndSubtract() throws {
        var cases: [(UInt128, UInt128)] = []
        for a in Self.words64 { for b in Self.words64 { cases.append((UInt128(a) << 64 | UInt128(b), UInt128(b) << 64 | UInt128(~a))) } }
        var body = ""
        for (k, (a, b)) in cases.enumerated() {
            body += """
                mov.u64 %rd1, \(Self.hex(UInt64(truncatingIfNeeded: a)));
                mov.u64 %rd2, \(Self.hex(UInt64(truncatingIfNeeded: a >> 64)));
                mov.u64 %rd3, \(Self.hex(UInt64(truncatingIfNeeded: b)));
                mov.u64 %rd4, \(Self.hex(UInt64(truncatingIfNeeded: b >> 64)));
                add.cc.u64 %rd5, %rd1, %rd3;
                addc.cc.u64 %rd6, %rd2, %rd4;
                addc.u64 %rd7, 0, 0;
                st.global.u64 [%rd0+\(48 * k)], %rd5;
                st.global.u64 [%rd0+\(48 * k + 8)], %rd6;
                st.global.u64 [%rd0+\(48 * k + 16)], %rd7;
                sub.cc.u64 %rd5, %rd1, %rd3;
                subc.cc.u64 %rd6, %rd2, %rd4;
                subc.u64 %rd7, 0, 0;
                st.global.u64 [%rd0+\(48 * k + 24)], %rd5;
                st.global.u64 [%rd0+\(48 * k + 32)], %rd6;
                st.global.u64 [%rd0+\(48 * k + 40)], %rd7;

                """
        }
        let got = try runSingleThread(body, slots: 6 * cases.count)
        for (k, (a, b)) in cases.enumerated() {
            let (sum, carry) = a.addingReportingOverflow(b)
            let (difference, borrow) = a.subtractingReportingOverflow(b)
            let want: [UInt64] = [
                UInt64(truncatingIfNeeded: sum), UInt64(truncatingIfNeeded: sum >> 64), carry ? 1 : 0,
                UInt64(truncatingIfNeeded: difference), UInt64(truncatingIfNeeded: difference >> 64), borrow ? UInt64.max : 0,
            ]
            #expect(Array(got[(6 * k)..<(6 * k + 6)]) == want, "\(Self.hex(a)) ± \(Self.hex(b))")
        }
    }

    /// A 96-bit sum in three 32-bit words; the carry crosses the middle word.
    @Test func tripleWordAdd() throws {
        let values: [UInt128] = [0, 1, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000_0000_0001, 0x1234_5678_9ABC_DEF0_1357_9BDF]
        var body = ""
        var cases: [(UInt128, UInt128)] = []
        for a in values { for b in values { cases.append((a, b)) } }
        for (k, (a, b)) in cases.enumerated() {
            func word(_ v: UInt128, _ i: Int) -> String { Self.hex(UInt32(truncatingIfNeeded: v >> (32 * i))) }
            body += """
                add.cc.u32 %r1, \(word(a, 0)), \(word(b, 0));
                mov.u32 %r4, \(word(a, 1));
                addc.cc.u32 %r2, %r4, \(word(b, 1));
                mov.u32 %r5, \(word(a, 2));
                addc.cc.u32 %r3, %r5, \(word(b, 2));
                addc.u32 %r6, 0, 0;
                st.global.v4.u32 [%rd0+\(16 * k)], {%r1, %r2, %r3, %r6};

                """
        }
        let got = try runSingleThread(body, slots: 2 * cases.count)
        for (k, (a, b)) in cases.enumerated() {
            let sum = a + b
            let want = UInt128(got[2 * k]) | UInt128(got[2 * k + 1]) << 64
            #expect(want == sum & (UInt128(1) << 97 - 1), "\(Self.hex(a)) + \(Self.hex(b))")
        }
    }

    /// `mad.lo.cc`, `madc.lo` and `madc.hi` (unsigned and signed, 32 and 64 bits) with a carry set
    /// beforehand by `add.cc` of all ones and one; the carry out read with `addc`.
    @Test func multiplyAddWithCarry() throws {
        var body = ""
        var cases: [(UInt32, UInt32, UInt32, Bool)] = []
        for a in Self.words32 { for b in Self.words32 { cases.append((a, b, a ^ 0x5555_5555 &+ b, (a ^ b) & 1 == 1)) } }
        for (k, (a, b, c, carry)) in cases.enumerated() {
            let set = "add.cc.u32 %r9, \(carry ? "0xFFFFFFFF" : "0"), 1;"
            body += """
                mov.u32 %r1, \(Self.hex(a));
                mov.u32 %r2, \(Self.hex(b));
                mov.u32 %r3, \(Self.hex(c));
                \(set) mad.lo.cc.u32 %r4, %r1, %r2, %r3; addc.u32 %r5, 0, 0;
                \(set) madc.lo.cc.u32 %r6, %r1, %r2, %r3; addc.u32 %r7, 0, 0;
                \(set) madc.hi.cc.u32 %r8, %r1, %r2, %r3; addc.u32 %r10, 0, 0;
                \(set) madc.hi.s32 %r11, %r1, %r2, %r3;
                st.global.v4.u32 [%rd0+\(32 * k)], {%r4, %r5, %r6, %r7};
                st.global.v4.u32 [%rd0+\(32 * k + 16)], {%r8, %r10, %r11, %r11};

                """
        }
        let got = try runSingleThread(body, slots: 4 * cases.count)
        for (k, (a, b, c, carry)) in cases.enumerated() {
            let cin: UInt64 = carry ? 1 : 0
            let product = UInt64(a) * UInt64(b)
            let lo = (product & 0xFFFF_FFFF) + UInt64(c)
            let loCarry = lo + cin
            let hi = (product >> 32) + UInt64(c) + cin
            let signedHi = UInt32(truncatingIfNeeded: (Int64(Int32(bitPattern: a)) * Int64(Int32(bitPattern: b))) >> 32) &+ c &+ UInt32(cin)
            let want: [UInt64] = [
                (lo & 0xFFFF_FFFF) | (lo >> 32) << 32,
                (loCarry & 0xFFFF_FFFF) | (loCarry >> 32) << 32,
                (hi & 0xFFFF_FFFF) | (hi >> 32) << 32,
                UInt64(signedHi) | UInt64(signedHi) << 32,
            ]
            #expect(Array(got[(4 * k)..<(4 * k + 4)]) == want, "a \(Self.hex(a)) b \(Self.hex(b)) c \(Self.hex(c)) carry \(carry)")
        }

        var body64 = ""
        var cases64: [(UInt64, UInt64, UInt64)] = []
        for a in Self.words64 { for b in Self.words64 { cases64.append((a, b, ~a &+ b)) } }
        for (k, (a, b, c)) in cases64.enumerated() {
            body64 += """
                mov.u64 %rd1, \(Self.hex(a));
                mov.u64 %rd2, \(Self.hex(b));
                mov.u64 %rd3, \(Self.hex(c));
                mad.lo.cc.u64 %rd4, %rd1, %rd2, %rd3;
                madc.hi.cc.u64 %rd5, %rd1, %rd2, %rd3;
                addc.u64 %rd6, 0, 0;
                st.global.u64 [%rd0+\(24 * k)], %rd4;
                st.global.u64 [%rd0+\(24 * k + 8)], %rd5;
                st.global.u64 [%rd0+\(24 * k + 16)], %rd6;

                """
        }
        let got64 = try runSingleThread(body64, slots: 3 * cases64.count)
        for (k, (a, b, c)) in cases64.enumerated() {
            let product = UInt128(a) * UInt128(b)
            let lo = (product & UInt128(UInt64.max)) + UInt128(c)
            let hi = (product >> 64) + UInt128(c) + (lo >> 64)
            let want: [UInt64] = [UInt64(truncatingIfNeeded: lo), UInt64(truncatingIfNeeded: hi), UInt64(truncatingIfNeeded: hi >> 64)]
            #expect(Array(got64[(3 * k)..<(3 * k + 3)]) == want, "a \(Self.hex(a)) b \(Self.hex(b)) c \(Self.hex(c))")
        }
    }

    /// `shf.l`/`shf.r` in both modes, against the ISA's definition: the amount wraps modulo 32 or
    /// clamps to 32; left gives the high word of `{b, a} << n`, right the low word of `{b, a} >> n`.
    @Test func funnelShift() throws {
        let amounts: [UInt32] = [0, 1, 7, 31, 32, 33, 63, 0xFFFF_FFFF]
        var cases: [(UInt32, UInt32, UInt32)] = []
        for a in Self.words32 { for b in Self.words32.reversed() { for n in amounts { cases.append((a, b ^ 0x0F0F_0F0F, n)) } } }
        var body = ""
        for (k, (a, b, n)) in cases.enumerated() {
            body += """
                mov.u32 %r1, \(Self.hex(a)); mov.u32 %r2, \(Self.hex(b)); mov.u32 %r3, \(Self.hex(n));
                shf.l.wrap.b32 %r4, %r1, %r2, %r3;
                shf.l.clamp.b32 %r5, %r1, %r2, %r3;
                shf.r.wrap.b32 %r6, %r1, %r2, %r3;
                shf.r.clamp.b32 %r7, %r1, %r2, %r3;
                st.global.v4.u32 [%rd0+\(16 * k)], {%r4, %r5, %r6, %r7};

                """
        }
        let got = try runSingleThread(body, slots: 2 * cases.count)
        func left(_ a: UInt32, _ b: UInt32, _ n: UInt32) -> UInt32 { n == 0 ? b : n == 32 ? a : (b << n) | (a >> (32 - n)) }
        func right(_ a: UInt32, _ b: UInt32, _ n: UInt32) -> UInt32 { n == 0 ? a : n == 32 ? b : (a >> n) | (b << (32 - n)) }
        for (k, (a, b, n)) in cases.enumerated() {
            let wrap = n % 32
            let clamp = min(n, 32)
            let want: [UInt64] = [
                UInt64(left(a, b, wrap)) | UInt64(left(a, b, clamp)) << 32,
                UInt64(right(a, b, wrap)) | UInt64(right(a, b, clamp)) << 32,
            ]
            #expect(Array(got[(2 * k)..<(2 * k + 2)]) == want, "a \(Self.hex(a)) b \(Self.hex(b)) n \(n)")
        }
    }

    /// `dp4a` and `dp2a.lo/hi` in every signedness combination, against sums of products of the
    /// operands' bytes and halves taken apart on the CPU.
    @Test func dotProducts() throws {
        let operands: [(UInt32, UInt32, UInt32)] = [
            (0x0102_0304, 0x0506_0708, 10), (0xFF80_7F01, 0x80FF_017F, 0xFFFF_FFF0), (0xFFFF_FFFF, 0xFFFF_FFFF, 0x8000_0000),
            (0x1234_8765, 0xFEDC_0BA9, 7), (0, 0xFFFF_FFFF, 0xFFFF_FFFF),
        ]
        let types = ["u32.u32", "u32.s32", "s32.u32", "s32.s32"]
        var body = ""
        var k = 0
        for (a, b, c) in operands {
            for t in types {
                for op in ["dp4a", "dp2a.lo", "dp2a.hi"] {
                    body += "\(op).\(t) %r1, \(Self.hex(a)), \(Self.hex(b)), \(Self.hex(c)); cvt.u64.u32 %rd1, %r1; st.global.u64 [%rd0+\(8 * k)], %rd1;\n"
                    k += 1
                }
            }
        }
        let got = try runSingleThread(body, slots: k)
        k = 0
        for (a, b, c) in operands {
            let bytesA = (0..<4).map { UInt8(truncatingIfNeeded: a >> (8 * $0)) }
            let bytesB = (0..<4).map { UInt8(truncatingIfNeeded: b >> (8 * $0)) }
            let halvesA = (0..<2).map { UInt16(truncatingIfNeeded: a >> (16 * $0)) }
            for t in types {
                let signedA = t.hasPrefix("s")
                let signedB = t.hasSuffix("s32")
                func byteB(_ i: Int) -> Int64 { signedB ? Int64(Int8(bitPattern: bytesB[i])) : Int64(bytesB[i]) }
                func byteA(_ i: Int) -> Int64 { signedA ? Int64(Int8(bitPattern: bytesA[i])) : Int64(bytesA[i]) }
                func halfA(_ i: Int) -> Int64 { signedA ? Int64(Int16(bitPattern: halvesA[i])) : Int64(halvesA[i]) }
                let dp4 = (0..<4).reduce(Int64(c)) { $0 + byteA($1) * byteB($1) }
                let lo = Int64(c) + halfA(0) * byteB(0) + halfA(1) * byteB(1)
                let hi = Int64(c) + halfA(0) * byteB(2) + halfA(1) * byteB(3)
                for (op, want) in [("dp4a", dp4), ("dp2a.lo", lo), ("dp2a.hi", hi)] {
                    #expect(got[k] == UInt64(UInt32(truncatingIfNeeded: want)), "\(op).\(t) \(Self.hex(a)) \(Self.hex(b)) \(Self.hex(c))")
                    k += 1
                }
            }
        }
    }

    /// Forms the ISA does not define are refused at load, naming the instruction.
    @Test(arguments: [
        "add.cc.u16 %h1, %h2, %h3;", "add.cc.f32 %f1, %f2, %f3;", "addc.lo.u32 %r1, %r2, %r3;", "mad.cc.u32 %r1, %r2, %r3, %r4;",
        "madc.lo.hi.u32 %r1, %r2, %r3, %r4;", "shf.b32 %r1, %r2, %r3, %r4;", "shf.l.wrap.b64 %rd1, %rd2, %rd3, %r4;",
        "dp4a.u32 %r1, %r2, %r3, %r4;", "dp2a.u32.u32 %r1, %r2, %r3, %r4;",
    ])
    func refusedForms(_ line: String) throws {
        #expect(throws: PTXError.self) { _ = try runSingleThread(line, slots: 0) }
    }
}
