/// The two 8-bit float formats of PTX (`.e4m3` and `.e5m2`), as `cvt` converts to and from them.
///
/// E4M3: bias 7, three mantissa bits, no infinities, NaN is `S.1111.111`, largest finite 448.
/// E5M2: bias 15, two mantissa bits, IEEE-style infinities (`S.11111.00`) and NaNs, largest
/// finite 57344. `cvt` to FP8 rounds to nearest even and saturates (`.satfinite`): a value past
/// the largest finite, infinities included, becomes the largest finite; NaN stays NaN.
enum FP8 {
    enum Format {
        case e4m3, e5m2

        var mantissaBits: Int { self == .e4m3 ? 3 : 2 }
        var bias: Int { self == .e4m3 ? 7 : 15 }
        var largestFinite: Double { self == .e4m3 ? 448 : 57344 }
        var largestFiniteCode: UInt8 { self == .e4m3 ? 0x7E : 0x7B }
        var nanCode: UInt8 { 0x7F }
    }

    /// `v` rounded to nearest even, saturated to the largest finite value; with `relu`, negative
    /// values (and NaN) become +0 as `.relu` says.
    static func encode(_ v: Double, _ format: Format, relu: Bool) -> UInt8 {
        if v.isNaN { return relu ? 0 : format.nanCode }
        if relu && v < 0 { return 0 }
        let sign: UInt8 = v.sign == .minus ? 0x80 : 0
        let magnitude = Swift.abs(v)
        if magnitude > format.largestFinite { return sign | format.largestFiniteCode }
        let m = format.mantissaBits
        let smallestNormalExponent = 1 - format.bias
        // The spacing of representable values around `magnitude`: fixed below the normal range.
        let exponent = magnitude == 0 ? smallestNormalExponent : Swift.max(Int(magnitude.exponent), smallestNormalExponent)
        let quantum = Double(sign: .plus, exponent: exponent - m, significand: 1)
        let rounded = (magnitude / quantum).rounded(.toNearestOrEven) * quantum
        if rounded > format.largestFinite { return sign | format.largestFiniteCode }
        if rounded == 0 { return sign }
        let e = Int(rounded.exponent)
        if e < smallestNormalExponent {
            return sign | UInt8(rounded / Double(sign: .plus, exponent: smallestNormalExponent - m, significand: 1))
        }
        let fraction = Int(rounded / Double(sign: .plus, exponent: e - m, significand: 1)) - (1 << m)
        return sign | UInt8((e + format.bias) << m) | UInt8(fraction)
    }

    /// The value of an FP8 byte (exact in a double).
    static func decode(_ byte: UInt8, _ format: Format) -> Double {
        let m = format.mantissaBits
        let negative = byte & 0x80 != 0
        let exponentField = Int(byte & 0x7F) >> m
        let fraction = Int(byte) & ((1 << m) - 1)
        let maxField = (1 << (7 - m)) - 1
        var value: Double
        switch format {
        case .e4m3 where exponentField == maxField && fraction == (1 << m) - 1: return .nan
        case .e5m2 where exponentField == maxField: value = fraction == 0 ? .infinity : .nan
        default:
            if exponentField == 0 {
                value = Double(fraction) * Double(sign: .plus, exponent: 1 - format.bias - m, significand: 1)
            } else {
                value = Double((1 << m) + fraction) * Double(sign: .plus, exponent: exponentField - format.bias - m, significand: 1)
            }
        }
        return negative ? -value : value
    }
}
