import Testing
@testable import XPUPTX

/// Integer and floating-point arithmetic, bitwise operations and shifts in every width, each
/// result compared with the same operation computed on the CPU (exactly for integers and for
/// correctly rounded float operations).
@Suite struct ArithmeticFamilyTests {
    /// The samples truncated to `T`, without repeats.
    static func samples<T: FixedWidthInteger>(_: T.Type) -> [T] {
        var seen = Set<UInt64>()
        return integerSamples.compactMap { v in
            let t = T(truncatingIfNeeded: v)
            return seen.insert(t.pattern).inserted ? t : nil
        }
    }

    /// `op.<T>` over every pair of samples (minus `skip`), against `expected`.
    func binary<T: FixedWidthInteger>(
        _ op: String, _: T.Type, suffix: String? = nil, skip: (T, T) -> Bool = { _, _ in false },
        _ expected: (T, T) -> T, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let c = RegisterClass(bits: T.bitWidth)
        let cases = pairs(Self.samples(T.self).map(\.pattern)).filter { !skip(T(truncatingIfNeeded: $0[0]), T(truncatingIfNeeded: $0[1])) }
        let name = "\(op).\(suffix ?? T.ptxSuffix)"
        let got = try evaluate(name, result: c, operands: [c, c], cases: cases, sourceLocation: sourceLocation)
        for (k, pair) in cases.enumerated() {
            let want = expected(T(truncatingIfNeeded: pair[0]), T(truncatingIfNeeded: pair[1])).pattern
            #expect(got[k] == want, "\(name) \(pair[0]), \(pair[1])", sourceLocation: sourceLocation)
        }
    }

    /// `op.<T>` with a third operand (mad): every pair of samples with a rotating addend.
    func ternary<T: FixedWidthInteger>(
        _ op: String, _: T.Type, _ expected: (T, T, T) -> T, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let c = RegisterClass(bits: T.bitWidth)
        let s = Self.samples(T.self).map(\.pattern)
        let cases = pairs(s).enumerated().map { k, p in p + [s[(k * 7) % s.count]] }
        let got = try evaluate("\(op).\(T.ptxSuffix)", result: c, operands: [c, c, c], cases: cases, sourceLocation: sourceLocation)
        for (k, t) in cases.enumerated() {
            let want = expected(T(truncatingIfNeeded: t[0]), T(truncatingIfNeeded: t[1]), T(truncatingIfNeeded: t[2])).pattern
            #expect(got[k] == want, "\(op).\(T.ptxSuffix) \(t)", sourceLocation: sourceLocation)
        }
    }

    /// `op.<suffix>` of one operand, with a result of class `result`.
    func unary<T: FixedWidthInteger>(
        _ op: String, _: T.Type, suffix: String? = nil, result: RegisterClass? = nil, _ expected: (T) -> UInt64,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let c = RegisterClass(bits: T.bitWidth)
        let s = Self.samples(T.self)
        let name = "\(op).\(suffix ?? T.ptxSuffix)"
        let got = try evaluate(name, result: result ?? c, operands: [c], cases: s.map { [$0.pattern] }, sourceLocation: sourceLocation)
        for (k, v) in s.enumerated() { #expect(got[k] == expected(v), "\(name) \(v)", sourceLocation: sourceLocation) }
    }

    func integerFamily<T: FixedWidthInteger>(_: T.Type) throws {
        try binary("add", T.self) { $0 &+ $1 }
        try binary("sub", T.self) { $0 &- $1 }
        try binary("mul.lo", T.self) { $0 &* $1 }
        try binary("mul.hi", T.self) { T(truncatingIfNeeded: $0.multipliedFullWidth(by: $1).high) }
        // Division by zero and the signed overflow are undefined in PTX.
        let divisionSkip: (T, T) -> Bool = { a, b in b == 0 || (T.isSigned && a == T.min && b == T(truncatingIfNeeded: -1)) }
        try binary("div", T.self, skip: divisionSkip) { $0 / $1 }
        try binary("rem", T.self, skip: divisionSkip) { $0 % $1 }
        try binary("min", T.self) { Swift.min($0, $1) }
        try binary("max", T.self) { Swift.max($0, $1) }
        try ternary("mad.lo", T.self) { $0 &* $1 &+ $2 }
        try ternary("mad.hi", T.self) { T(truncatingIfNeeded: $0.multipliedFullWidth(by: $1).high) &+ $2 }
        if T.isSigned {
            try unary("abs", T.self) { ($0 < 0 && $0 != T.min ? 0 &- $0 : $0).pattern }
            try unary("neg", T.self) { (0 &- $0).pattern }
        } else {
            let b = "b\(T.bitWidth)"
            try binary("and", T.self, suffix: b) { $0 & $1 }
            try binary("or", T.self, suffix: b) { $0 | $1 }
            try binary("xor", T.self, suffix: b) { $0 ^ $1 }
            try unary("not", T.self, suffix: b) { (~$0).pattern }
            try unary("cnot", T.self, suffix: b) { $0 == 0 ? 1 : 0 }
            try unary("popc", T.self, suffix: b, result: .r) { UInt64($0.nonzeroBitCount) }
            try unary("clz", T.self, suffix: b, result: .r) { UInt64($0.leadingZeroBitCount) }
        }
        // Shifts: the amount is a .u32 and amounts past the width clamp to the width.
        let c = RegisterClass(bits: T.bitWidth)
        let amounts: [UInt64] = [0, 1, 3, 15, 16, 31, 32, 33, 63, 64, 100, 0xFFFF_FFFF]
        let values = Self.samples(T.self)
        let cases = values.flatMap { v in amounts.map { [v.pattern, $0] } }
        let kinds = T.isSigned ? ["shr.\(T.ptxSuffix)"] : ["shl.b\(T.bitWidth)", "shr.b\(T.bitWidth)", "shr.\(T.ptxSuffix)"]
        for kind in kinds {
            let got = try evaluate(kind, result: c, operands: [c, .r], cases: cases)
            for (k, pair) in cases.enumerated() {
                let v = T(truncatingIfNeeded: pair[0])
                let amount = Swift.min(pair[1], UInt64(T.bitWidth))
                let want: T
                if kind.hasPrefix("shl") {
                    want = amount >= T.bitWidth ? 0 : v << amount
                } else {
                    // `>>` on a signed Swift integer is arithmetic and saturates at the width.
                    want = v >> amount
                }
                #expect(got[k] == want.pattern, "\(kind) \(pair)")
            }
        }
    }

    @Test func integersOfEveryWidth() throws {
        try integerFamily(Int16.self)
        try integerFamily(UInt16.self)
        try integerFamily(Int32.self)
        try integerFamily(UInt32.self)
        try integerFamily(Int64.self)
        try integerFamily(UInt64.self)
    }

    func wide<T: FixedWidthInteger, W: FixedWidthInteger>(_: T.Type, _: W.Type) throws {
        let c = RegisterClass(bits: T.bitWidth), w = RegisterClass(bits: W.bitWidth)
        let s = Self.samples(T.self).map(\.pattern)
        let cases = pairs(s)
        let mul = try evaluate("mul.wide.\(T.ptxSuffix)", result: w, operands: [c, c], cases: cases)
        let addends = cases.indices.map { k in Self.samples(W.self)[k % Self.samples(W.self).count].pattern }
        let mad = try evaluate("mad.wide.\(T.ptxSuffix)", result: w, operands: [c, c, w], cases: zip(cases, addends).map { $0 + [$1] })
        for (k, p) in cases.enumerated() {
            let product = W(T(truncatingIfNeeded: p[0])) &* W(T(truncatingIfNeeded: p[1]))
            #expect(mul[k] == product.pattern, "mul.wide.\(T.ptxSuffix) \(p)")
            #expect(mad[k] == (product &+ W(truncatingIfNeeded: addends[k])).pattern, "mad.wide.\(T.ptxSuffix) \(p)")
        }
    }

    @Test func wideningMultiplies() throws {
        try wide(Int16.self, Int32.self)
        try wide(UInt16.self, UInt32.self)
        try wide(Int32.self, Int64.self)
        try wide(UInt32.self, UInt64.self)
    }

    @Test func twentyFourBitAndSaturatingForms() throws {
        let s = Self.samples(UInt32.self).map(\.pattern) + [0x00FF_FFFF, 0x0080_0000, 0x0012_3456]
        let cases = pairs(s)
        func sext24(_ v: UInt64) -> Int64 { Int64(bitPattern: v << 40) >> 40 }
        for signed in [true, false] {
            let t = signed ? "s32" : "u32"
            let lo = try evaluate("mul24.lo.\(t)", result: .r, operands: [.r, .r], cases: cases)
            let hi = try evaluate("mul24.hi.\(t)", result: .r, operands: [.r, .r], cases: cases)
            let mad = try evaluate("mad24.lo.\(t)", result: .r, operands: [.r, .r, .r], cases: cases.map { $0 + [0x1000_0001] })
            for (k, p) in cases.enumerated() {
                let product = signed ? UInt64(bitPattern: sext24(p[0]) &* sext24(p[1])) : (p[0] & 0xFF_FFFF) * (p[1] & 0xFF_FFFF)
                #expect(lo[k] == low(product, 32), "mul24.lo.\(t) \(p)")
                #expect(hi[k] == low(product >> 16, 32), "mul24.hi.\(t) \(p)")
                #expect(mad[k] == low(product &+ 0x1000_0001, 32), "mad24.lo.\(t) \(p)")
            }
        }
        let add = try evaluate("add.sat.s32", result: .r, operands: [.r, .r], cases: cases)
        let sub = try evaluate("sub.sat.s32", result: .r, operands: [.r, .r], cases: cases)
        for (k, p) in cases.enumerated() {
            let a = Int64(Int32(truncatingIfNeeded: p[0])), b = Int64(Int32(truncatingIfNeeded: p[1]))
            let clamp = { (v: Int64) in Int32(Swift.min(Swift.max(v, Int64(Int32.min)), Int64(Int32.max))).pattern }
            #expect(add[k] == clamp(a + b), "add.sat \(p)")
            #expect(sub[k] == clamp(a - b), "sub.sat \(p)")
        }
        // sad: |a - b| + c.
        let sad = try evaluate("sad.s32", result: .r, operands: [.r, .r, .r], cases: cases.map { $0 + [5] })
        let usad = try evaluate("sad.u32", result: .r, operands: [.r, .r, .r], cases: cases.map { $0 + [5] })
        for (k, p) in cases.enumerated() {
            let a = Int64(Int32(truncatingIfNeeded: p[0])), b = Int64(Int32(truncatingIfNeeded: p[1]))
            #expect(sad[k] == low(UInt64(Swift.abs(a - b)) &+ 5, 32), "sad.s32 \(p)")
            let ua = p[0] & 0xFFFF_FFFF, ub = p[1] & 0xFFFF_FFFF
            #expect(usad[k] == low((ua > ub ? ua - ub : ub - ua) &+ 5, 32), "sad.u32 \(p)")
        }
    }

    @Test func bitReverseAndImmediates() throws {
        let s = Self.samples(UInt64.self).map(\.pattern)
        let b32 = try evaluate("brev.b32", result: .r, operands: [.r], cases: s.map { [$0] })
        let b64 = try evaluate("brev.b64", result: .rd, operands: [.rd], cases: s.map { [$0] })
        for (k, v) in s.enumerated() {
            var r32: UInt32 = 0, r64: UInt64 = 0
            for i in 0..<32 where v & (1 << UInt64(i)) != 0 { r32 |= 1 << UInt32(31 - i) }
            for i in 0..<64 where v & (1 << UInt64(i)) != 0 { r64 |= 1 << UInt64(63 - i) }
            #expect(b32[k] == UInt64(r32))
            #expect(b64[k] == r64)
        }
        // Negative immediates take the instruction's width; predicates combine with and/or/xor/not.
        let out = try runSingleThread(
            """
                mov.b16 %h1, 3;
                add.s16 %h2, %h1, -5;
                cvt.u64.u16 %rd1, %h2;
                st.global.u64 [%rd0], %rd1;
                mov.u32 %r1, -7;
                shr.s32 %r2, %r1, 1;
                shr.u32 %r3, %r1, 1;
                mov.b64 %rd2, {%r2, %r3};
                st.global.u64 [%rd0+8], %rd2;
                setp.eq.u32 %p1, %r1, 0;
                setp.ne.u32 %p2, %r1, 0;
                and.pred %p3, %p1, %p2;
                or.pred %p4, %p1, %p2;
                xor.pred %p5, %p2, %p2;
                not.pred %p6, %p1;
                selp.u32 %r4, 1, 0, %p3;
                selp.u32 %r5, 2, 0, %p4;
                selp.u32 %r6, 4, 0, %p5;
                selp.u32 %r7, 8, 0, %p6;
                or.b32 %r8, %r4, %r5;
                or.b32 %r8, %r8, %r6;
                or.b32 %r8, %r8, %r7;
                cvt.u64.u32 %rd3, %r8;
                st.global.u64 [%rd0+16], %rd3;
                mul.wide.s32 %rd4, %r1, -3;
                st.global.u64 [%rd0+24], %rd4;
            """, slots: 4)
        #expect(out[0] == 0xFFFE)
        #expect(out[1] == UInt64(UInt32(bitPattern: -4)) | UInt64(0x7FFF_FFFC) << 32)
        #expect(out[2] == 0b1010)
        #expect(out[3] == 21)
    }

    // MARK: Floating point

    static let f32Samples: [Float] = [
        0, -0.0, 1, -1, 1.5, 3, -2.75, 0.1, 1e30, -1e30, 3.4e38, 0x1p-133, -0x1p-149, .infinity, -.infinity, .nan, 16_777_216,
    ]
    static let f64Samples: [Double] = [0, -0.0, 1, -1, 1.5, 3, -2.75, 0.1, 1e300, -1e300, 0x1p-1074, .infinity, -.infinity, .nan, 9e15 + 1]

    /// min/max order -0 below +0 and return the other operand when one is NaN.
    static func fmin<F: BinaryFloatingPoint>(_ a: F, _ b: F) -> F {
        if a.isNaN { return b }
        if b.isNaN { return a }
        if a == 0 && b == 0 { return a.sign == .minus ? a : b }
        return Swift.min(a, b)
    }
    static func fmax<F: BinaryFloatingPoint>(_ a: F, _ b: F) -> F {
        if a.isNaN { return b }
        if b.isNaN { return a }
        if a == 0 && b == 0 { return a.sign == .minus ? b : a }
        return Swift.max(a, b)
    }

    func sameFloat(_ got: UInt64, _ want: Float) -> Bool {
        let g = Float(bitPattern: UInt32(truncatingIfNeeded: got))
        return want.isNaN ? g.isNaN : g.bitPattern == want.bitPattern
    }
    func sameDouble(_ got: UInt64, _ want: Double) -> Bool {
        let g = Double(bitPattern: got)
        return want.isNaN ? g.isNaN : g.bitPattern == want.bitPattern
    }

    @Test func singlePrecisionIsCorrectlyRounded() throws {
        let values = Self.f32Samples.map { UInt64($0.bitPattern) }
        let cases = pairs(values)
        let ops: [(String, (Float, Float) -> Float)] = [
            ("add.f32", { $0 + $1 }), ("add.rn.f32", { $0 + $1 }), ("sub.f32", { $0 - $1 }), ("mul.rn.f32", { $0 * $1 }),
            ("div.rn.f32", { $0 / $1 }), ("div.full.f32", { $0 / $1 }), ("min.f32", Self.fmin), ("max.f32", Self.fmax),
        ]
        for (name, f) in ops {
            let got = try evaluate(name, result: .f, operands: [.f, .f], cases: cases)
            for (k, p) in cases.enumerated() {
                let a = Float(bitPattern: UInt32(p[0])), b = Float(bitPattern: UInt32(p[1]))
                #expect(sameFloat(got[k], f(a, b)), "\(name) \(a), \(b)")
            }
        }
        let triples = cases.enumerated().map { k, p in p + [values[k % values.count]] }
        for name in ["fma.rn.f32", "mad.rn.f32"] {
            let got = try evaluate(name, result: .f, operands: [.f, .f, .f], cases: triples)
            for (k, t) in triples.enumerated() {
                let a = Float(bitPattern: UInt32(t[0])), b = Float(bitPattern: UInt32(t[1])), c = Float(bitPattern: UInt32(t[2]))
                #expect(sameFloat(got[k], c.addingProduct(a, b)), "\(name) \(a), \(b), \(c)")
            }
        }
        let sat = try evaluate("add.sat.f32", result: .f, operands: [.f, .f], cases: cases)
        for (k, p) in cases.enumerated() {
            let v = Float(bitPattern: UInt32(p[0])) + Float(bitPattern: UInt32(p[1]))
            #expect(sameFloat(sat[k], v.isNaN ? 0 : Swift.min(Swift.max(v, 0), 1)), "add.sat.f32 \(p)")
        }
        let abs = try evaluate("abs.f32", result: .f, operands: [.f], cases: values.map { [$0] })
        let neg = try evaluate("neg.f32", result: .f, operands: [.f], cases: values.map { [$0] })
        for (k, v) in values.enumerated() {
            #expect(abs[k] == v & 0x7FFF_FFFF)
            #expect(neg[k] == v ^ 0x8000_0000)
        }
    }

    @Test func doublePrecisionIsCorrectlyRounded() throws {
        let values = Self.f64Samples.map(\.bitPattern)
        let cases = pairs(values)
        let ops: [(String, (Double, Double) -> Double)] = [
            ("add.f64", { $0 + $1 }), ("sub.rn.f64", { $0 - $1 }), ("mul.f64", { $0 * $1 }), ("div.rn.f64", { $0 / $1 }),
            ("min.f64", Self.fmin), ("max.f64", Self.fmax),
        ]
        for (name, f) in ops {
            let got = try evaluate(name, result: .fd, operands: [.fd, .fd], cases: cases)
            for (k, p) in cases.enumerated() {
                #expect(sameDouble(got[k], f(Double(bitPattern: p[0]), Double(bitPattern: p[1]))), "\(name) \(p)")
            }
        }
        let triples = cases.enumerated().map { k, p in p + [values[k % values.count]] }
        let fma = try evaluate("fma.rn.f64", result: .fd, operands: [.fd, .fd, .fd], cases: triples)
        for (k, t) in triples.enumerated() {
            let want = Double(bitPattern: t[2]).addingProduct(Double(bitPattern: t[0]), Double(bitPattern: t[1]))
            #expect(sameDouble(fma[k], want), "fma.rn.f64 \(t)")
        }
        let abs = try evaluate("abs.f64", result: .fd, operands: [.fd], cases: values.map { [$0] })
        let neg = try evaluate("neg.f64", result: .fd, operands: [.fd], cases: values.map { [$0] })
        for (k, v) in values.enumerated() {
            #expect(abs[k] == v & ~(1 << 63))
            #expect(neg[k] == v ^ (1 << 63))
        }
    }

    @Test func directedRoundingOfArithmetic() throws {
        // 1 + 2^-30 is not representable in f32: the modes pick the neighbours of 1.
        let one = UInt64(Float(1).bitPattern), tiny = UInt64(Float(0x1p-30).bitPattern)
        let minusOne = UInt64(Float(-1).bitPattern)
        let cases: [[UInt64]] = [[one, tiny], [minusOne, tiny]]
        let expectations: [(String, [Float])] = [
            ("add.rn.f32", [1, -1]), ("add.rz.f32", [1, Float(-1).nextUp]),
            ("add.rm.f32", [1, -1]), ("add.rp.f32", [Float(1).nextUp, Float(-1).nextUp]),
            ("sub.rm.f32", [Float(1).nextDown, Float(-1).nextDown]), ("sub.rp.f32", [1, -1]), ("sub.rz.f32", [Float(1).nextDown, -1]),
        ]
        for (name, want) in expectations {
            let got = try evaluate(name, result: .f, operands: [.f, .f], cases: cases)
            #expect(zip(got, want).allSatisfy { sameFloat($0, $1) }, "\(name): \(got.map { Float(bitPattern: UInt32($0)) })")
        }
        // 1/3, (1 + 2^-12)^2 (an exact tie) and (1 + 2^-12)^2 + 2^-30 in each directed mode.
        let three = UInt64(Float(3).bitPattern), x = UInt64(Float(1 + 0x1p-12).bitPattern)
        let third = Float(1.0 / 3.0)
        let (thirdDown, thirdUp) = Double(third) > 1.0 / 3.0 ? (third.nextDown, third) : (third, third.nextUp)
        let square = Float(1 + 0x1p-11)
        for mode in ["rz", "rm", "rp"] {
            let up = mode == "rp"
            let div = try evaluate("div.\(mode).f32", result: .f, operands: [.f, .f], cases: [[one, three]])
            #expect(sameFloat(div[0], up ? thirdUp : thirdDown), "div.\(mode).f32")
            let rcp = try evaluate("rcp.\(mode).f32", result: .f, operands: [.f], cases: [[three]])
            #expect(sameFloat(rcp[0], up ? thirdUp : thirdDown), "rcp.\(mode).f32")
            let mul = try evaluate("mul.\(mode).f32", result: .f, operands: [.f, .f], cases: [[x, x]])
            #expect(sameFloat(mul[0], up ? square.nextUp : square), "mul.\(mode).f32")
            let fma = try evaluate("fma.\(mode).f32", result: .f, operands: [.f, .f, .f], cases: [[x, x, tiny]])
            #expect(sameFloat(fma[0], up ? square.nextUp : square), "fma.\(mode).f32")
            let two = UInt64(Float(2).bitPattern)
            let sqrt = try evaluate("sqrt.\(mode).f32", result: .f, operands: [.f], cases: [[two]])
            let root = Float(2).squareRoot()
            let (rootDown, rootUp) = Double(root) > 2.0.squareRoot() ? (root.nextDown, root) : (root, root.nextUp)
            #expect(sameFloat(sqrt[0], up ? rootUp : rootDown), "sqrt.\(mode).f32")
        }
        // Overflow: rz and rm stop at the largest finite value.
        let big = UInt64(Float.greatestFiniteMagnitude.bitPattern)
        let over = try evaluate("add.rz.f32", result: .f, operands: [.f, .f], cases: [[big, big]])
        #expect(sameFloat(over[0], .greatestFiniteMagnitude))
        // f64: 1 + 2^-60 rounds to 1 except upward.
        let d1 = Double(1).bitPattern, dt = Double(0x1p-60).bitPattern
        let rp = try evaluate("add.rp.f64", result: .fd, operands: [.fd, .fd], cases: [[d1, dt]])
        let rz = try evaluate("add.rz.f64", result: .fd, operands: [.fd, .fd], cases: [[d1, dt]])
        let mrm = try evaluate("fma.rm.f64", result: .fd, operands: [.fd, .fd, .fd], cases: [[d1, d1, Double(-0x1p-60).bitPattern]])
        #expect(Double(bitPattern: rp[0]) == Double(1).nextUp)
        #expect(Double(bitPattern: rz[0]) == 1)
        #expect(Double(bitPattern: mrm[0]) == Double(1).nextDown)
    }
}
