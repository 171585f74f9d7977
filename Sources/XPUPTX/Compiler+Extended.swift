/// Lowering of the extended-precision and byte-level integer instructions that compilers emit for
/// multi-word arithmetic, rotates and packed dot products: `add.cc`/`addc`, `sub.cc`/`subc`,
/// `mad.lo.cc`/`madc.lo/hi`, `shf.l/r`, `dp4a` and `dp2a.lo/hi`.
extension Compiler {
    /// Whether `lower` hands the instruction to `lowerExtended`.
    static func isExtended(_ base: Substring, _ modifiers: ArraySlice<Substring>) -> Bool {
        switch base {
        case "addc", "subc", "madc", "shf", "dp4a", "dp2a": true
        case "add", "sub", "mad": modifiers.contains("cc")
        default: false
        }
    }

    mutating func lowerExtended(_ parsed: ParsedInstruction, _ base: Substring, _ modifiers: ArraySlice<Substring>) throws(PTXError) {
        let ops = parsed.operands
        func unknown() -> PTXError {
            PTXError(code: .unknownInstruction, line: parsed.line, message: "unknown instruction '\(parsed.opcode)'")
        }
        func count(_ n: Int) throws(PTXError) {
            guard ops.count == n else {
                throw PTXError(code: .syntax, line: parsed.line, message: "'\(parsed.opcode)' takes \(n) operands, found \(ops.count)")
            }
        }
        var words = Array(modifiers)
        /// Removes `word` from the modifiers; whether it was there.
        func take(_ word: Substring) -> Bool {
            guard let i = words.firstIndex(of: word) else { return false }
            words.remove(at: i)
            return true
        }
        var inst = Instruction(opcode: .nop, type: .b32)
        switch base {
        case "add", "sub", "mad", "addc", "subc", "madc":
            let carryIn = base.hasSuffix("c")
            let carryOut = take("cc")
            let hi = take("hi")
            let lo = take("lo")
            let isMad = base.hasPrefix("mad")
            // mad needs exactly one half; add and sub take none.
            guard isMad ? hi != lo : !(hi || lo), words.count == 1, let type = ScalarType(suffix: words[0]),
                [.u32, .s32, .u64, .s64].contains(type), carryIn || carryOut
            else { throw unknown() }
            try count(isMad ? 4 : 3)
            inst.type = type
            inst.opcode = isMad ? .madCarry : base.hasPrefix("add") ? .addCarry : .subCarry
            inst.flags = (carryIn ? 1 : 0) | (carryOut ? 2 : 0) | (hi ? 4 : 0)
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], type)
            inst.b = try source(ops[2], type)
            if isMad { inst.c = try source(ops[3], type) }
        case "shf":
            let left = take("l")
            let right = take("r")
            let clamp = take("clamp")
            let wrap = take("wrap")
            guard left != right, clamp != wrap, words == ["b32"] else { throw unknown() }
            try count(4)
            inst.opcode = .funnelShift
            inst.flags = (right ? 1 : 0) | (clamp ? 2 : 0)
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], .b32)
            inst.b = try source(ops[2], .b32)
            inst.c = try source(ops[3], .u32)
        case "dp4a", "dp2a":
            let pairs = base == "dp2a"
            let hi = pairs && take("hi")
            let lo = pairs && take("lo")
            guard !pairs || hi != lo, words.count == 2, let a = ScalarType(suffix: words[0]), let b = ScalarType(suffix: words[1]),
                [.u32, .s32].contains(a), [.u32, .s32].contains(b)
            else { throw unknown() }
            try count(4)
            inst.opcode = .dotProduct
            inst.type = a == .u32 && b == .u32 ? .u32 : .s32
            inst.flags = (a == .s32 ? 1 : 0) | (b == .s32 ? 2 : 0) | (pairs ? 4 : 0) | (hi ? 8 : 0)
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], a)
            inst.b = try source(ops[2], b)
            inst.c = try source(ops[3], inst.type)
        default:
            throw unknown()
        }
        try emit(inst, parsed)
    }

    /// `cvt` to and from pairs of FP8 values:
    /// `cvt.rn.satfinite{.relu}.e4m3x2/e5m2x2.f32 d, a, b` (`a` to the upper byte),
    /// `cvt.rn.satfinite{.relu}.e4m3x2/e5m2x2.f16x2/bf16x2 d, a` and
    /// `cvt.rn{.relu}.f16x2/bf16x2.e4m3x2/e5m2x2 d, a`.
    mutating func lowerFP8Convert(_ parsed: ParsedInstruction, _ modifiers: ArraySlice<Substring>) throws(PTXError) {
        let ops = parsed.operands
        let unknown = PTXError(code: .unknownInstruction, line: parsed.line, message: "unknown instruction '\(parsed.opcode)'")
        var rn = false
        var satfinite = false
        var relu = false
        var types: [Substring] = []
        for word in modifiers {
            switch word {
            case "rn": rn = true
            case "satfinite": satfinite = true
            case "relu": relu = true
            default: types.append(word)
            }
        }
        let formats: [Substring: UInt8] = ["e4m3x2": 0, "e5m2x2": 1]
        guard rn, types.count == 2 else { throw unknown }
        var inst = Instruction(opcode: .nop, type: .b16)
        if let format = formats[types[0]] {
            // To FP8 the PTX ISA requires .satfinite.
            guard satfinite else { throw unknown }
            inst.opcode = .cvtToFP8x2
            inst.flags = format | (relu ? 2 : 0)
            inst.d = try destination(ops.first ?? .list([]))
            switch types[1] {
            case "f32":
                guard ops.count == 3 else { throw unknown }
                inst.sourceType = .f32
                inst.a = try source(ops[1], .f32)
                inst.b = try source(ops[2], .f32)
            case "f16x2", "bf16x2":
                guard ops.count == 2 else { throw unknown }
                inst.sourceType = types[1] == "f16x2" ? .f16x2 : .bf16x2
                inst.a = try source(ops[1], .b32)
            default: throw unknown
            }
        } else if let format = formats[types[1]], types[0] == "f16x2" || types[0] == "bf16x2" {
            guard ops.count == 2, !satfinite else { throw unknown }
            inst.opcode = .cvtFromFP8x2
            inst.type = types[0] == "f16x2" ? .f16x2 : .bf16x2
            inst.flags = format | (relu ? 2 : 0)
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], .b16)
        } else {
            throw unknown
        }
        try emit(inst, parsed)
    }
}
