#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// f32 and f64 arithmetic in the directed rounding modes (`.rz`, `.rm`, `.rp`) of `add`, `sub`,
/// `mul`, `div`, `fma`, `rcp` and `sqrt`.
///
/// Each operation is computed to nearest together with the sign of its error (exact − nearest),
/// found with error-free transformations (two-sum, fma residuals); the directed result is then the
/// nearest value or its neighbour on that side. f32 goes through double, where products are exact
/// and sums carry an exact error term. f64 `fma` sums its error terms in double, so a directed
/// f64 `fma` whose error terms cancel to within a double rounding may miss by one ulp; f64 products
/// deep in the subnormal range (error below 2^-1074) round as if exact.
enum DirectedRounding {
    static func isDirected(_ mode: UInt8) -> Bool {
        mode == Rounding.rz.rawValue || mode == Rounding.rm.rawValue || mode == Rounding.rp.rawValue
    }

    /// `nearest` moved to the neighbour `mode` asks for, given the sign of exact − nearest.
    static func step<F: BinaryFloatingPoint>(_ nearest: F, error: Int, _ mode: Rounding) -> F {
        if error == 0 || nearest.isNaN { return nearest }
        switch mode {
        case .rz: return error < 0 && nearest > 0 ? nearest.nextDown : error > 0 && nearest < 0 ? nearest.nextUp : nearest
        case .rm: return error < 0 ? nearest.nextDown : nearest
        case .rp: return error > 0 ? nearest.nextUp : nearest
        default: return nearest
        }
    }

    @inline(__always) static func sign(_ v: Double) -> Int { v > 0 ? 1 : v < 0 ? -1 : 0 }

    /// The exact error of `s = a + b` (two-sum; exact unless the sum overflows).
    @inline(__always) static func sumError(_ a: Double, _ b: Double, _ s: Double) -> Double {
        let bb = s - a
        return (a - (s - bb)) + (b - bb)
    }

    static func f32(_ opcode: Opcode, _ a: Float, _ b: Float, _ c: Float, _ mode: Rounding) -> Float {
        let da = Double(a), db = Double(b)
        var v: Double
        var error = 0
        switch opcode {
        case .fadd, .fsub:
            let addend = opcode == .fadd ? db : -db
            v = da + addend
            error = sign(sumError(da, addend, v))
        case .fmul:
            v = da * db  // exact
        case .fdiv, .frcp:
            let (n, d) = opcode == .frcp ? (1.0, da) : (da, db)
            v = n / d
            if v.isFinite { error = sign(fma(-v, d, n)) * sign(d) }
        case .fsqrt:
            v = da.squareRoot()
            if v.isFinite { error = sign(fma(-v, v, da)) }
        default:
            let p = da * db
            v = p + Double(c)
            error = sign(sumError(p, Double(c), v))
        }
        if !v.isFinite { return Float(v) }
        let f = Float(v)
        if Double(f) != v { error = sign(v - Double(f)) }
        return step(f, error: error, mode)
    }

    static func f64(_ opcode: Opcode, _ a: Double, _ b: Double, _ c: Double, _ mode: Rounding) -> Double {
        var v: Double
        var error = 0
        /// A finite computation that rounded to infinity overflowed: the exact value is below it.
        func overflow(_ finite: Bool) { if !v.isFinite, !v.isNaN, finite { error = -sign(v) } }
        switch opcode {
        case .fadd, .fsub:
            let addend = opcode == .fadd ? b : -b
            v = a + addend
            if v.isFinite { error = sign(sumError(a, addend, v)) } else { overflow(a.isFinite && b.isFinite) }
        case .fmul:
            v = a * b
            if v.isFinite { error = sign(fma(a, b, -v)) } else { overflow(a.isFinite && b.isFinite) }
        case .fdiv, .frcp:
            let (n, d) = opcode == .frcp ? (1.0, a) : (a, b)
            v = n / d
            if v.isFinite { error = sign(fma(-v, d, n)) * sign(d) } else { overflow(n.isFinite && d.isFinite && d != 0) }
        case .fsqrt:
            v = a.squareRoot()
            if v.isFinite { error = sign(fma(-v, v, a)) }
        default:
            v = fma(a, b, c)
            if v.isFinite {
                let product = a * b
                let productError = fma(a, b, -product)
                let u = product + c
                error = sign(((u - v) + sumError(product, c, u)) + productError)
            } else {
                overflow(a.isFinite && b.isFinite && c.isFinite)
            }
        }
        return step(v, error: error, mode)
    }
}

extension Machine {
    /// PTX `min`/`max` on floats: a NaN operand gives the other one (both NaN: NaN), and -0 is
    /// below +0. With `.NaN`, any NaN operand gives NaN.
    @inline(__always) static func minimum<F: BinaryFloatingPoint>(_ a: F, _ b: F, propagateNaN: Bool) -> F {
        if a.isNaN || b.isNaN { return propagateNaN || (a.isNaN && b.isNaN) ? .nan : a.isNaN ? b : a }
        if a == 0 && b == 0 { return a.sign == .minus ? a : b }
        return a < b ? a : b
    }

    @inline(__always) static func maximum<F: BinaryFloatingPoint>(_ a: F, _ b: F, propagateNaN: Bool) -> F {
        if a.isNaN || b.isNaN { return propagateNaN || (a.isNaN && b.isNaN) ? .nan : a.isNaN ? b : a }
        if a == 0 && b == 0 { return a.sign == .minus ? b : a }
        return a > b ? a : b
    }
}
