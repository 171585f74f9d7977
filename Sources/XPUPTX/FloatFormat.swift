/// The 16- and 32-bit float formats of PTX registers, with the rounding modes of `cvt`.
///
/// Values are produced from a double, which holds every f32, f16 and bf16 value and every 32-bit
/// integer exactly, so each conversion rounds once, in the mode the instruction names.
enum FloatFormat {
    @inline(__always) static func decode(_ bits: UInt64, _ type: ScalarType) -> Float {
        switch type {
        case .f16: Float(Float16(bitPattern: UInt16(truncatingIfNeeded: bits)))
        case .bf16: Float(bitPattern: UInt32(truncatingIfNeeded: bits & 0xFFFF) << 16)
        default: Float(bitPattern: UInt32(truncatingIfNeeded: bits))
        }
    }

    /// `v` rounded to `type` (f32, f16 or bf16) with `rounding` (`.none` and `.rn`: nearest even).
    static func encode(_ v: Double, _ type: ScalarType, _ rounding: Rounding, sat: Bool) -> UInt64 {
        var v = v
        if sat { v = v.isNaN ? 0 : min(max(v, 0), 1) }
        switch type {
        case .f16:
            var h = Float16(v)
            if !v.isNaN {
                switch rounding {
                case .rz: if abs(Double(h)) > abs(v) { h = h > 0 ? h.nextDown : h.nextUp }
                case .rm: if Double(h) > v { h = h.nextDown }
                case .rp: if Double(h) < v { h = h.nextUp }
                default: break
                }
            }
            return UInt64(h.bitPattern)
        case .bf16:
            return UInt64(bfloat16(v, rounding))
        default:
            var f = Float(v)
            if !v.isNaN {
                switch rounding {
                case .rz: if abs(Double(f)) > abs(v) { f = f > 0 ? f.nextDown : f.nextUp }
                case .rm: if Double(f) > v { f = f.nextDown }
                case .rp: if Double(f) < v { f = f.nextUp }
                default: break
                }
            }
            return UInt64(f.bitPattern)
        }
    }

    /// bfloat16 is the top half of an f32: round the double to f32 toward zero (keeping whether
    /// anything was dropped as a sticky bit), then round the low 16 bits away in the asked mode.
    private static func bfloat16(_ v: Double, _ rounding: Rounding) -> UInt16 {
        if v.isNaN { return 0x7FC0 }
        var f = Float(v)
        if abs(Double(f)) > abs(v) { f = f > 0 ? f.nextDown : f.nextUp }
        if f.isInfinite { return UInt16(f.bitPattern >> 16) }
        let inexactBelow = Double(f) != v
        let u = f.bitPattern
        let kept = u >> 16
        let dropped = u & 0xFFFF
        let negative = u >> 31 != 0
        let exact = dropped == 0 && !inexactBelow
        var up: Bool
        switch rounding {
        case .rz: up = false
        case .rm: up = negative && !exact
        case .rp: up = !negative && !exact
        default:
            if dropped > 0x8000 || (dropped == 0x8000 && inexactBelow) {
                up = true
            } else if dropped == 0x8000 {
                up = kept & 1 != 0
            } else {
                up = false
            }
        }
        return UInt16(truncatingIfNeeded: up ? kept + 1 : kept)
    }
}
