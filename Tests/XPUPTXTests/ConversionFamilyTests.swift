import Testing
@testable import XPUPTX

/// `cvt` between integers and floats of every width, in every rounding mode, with and without
/// `.sat`, and the f16/bf16 conversions. Expected values come from Swift's own conversions
/// (`Float16`, `rounded(_:)`) and are compared bit for bit.
@Suite struct ConversionFamilyTests {
    static let floats: [Double] = [
        0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, -3.5, 3.7, -3.7, 127.5, 128, 255.5, 256, -129, 300, -300, 32767.5, 65535.5,
        2_147_483_647.5, 4e9, -3e9, 1e19, -1e19, 1e30, .infinity, -.infinity, .nan,
    ]

    /// `v` rounded as `mode` asks and saturated into a `bits`-bit integer (NaN gives 0).
    static func integer(_ v: Double, _ mode: FloatingPointRoundingRule, bits: Int, signed: Bool) -> UInt64 {
        if v.isNaN { return 0 }
        let r = v.rounded(mode)
        if signed {
            let lo = -Double(sign: .plus, exponent: bits - 1, significand: 1), hi = -lo
            if r <= lo { return low(UInt64(bitPattern: bits == 64 ? Int64.min : Int64(lo)), bits) }
            if r >= hi { return low(UInt64(bitPattern: bits == 64 ? Int64.max : Int64(hi) - 1), bits) }
            return low(UInt64(bitPattern: Int64(r)), bits)
        }
        if r <= 0 { return 0 }
        if r >= Double(sign: .plus, exponent: bits, significand: 1) { return low(~0, bits) }
        return UInt64(r)
    }

    @Test func floatToIntegerRoundsAndSaturates() throws {
        let modes: [(String, FloatingPointRoundingRule)] = [
            ("rni", .toNearestOrEven), ("rzi", .towardZero), ("rmi", .down), ("rpi", .up),
        ]
        let targets: [(String, Int, Bool, RegisterClass)] = [
            ("u8", 8, false, .h), ("s8", 8, true, .h), ("u16", 16, false, .h), ("s16", 16, true, .h),
            ("u32", 32, false, .r), ("s32", 32, true, .r), ("u64", 64, false, .rd), ("s64", 64, true, .rd),
        ]
        for (source, cls) in [("f32", RegisterClass.f), ("f64", .fd)] {
            let values = source == "f32" ? Self.floats.map { Double(Float($0)) } : Self.floats
            let cases = values.map { [source == "f32" ? UInt64(Float($0).bitPattern) : $0.bitPattern] }
            for (mode, rule) in modes {
                for (target, bits, signed, result) in targets {
                    let name = "cvt.\(mode).\(target).\(source)"
                    let got = try evaluate(name, result: result, operands: [cls], cases: cases)
                    for (k, v) in values.enumerated() {
                        // Only the type's own bits are defined for 8-bit results in wider registers.
                        #expect(low(got[k], bits) == Self.integer(v, rule, bits: bits, signed: signed), "\(name) \(v)")
                    }
                }
            }
        }
        // .sat is implied for float-to-integer; spelling it changes nothing.
        let sat = try evaluate("cvt.rzi.sat.u8.f32", result: .h, operands: [.f], cases: [[UInt64(Float(-5).bitPattern)], [UInt64(Float(999).bitPattern)]])
        #expect(sat.map { low($0, 8) } == [0, 255])
    }

    @Test func integerToIntegerExtendsTruncatesAndSaturates() throws {
        let samples = integerSamples
        let conversions: [(String, RegisterClass, RegisterClass, (UInt64) -> UInt64)] = [
            ("cvt.s32.s16", .r, .h, { low(UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: $0))), 32) }),
            ("cvt.u32.s16", .r, .h, { low(UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: $0))), 32) }),
            ("cvt.u32.u16", .r, .h, { low($0, 16) }),
            ("cvt.s64.s32", .rd, .r, { UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: $0))) }),
            ("cvt.u64.u32", .rd, .r, { low($0, 32) }),
            ("cvt.s16.s64", .h, .rd, { low($0, 16) }),
            ("cvt.u32.u64", .r, .rd, { low($0, 32) }),
            ("cvt.sat.s16.s32", .h, .r, { Int16(clamping: Int32(truncatingIfNeeded: $0)).pattern }),
            ("cvt.sat.u16.s32", .h, .r, { UInt16(clamping: Int32(truncatingIfNeeded: $0)).pattern }),
            ("cvt.sat.s16.u32", .h, .r, { Int16(clamping: UInt32(truncatingIfNeeded: $0)).pattern }),
            ("cvt.sat.u32.s64", .r, .rd, { UInt32(clamping: Int64(bitPattern: $0)).pattern }),
            ("cvt.sat.s32.u64", .r, .rd, { Int32(clamping: $0).pattern }),
            ("cvt.sat.u64.s64", .rd, .rd, { UInt64(clamping: Int64(bitPattern: $0)) }),
            ("cvt.sat.s64.u64", .rd, .rd, { Int64(clamping: $0).pattern }),
        ]
        for (name, result, source, f) in conversions {
            let got = try evaluate(name, result: result, operands: [source], cases: samples.map { [$0] })
            let sourceBits = source == .h ? 16 : source == .r ? 32 : 64
            for (k, v) in samples.enumerated() { #expect(got[k] == f(low(v, sourceBits)), "\(name) \(v)") }
        }
        // 8-bit saturation into 16-bit registers: only the low byte is defined.
        let s8 = try evaluate("cvt.sat.s8.s32", result: .h, operands: [.r], cases: samples.map { [$0] })
        let u8 = try evaluate("cvt.sat.u8.s32", result: .h, operands: [.r], cases: samples.map { [$0] })
        for (k, v) in samples.enumerated() {
            #expect(low(s8[k], 8) == Int8(clamping: Int32(truncatingIfNeeded: v)).pattern, "cvt.sat.s8.s32 \(v)")
            #expect(low(u8[k], 8) == UInt8(clamping: Int32(truncatingIfNeeded: v)).pattern, "cvt.sat.u8.s32 \(v)")
        }
    }

    @Test func integerToFloatRoundsOnce() throws {
        // 64-bit sources round once: 2^63 + 2^39 + 1 lies just above an f32 tie.
        let cases: [[UInt64]] = [[(1 << 63) | (1 << 39) | 1], [~0], [1 << 63 | 1]]
        let rn = try evaluate("cvt.rn.f32.u64", result: .f, operands: [.rd], cases: cases)
        let rz = try evaluate("cvt.rz.f32.u64", result: .f, operands: [.rd], cases: cases)
        let rp = try evaluate("cvt.rp.f32.u64", result: .f, operands: [.rd], cases: cases)
        #expect(Float(bitPattern: UInt32(rn[0])) == 0x1p63 + 0x1p40)
        #expect(Float(bitPattern: UInt32(rn[1])) == 0x1p64)
        #expect(Float(bitPattern: UInt32(rz[1])) == Float(0x1p64).nextDown)
        #expect(Float(bitPattern: UInt32(rz[2])) == 0x1p63)
        #expect(Float(bitPattern: UInt32(rp[2])) == Float(0x1p63).nextUp)
        let d = try evaluate("cvt.rz.f64.u64", result: .fd, operands: [.rd], cases: [[~0]])
        #expect(Double(bitPattern: d[0]) == Double(0x1p64).nextDown)
        let minus = UInt64(bitPattern: -(1 << 53) - 1)
        let rm = try evaluate("cvt.rm.f64.s64", result: .fd, operands: [.rd], cases: [[minus]])
        let rpd = try evaluate("cvt.rp.f64.s64", result: .fd, operands: [.rd], cases: [[minus]])
        let rnd = try evaluate("cvt.rn.f64.s64", result: .fd, operands: [.rd], cases: [[minus], [UInt64(bitPattern: Int64.min)]])
        #expect(Double(bitPattern: rm[0]) == -0x1p53 - 2)
        #expect(Double(bitPattern: rpd[0]) == -0x1p53)
        #expect(Double(bitPattern: rnd[0]) == -0x1p53 && Double(bitPattern: rnd[1]) == -0x1p63)
        // 32-bit and 16-bit sources.
        let small = try evaluate("cvt.rn.f32.s16", result: .f, operands: [.h], cases: [[0x8000], [0x7FFF]])
        #expect(small.map { Float(bitPattern: UInt32($0)) } == [-32768, 32767])
        let half = try evaluate("cvt.rn.f16.s32", result: .h, operands: [.r], cases: [[70000], [2049], [UInt64(UInt32(bitPattern: -3))]])
        let halfZ = try evaluate("cvt.rz.f16.s32", result: .h, operands: [.r], cases: [[70000], [2049]])
        #expect(half == [UInt64(Float16.infinity.bitPattern), UInt64(Float16(2048).bitPattern), UInt64(Float16(-3).bitPattern)])
        #expect(halfZ == [UInt64(Float16.greatestFiniteMagnitude.bitPattern), UInt64(Float16(2048).bitPattern)])
    }

    @Test func floatToFloatRoundsAndSaturates() throws {
        let values: [Double] = [1.0 / 3, -1.0 / 3, 1e-40, 3.5e38, -3.5e38, 1e-46, 2.5, -1.5, 0.75, .nan, .infinity]
        let cases = values.map { [$0.bitPattern] }
        let rules: [(String, FloatingPointRoundingRule)] = [("rn", .toNearestOrEven), ("rz", .towardZero), ("rm", .down), ("rp", .up)]
        for (mode, rule) in rules {
            let got = try evaluate("cvt.\(mode).f32.f64", result: .f, operands: [.fd], cases: cases)
            for (k, v) in values.enumerated() {
                let g = Float(bitPattern: UInt32(got[k]))
                if v.isNaN { #expect(g.isNaN); continue }
                // The two f32 neighbours of v; the mode picks one.
                var near = Float(v)
                if v.isFinite && near.isInfinite { near = near > 0 ? .greatestFiniteMagnitude : -.greatestFiniteMagnitude }
                let (below, above) = Double(near) > v ? (near.nextDown, near) : Double(near) < v ? (near, near.nextUp) : (near, near)
                let want: Float
                switch rule {
                case .towardZero: want = v > 0 ? below : above
                case .down: want = below
                case .up: want = above
                default: want = Float(v)
                }
                #expect(g.bitPattern == want.bitPattern, "cvt.\(mode).f32.f64 \(v)")
            }
        }
        // Integral rounding within a float type, widening, and .sat clamping to [0, 1].
        let f32 = [Float(2.5), -1.5, 0.5, -0.5, 2, .nan].map { [UInt64($0.bitPattern)] }
        let integral: [(String, [Float])] = [
            ("cvt.rni.f32.f32", [2, -2, 0, -0.0, 2]), ("cvt.rzi.f32.f32", [2, -1, 0, -0.0, 2]),
            ("cvt.rmi.f32.f32", [2, -2, 0, -1, 2]), ("cvt.rpi.f32.f32", [3, -1, 1, -0.0, 2]),
            ("cvt.sat.f32.f32", [1, 0, 0.5, 0, 1]),
        ]
        for (name, want) in integral {
            let got = try evaluate(name, result: .f, operands: [.f], cases: f32)
            for (k, w) in want.enumerated() { #expect(Float(bitPattern: UInt32(got[k])).bitPattern == w.bitPattern, "\(name) \(f32[k])") }
            #expect(Float(bitPattern: UInt32(got[5])).isNaN == (name != "cvt.sat.f32.f32"), "\(name) NaN")
        }
        let wide = try evaluate("cvt.f64.f32", result: .fd, operands: [.f], cases: f32)
        #expect(Double(bitPattern: wide[0]) == 2.5 && Double(bitPattern: wide[5]).isNaN)
        let rmi = try evaluate("cvt.rmi.f64.f64", result: .fd, operands: [.fd], cases: [[Double(-1.5).bitPattern]])
        #expect(Double(bitPattern: rmi[0]) == -2)
        let satD = try evaluate("cvt.rn.sat.f32.f64", result: .f, operands: [.fd], cases: [[Double(7).bitPattern], [Double(-7).bitPattern]])
        #expect(satD.map { Float(bitPattern: UInt32($0)) } == [1, 0])
    }

    @Test func halfAndBFloat16() throws {
        let values: [Float] = [0, -0.0, 1, -2.5, 0.1, 65504, 65520, 1e-7, 6e-8, 3.3e38, .infinity, .nan, 1.0 / 3]
        let f32 = values.map { [UInt64($0.bitPattern)] }
        let toHalf = try evaluate("cvt.rn.f16.f32", result: .h, operands: [.f], cases: f32)
        let toHalfSat = try evaluate("cvt.rn.sat.f16.f32", result: .h, operands: [.f], cases: f32)
        let toBF = try evaluate("cvt.rn.bf16.f32", result: .h, operands: [.f], cases: f32)
        let toBFz = try evaluate("cvt.rz.bf16.f32", result: .h, operands: [.f], cases: f32)
        for (k, v) in values.enumerated() {
            let h = Float16(v)
            if v.isNaN {
                #expect(Float16(bitPattern: UInt16(toHalf[k])).isNaN && toHalfSat[k] == 0)
                #expect(Float(bitPattern: UInt32(toBF[k]) << 16).isNaN)
                continue
            }
            #expect(toHalf[k] == UInt64(h.bitPattern), "cvt.rn.f16.f32 \(v)")
            #expect(toHalfSat[k] == UInt64(Float16(Swift.min(Swift.max(v, 0), 1)).bitPattern), "sat \(v)")
            // bf16 is the top half of the f32; rn rounds the dropped half to nearest even.
            let u = v.bitPattern, dropped = u & 0xFFFF, kept = u >> 16
            let rounded = dropped > 0x8000 || (dropped == 0x8000 && kept & 1 == 1) ? kept + 1 : kept
            #expect(toBF[k] == UInt64(rounded), "cvt.rn.bf16.f32 \(v)")
            #expect(toBFz[k] == UInt64(kept), "cvt.rz.bf16.f32 \(v)")
        }
        // Back to f32 and f64 exactly; to integers with rounding; from f64 rounded once.
        let halves: [Float16] = [1.5, -2.25, 65504, 0.000061, .infinity]
        let h = halves.map { [UInt64($0.bitPattern)] }
        let f = try evaluate("cvt.f32.f16", result: .f, operands: [.h], cases: h)
        let d = try evaluate("cvt.f64.f16", result: .fd, operands: [.h], cases: h)
        let i = try evaluate("cvt.rni.s32.f16", result: .r, operands: [.h], cases: h)
        for (k, v) in halves.enumerated() {
            #expect(Float(bitPattern: UInt32(f[k])) == Float(v))
            #expect(Double(bitPattern: d[k]) == Double(v))
        }
        #expect(i.map { Int32(truncatingIfNeeded: $0) } == [2, -2, 65504, 0, Int32.max])
        let fromDouble = [1.0 / 3, 1 + 0x1p-11 + 0x1p-40, 1e6]
        let hd = try evaluate("cvt.rn.f16.f64", result: .h, operands: [.fd], cases: fromDouble.map { [$0.bitPattern] })
        #expect(hd == fromDouble.map { UInt64(Float16($0).bitPattern) })
        let bf = try evaluate("cvt.f32.bf16", result: .f, operands: [.h], cases: [[0x3FC0], [0xC049], [0x7F80]])
        #expect(bf.map { Float(bitPattern: UInt32($0)) } == [1.5, Float(bitPattern: 0xC049_0000), .infinity])
        // Packed pairs: the first source goes to the upper half.
        let out = try runSingleThread(
            """
                mov.f32 %f1, 0f3FC00000;
                mov.f32 %f2, 0fC0100000;
                cvt.rn.f16x2.f32 %r1, %f1, %f2;
                cvt.rn.bf16x2.f32 %r2, %f1, %f2;
                mov.b32 {%h1, %h2}, %r1;
                cvt.f32.f16 %f3, %h2;
                mov.b64 %rd1, {%r1, %r2};
                st.global.u64 [%rd0], %rd1;
                st.global.f32 [%rd0+8], %f3;
            """, slots: 2)
        #expect(out[0] & 0xFFFF_FFFF == UInt64(Float16(1.5).bitPattern) << 16 | UInt64(Float16(-2.25).bitPattern))
        #expect(out[0] >> 32 == 0x3FC0_C010)
        #expect(Float(bitPattern: UInt32(truncatingIfNeeded: out[1])) == 1.5)
    }
}
