#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import XPUPTX

/// `rcp`, `sqrt`, `rsqrt`, `ex2`, `lg2`, `sin`, `cos` in their approx and full/IEEE forms.
///
/// Tolerances: the IEEE forms (`.rn`) must be correctly rounded (0 ulp). The approximate forms
/// are computed at full precision here; they are held to the bounds the PTX ISA documents for
/// hardware (rcp/sqrt/rsqrt.approx: 1 ulp as tested here; ex2/lg2.approx: 2 ulp; sin/cos.approx:
/// absolute error 2^-20.9 on [-π, π], tested at 1e-6 over [-100, 100]).
@Suite struct MathFamilyTests {
    static let positive: [Float] = [0.25, 0.5, 1, 2, 3, 10, 1e-3, 12345.678, 1e30, 1e-30, 0x1p-140]

    func f32(_ name: String, _ values: [Float]) throws -> [Float] {
        try evaluate(name, result: .f, operands: [.f], cases: values.map { [UInt64($0.bitPattern)] })
            .map { Float(bitPattern: UInt32(truncatingIfNeeded: $0)) }
    }

    func within(_ got: Float, _ want: Double, ulps: Float) -> Bool {
        let w = Float(want)
        if w.isNaN { return got.isNaN }
        if w.isInfinite || got.isInfinite { return got == w }
        return abs(got - w) <= ulps * w.ulp
    }

    @Test func reciprocalsAndRoots() throws {
        for name in ["rcp.rn.f32", "rcp.approx.f32", "rcp.approx.ftz.f32"] {
            let got = try f32(name, Self.positive + [-4, .infinity, 0])
            for (k, v) in (Self.positive + [-4, .infinity, 0]).enumerated() {
                let ulps: Float = name.contains("rn") ? 0 : 1
                #expect(within(got[k], 1 / Double(v), ulps: ulps), "\(name) \(v)")
            }
        }
        for name in ["sqrt.rn.f32", "sqrt.approx.f32"] {
            let got = try f32(name, Self.positive + [-1, 0])
            for (k, v) in (Self.positive + [-1, 0]).enumerated() {
                #expect(within(got[k], Double(v).squareRoot(), ulps: name.contains("rn") ? 0 : 1), "\(name) \(v)")
            }
        }
        let rsqrt = try f32("rsqrt.approx.f32", Self.positive)
        for (k, v) in Self.positive.enumerated() { #expect(within(rsqrt[k], 1 / Double(v).squareRoot(), ulps: 1), "rsqrt \(v)") }
        // f64: correctly rounded rcp/sqrt; rsqrt.approx.f64 within 1 ulp.
        let doubles: [Double] = [3, 0.1, 7e200, 2e-300]
        let cases = doubles.map { [$0.bitPattern] }
        let rcp = try evaluate("rcp.rn.f64", result: .fd, operands: [.fd], cases: cases)
        let sqrt = try evaluate("sqrt.rn.f64", result: .fd, operands: [.fd], cases: cases)
        let rsqrtD = try evaluate("rsqrt.approx.f64", result: .fd, operands: [.fd], cases: cases)
        let rcpApprox = try evaluate("rcp.approx.ftz.f64", result: .fd, operands: [.fd], cases: cases)
        for (k, v) in doubles.enumerated() {
            #expect(Double(bitPattern: rcp[k]) == 1 / v)
            #expect(Double(bitPattern: sqrt[k]) == v.squareRoot())
            let r = 1 / v.squareRoot()
            #expect(abs(Double(bitPattern: rsqrtD[k]) - r) <= r.ulp)
            #expect(abs(Double(bitPattern: rcpApprox[k]) - 1 / v) <= (1 / v).ulp * 0x1p30, "approx f64 rcp: about 23 bits")
        }
    }

    @Test func exponentialsAndLogarithms() throws {
        let exponents: [Float] = [0, 1, -1, 0.5, 10.25, -20, 127, -126, 128, -150, 3.3]
        let ex2 = try f32("ex2.approx.f32", exponents)
        let ex2ftz = try f32("ex2.approx.ftz.f32", exponents)
        for (k, v) in exponents.enumerated() {
            #expect(within(ex2[k], exp2(Double(v)), ulps: 2), "ex2 \(v)")
            #expect(within(ex2ftz[k], exp2(Double(v)), ulps: 2) || (exp2(Double(v)) < 0x1p-126 && ex2ftz[k] == 0), "ex2.ftz \(v)")
        }
        let lg2 = try f32("lg2.approx.f32", Self.positive + [0, -1, .infinity])
        for (k, v) in (Self.positive + [0, -1, .infinity]).enumerated() {
            let want = log2(Double(v))
            // Near 1 the bound is absolute (2^-22) rather than relative.
            #expect(within(lg2[k], want, ulps: 2) || abs(Double(lg2[k]) - want) < 0x1p-22, "lg2 \(v)")
        }
    }

    @Test func sineAndCosine() throws {
        let angles: [Float] = stride(from: -100, through: 100, by: 3.7).map { Float($0) } + [0, -0.0, .pi, -.pi / 2]
        let s = try f32("sin.approx.f32", angles)
        let c = try f32("cos.approx.ftz.f32", angles)
        for (k, a) in angles.enumerated() {
            #expect(abs(Double(s[k]) - sin(Double(a))) < 1e-6, "sin \(a)")
            #expect(abs(Double(c[k]) - cos(Double(a))) < 1e-6, "cos \(a)")
        }
        let nan = try f32("sin.approx.f32", [.infinity, .nan])
        #expect(nan.allSatisfy { $0.isNaN })
    }
}
