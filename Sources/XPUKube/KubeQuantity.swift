/// Kubernetes resource quantities (`4Gi`, `512Mi`, `30`, `1.5G`, `100m`, `1e3`) as whole numbers:
/// what a ResourceSlice's capacities and a claim's consumed capacity are written in. Pure.
public enum KubeQuantity {
    /// The quantity as a whole number, rounded up (`100m` is 1, as a byte count must be whole);
    /// nil for text that is not a quantity, a negative one or one beyond UInt64.
    public static func parse(_ text: String) -> UInt64? {
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        var rest = Substring(text)
        if rest.first == "+" { rest = rest.dropFirst() }
        let integer = rest.prefix { $0.isASCII && $0.isNumber }
        rest = rest.dropFirst(integer.count)
        var fraction = Substring("")
        if rest.first == "." {
            rest = rest.dropFirst()
            fraction = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(fraction.count)
        }
        guard !(integer.isEmpty && fraction.isEmpty) else { return nil }
        // The number is digits / 10^fraction.count, times the suffix's multiplier.
        let digits = String(integer) + String(fraction)
        var decimalExponent = -fraction.count
        var binaryShift = 0
        switch rest {
        case "": break
        case "Ki": binaryShift = 10
        case "Mi": binaryShift = 20
        case "Gi": binaryShift = 30
        case "Ti": binaryShift = 40
        case "Pi": binaryShift = 50
        case "Ei": binaryShift = 60
        case "n": decimalExponent -= 9
        case "u": decimalExponent -= 6
        case "m": decimalExponent -= 3
        case "k": decimalExponent += 3
        case "M": decimalExponent += 6
        case "G": decimalExponent += 9
        case "T": decimalExponent += 12
        case "P": decimalExponent += 15
        case "E": decimalExponent += 18
        default:
            guard let first = rest.first, first == "e" || first == "E", let exponent = Int(rest.dropFirst()),
                abs(exponent) <= 30
            else { return nil }
            decimalExponent += exponent
        }
        let significant = digits.drop { $0 == "0" }
        guard significant.count <= 38 else { return nil }
        var value = UInt128(significant) ?? 0
        guard value > 0 else { return 0 }
        let ten = UInt128(10)
        while decimalExponent > 0 {
            let (next, overflow) = value.multipliedReportingOverflow(by: ten)
            guard !overflow else { return nil }
            value = next
            decimalExponent -= 1
        }
        var divisor = UInt128(1)
        while decimalExponent < 0 {
            let (next, overflow) = divisor.multipliedReportingOverflow(by: ten)
            guard !overflow else { return nil }
            divisor = next
            decimalExponent += 1
        }
        let (shifted, overflow) = value.multipliedReportingOverflow(by: UInt128(1) << binaryShift)
        guard !overflow else { return nil }
        let rounded = (shifted + divisor - 1) / divisor
        return rounded <= UInt128(UInt64.max) ? UInt64(rounded) : nil
    }

    /// A byte count in the largest binary suffix that writes it exactly (`4Gi`, `1536Mi`, `1000`).
    public static func bytes(_ value: UInt64) -> String {
        for (suffix, shift) in [("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)]
        where value != 0 && value & ((1 << UInt64(shift)) - 1) == 0 {
            return "\(value >> UInt64(shift))\(suffix)"
        }
        return "\(value)"
    }
}
