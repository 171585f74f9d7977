#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Device-side `printf` (`vprintf` in PTX): a format string and a buffer of arguments, laid out as
/// the compiler packs them: each argument at the next multiple of its own size, `int`-sized
/// conversions (`%d %i %u %x %X %o %c`, with `h`/`hh`) in 4 bytes, `l`/`ll`/`j`/`z`/`t`
/// conversions, `double` (floats are promoted) and pointers (`%s %p`) in 8. A `*` width or
/// precision takes an `int` argument. Each conversion is formatted by the C library's own
/// `vsnprintf`, so flags, widths and precisions behave exactly as in host C.
public enum DevicePrintf {
    /// The output of one call. `argument(offset, size)` reads `size` bytes of the argument buffer
    /// (nil: the read failed); `string(address)` reads the NUL-terminated device string at an
    /// address (nil: unreadable, printed as `(null)` when the address is 0, else as an error mark).
    public static func format(
        _ format: [UInt8], argument: (Int, Int) -> UInt64?, string: (UInt64) -> [UInt8]?
    ) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        /// The next argument of `size` bytes, aligned to its size.
        func next(_ size: Int) -> UInt64? {
            offset = (offset + size - 1) / size * size
            defer { offset += size }
            return argument(offset, size)
        }
        var i = 0
        while i < format.count {
            let c = format[i]
            guard c == UInt8(ascii: "%") else {
                out.append(c)
                i += 1
                continue
            }
            // One conversion specification: %[flags][width][.precision][length]conversion.
            let start = i
            i += 1
            var spec: [UInt8] = [UInt8(ascii: "%")]
            var starValues: [Int32] = []
            while i < format.count, "-+ #0".utf8.contains(format[i]) { spec.append(format[i]); i += 1 }
            func number() {
                if i < format.count, format[i] == UInt8(ascii: "*") {
                    spec.append(format[i])
                    i += 1
                    starValues.append(Int32(truncatingIfNeeded: next(4) ?? 0))
                    return
                }
                while i < format.count, format[i] >= UInt8(ascii: "0"), format[i] <= UInt8(ascii: "9") { spec.append(format[i]); i += 1 }
            }
            number()
            if i < format.count, format[i] == UInt8(ascii: ".") {
                spec.append(format[i])
                i += 1
                number()
            }
            var wide = false
            while i < format.count, "hlLqjzt".utf8.contains(format[i]) {
                let m = format[i]
                if m == UInt8(ascii: "l") || m == UInt8(ascii: "q") || m == UInt8(ascii: "j") || m == UInt8(ascii: "z")
                    || m == UInt8(ascii: "t")
                {
                    wide = true
                }
                spec.append(m)
                i += 1
            }
            guard i < format.count else {
                out += format[start...]
                break
            }
            let conversion = format[i]
            i += 1
            switch conversion {
            case UInt8(ascii: "%"):
                out.append(conversion)
            case UInt8(ascii: "d"), UInt8(ascii: "i"), UInt8(ascii: "u"), UInt8(ascii: "x"), UInt8(ascii: "X"),
                UInt8(ascii: "o"), UInt8(ascii: "c"):
                // 64-bit lengths go to vsnprintf as `ll`; `h`/`hh` stay (they narrow the int).
                let core = spec.filter { !"lLqjzt".utf8.contains($0) }
                let value = next(wide ? 8 : 4) ?? 0
                if wide {
                    out += render(core + Array("ll".utf8) + [conversion], starValues, Int64(bitPattern: value))
                } else {
                    out += render(core + [conversion], starValues, Int32(truncatingIfNeeded: value))
                }
            case UInt8(ascii: "f"), UInt8(ascii: "F"), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "g"),
                UInt8(ascii: "G"), UInt8(ascii: "a"), UInt8(ascii: "A"):
                let core = spec.filter { !"hlLqjzt".utf8.contains($0) }
                out += render(core + [conversion], starValues, Double(bitPattern: next(8) ?? 0))
            case UInt8(ascii: "p"):
                // An integer in the pointer's argument slot (the same 8 bytes on x86-64 and arm64).
                out += render(spec + [conversion], starValues, Int(bitPattern: UInt(next(8) ?? 0)))
            case UInt8(ascii: "s"):
                let address = next(8) ?? 0
                let text = address == 0 ? Array("(null)".utf8) : (string(address) ?? Array("<invalid string>".utf8))
                let core = spec.filter { !"hlLqjzt".utf8.contains($0) }
                out += (text + [0]).withUnsafeBufferPointer { buffer in
                    render(core + [conversion], starValues, buffer.baseAddress!)
                }
            default:
                // Not a conversion CUDA's printf knows: printed as written, consuming nothing.
                out += format[start..<i]
            }
        }
        return out
    }

    /// The most one conversion prints: a width such as `%99999999d` is cut here rather than
    /// formatted into a buffer that large (a whole record larger than the FIFO is dropped anyway).
    public static let maximumConversionBytes = 1 << 20

    /// vsnprintf of one conversion specification with its `*` values and its argument.
    private static func render(_ spec: [UInt8], _ stars: [Int32], _ value: some CVarArg) -> [UInt8] {
        let arguments: [any CVarArg] = stars.map { $0 as any CVarArg } + [value]
        let cSpec = spec + [0]
        return cSpec.withUnsafeBufferPointer { specPointer in
            specPointer.withMemoryRebound(to: CChar.self) { spec in
                withVaList(arguments) { list in
                    var buffer = [CChar](repeating: 0, count: 128)
                    let needed = Int(vsnprintf(&buffer, buffer.count, spec.baseAddress!, list))
                    guard needed >= 0 else { return [] }
                    let kept = min(needed, maximumConversionBytes)
                    if kept >= buffer.count {
                        buffer = [CChar](repeating: 0, count: kept + 1)
                        // A va_list is used up by one call: format again from a fresh one.
                        _ = withVaList(arguments) { vsnprintf(&buffer, buffer.count, spec.baseAddress!, $0) }
                    }
                    return buffer[..<kept].map { UInt8(bitPattern: $0) }
                }
            }
        }
    }
}
