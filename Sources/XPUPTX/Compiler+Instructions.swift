/// Lowering of single PTX instructions. An opcode or modifier this interpreter does not implement
/// fails the load here (naming the instruction and line), never at run time.
extension Compiler {
    struct Modifiers {
        var types: [ScalarType] = []
        var space: StateSpace?
        var vector = 1
        var compare: CompareOp?
        var rounding = Rounding.none
        var lo = false, hi = false, wide = false, sat = false
        /// `min.NaN`/`max.NaN`: a NaN operand gives NaN.
        var nan = false
        /// `fma.relu`: a negative result becomes +0.
        var relu = false
        var atomic: AtomicOp?
        var boolOp: UInt8 = 0
        var to = false
        var words: Set<Substring> = []
    }

    /// Modifiers that change nothing in a sequential interpreter: caching and memory-order hints,
    /// scopes, `.approx`/`.full`/`.ftz` accuracy variants (computed at full precision here).
    static let ignored: Set<Substring> = [
        "ftz", "approx", "full", "uni", "volatile", "relaxed", "acquire", "release", "acq_rel", "sc", "weak", "mmio",
        "gpu", "sys", "cta", "cluster", "nc", "ca", "cg", "cs", "lu", "cv", "wb", "wt", "aligned", "noftz",
        "sync", "unified", "clamp", "wrap", "noinc", "warp", "ballot", "all", "any", "up", "down",
        "bfly", "idx", "popc", "arrive", "red", "shiftamt", "gl", "f4e", "b4e", "rc8", "ecl", "ecr", "rc16",
    ]

    func modifiers(_ parts: ArraySlice<Substring>, opcode: String) throws(PTXError) -> Modifiers {
        var m = Modifiers()
        for p in parts {
            m.words.insert(p)
            if let t = ScalarType(suffix: p) { m.types.append(t); continue }
            if let s = StateSpace(suffix: p) { m.space = s; continue }
            switch p {
            case "v2": m.vector = 2
            case "v4": m.vector = 4
            case "lo": m.lo = true
            case "hi": m.hi = true
            case "wide": m.wide = true
            case "sat", "satfinite": m.sat = true
            case "NaN": m.nan = true
            case "relu": m.relu = true
            case "to": m.to = true
            case "rn": m.rounding = .rn
            case "rz": m.rounding = .rz
            case "rm": m.rounding = .rm
            case "rp": m.rounding = .rp
            case "rni": m.rounding = .rni
            case "rzi": m.rounding = .rzi
            case "rmi": m.rounding = .rmi
            case "rpi": m.rounding = .rpi
            case "eq": m.compare = .eq
            case "ne": m.compare = .ne
            case "lt": m.compare = .lt
            case "le": m.compare = .le
            case "gt": m.compare = .gt
            case "ge": m.compare = .ge
            case "lo_": m.compare = .lo
            case "ls": m.compare = .ls
            case "hs": m.compare = .hs
            case "equ": m.compare = .equ
            case "neu": m.compare = .neu
            case "ltu": m.compare = .ltu
            case "leu": m.compare = .leu
            case "gtu": m.compare = .gtu
            case "geu": m.compare = .geu
            case "num": m.compare = .num
            case "nan": m.compare = .nan
            case "add": m.atomic = .add
            case "min": m.atomic = .min
            case "max": m.atomic = .max
            case "exch": m.atomic = .exch
            case "cas": m.atomic = .cas
            case "inc": m.atomic = .inc
            case "dec": m.atomic = .dec
            case "and": m.atomic = .and; m.boolOp = 1
            case "or": m.atomic = .or; m.boolOp = 2
            case "xor": m.atomic = .xor; m.boolOp = 3
            default:
                if Compiler.ignored.contains(p) || p.contains("::") { continue }
                throw fail("unknown instruction '\(opcode)' (modifier .\(p))", .unknownInstruction)
            }
        }
        return m
    }

    mutating func emit(_ inst: Instruction, _ parsed: ParsedInstruction) throws(PTXError) {
        var inst = inst
        inst.line = Int32(parsed.line)
        if let g = parsed.guardRegister {
            inst.guardRegister = try register(g)
            inst.guardNegated = parsed.guardNegated
        }
        code.append(inst)
    }

    mutating func lower(_ parsed: ParsedInstruction) throws(PTXError) {
        let parts = parsed.opcode.split(separator: ".", omittingEmptySubsequences: false)
        let base = parts[0]
        if Compiler.isExtended(base, parts.dropFirst()) {
            try lowerExtended(parsed, base, parts.dropFirst())
            return
        }
        if base == "tensormap" || base == "wgmma" || base == "setmaxnreg" {
            // sm_90a-only families (tensor-map editing, warpgroup matrix operations, register
            // reallocation): the simulated device has no tensor memory accelerator to model.
            throw fail("'\(parsed.opcode)' (an sm_90a-only instruction) is not interpreted", .unsupported)
        }
        if base == "cvt", parts.contains(where: { $0.hasPrefix("e4m3") || $0.hasPrefix("e5m2") }) {
            try lowerFP8Convert(parsed, parts.dropFirst())
            return
        }
        let ops = parsed.operands
        // `.lo` is both a multiply half and a comparison; setp and set read it as a comparison.
        let compares = base == "setp" || base == "set"
        var m = try modifiers(parts.dropFirst().map { compares && $0 == "lo" ? "lo_" : $0 }[...], opcode: parsed.opcode)
        if compares, parts.contains("hi") { m.compare = .hi }
        let type = m.types.last ?? .b32

        func count(_ n: Int) throws(PTXError) {
            guard ops.count == n else {
                throw PTXError(code: .syntax, line: parsed.line, message: "'\(parsed.opcode)' takes \(n) operands, found \(ops.count)")
            }
        }
        func unknown() -> PTXError {
            PTXError(code: .unknownInstruction, line: parsed.line, message: "unknown instruction '\(parsed.opcode)'")
        }
        /// Modifiers that only some instructions may carry.
        func refuse(_ words: Substring...) throws(PTXError) {
            for w in words where m.words.contains(w) { throw unknown() }
        }
        if base != "bar" && base != "barrier" && base != "vote" && base != "shfl" { try refuse("popc", "red", "arrive", "ballot", "up", "down", "bfly", "idx") }
        if base != "vote" && base != "match" { try refuse("all", "any") }
        if base != "bfind" { try refuse("shiftamt") }
        if base != "prmt" { try refuse("f4e", "b4e", "rc8", "ecl", "ecr", "rc16") }

        var inst = Instruction(opcode: .nop, type: type)
        if m.sat { inst.flags = 1 }
        if m.nan {
            guard base == "min" || base == "max", type.isFloat else { throw unknown() }
            inst.flags |= 2
        }
        if m.relu {
            guard base == "fma", [.f16, .bf16, .f16x2, .bf16x2].contains(type) else { throw unknown() }
            inst.flags |= 8
        }
        inst.mode = m.rounding.rawValue

        switch base {
        case "mov":
            try count(2)
            if case .vector = ops[0] {
                let v = try vector(ops[0], type, destination: true)
                inst.opcode = .unpack
                inst.d = v.start
                inst.vectorWidth = UInt8(v.count)
                inst.a = try source(ops[1], type)
            } else if case .vector = ops[1] {
                let v = try vector(ops[1], type)
                inst.opcode = .pack
                inst.d = try destination(ops[0])
                inst.a = v.start
                inst.vectorWidth = UInt8(v.count)
            } else if case .register(let name) = ops[1], name == "%clock" || name == "%clock64" || name == "%globaltimer" {
                inst.opcode = .readClock
                inst.d = try destination(ops[0])
            } else {
                inst.opcode = .mov
                inst.d = try destination(ops[0])
                inst.a = try source(ops[1], type)
            }
        case "add", "sub", "mul", "mad", "fma", "div", "rem", "min", "max", "and", "or", "xor", "shl", "shr",
            "mul24", "mad24", "sad":
            let isMad = base == "mad" || base == "fma" || base == "mad24" || base == "sad"
            try count(isMad ? 4 : 3)
            if m.types.count != 1 { throw unknown() }
            if type.isFloat {
                switch base {
                case "add": inst.opcode = .fadd
                case "sub": inst.opcode = .fsub
                case "mul": inst.opcode = .fmul
                case "mad", "fma": inst.opcode = .ffma
                case "div": inst.opcode = .fdiv
                case "min": inst.opcode = .fmin
                case "max": inst.opcode = .fmax
                default: throw unknown()
                }
            } else {
                switch base {
                case "add": inst.opcode = .add
                case "sub": inst.opcode = .sub
                case "mul": inst.opcode = m.wide ? .mulWide : m.hi ? .mulHi : .mulLo
                case "mad": inst.opcode = m.wide ? .madWide : m.hi ? .madHi : .madLo
                case "mul24": inst.opcode = m.hi ? .mul24Hi : .mul24Lo
                case "mad24": if m.hi { throw unknown() }; inst.opcode = .mad24Lo
                case "sad": inst.opcode = .sad
                case "fma": throw unknown()
                case "div": inst.opcode = .div
                case "rem": inst.opcode = .rem
                case "min": inst.opcode = .min
                case "max": inst.opcode = .max
                case "and": inst.opcode = .and
                case "or": inst.opcode = .or
                case "xor": inst.opcode = .xor
                case "shl": inst.opcode = .shl
                case "shr": inst.opcode = .shr
                default: throw unknown()
                }
                if (base == "mul" || base == "mad") && !(m.wide || m.hi || m.lo) && type != .pred { throw unknown() }
            }
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], type)
            // Shift amounts are always .u32.
            inst.b = try source(ops[2], base == "shl" || base == "shr" ? .u32 : type)
            let wideType: ScalarType = inst.opcode == .madWide ? (type.isSigned ? .s64 : .u64) : type
            if isMad { inst.c = try source(ops[3], wideType) }
        case "abs", "neg", "not", "cnot", "popc", "clz", "brev", "bfind", "rcp", "sqrt", "rsqrt", "sin", "cos", "ex2",
            "lg2", "tanh":
            try count(2)
            if type.isFloat {
                switch base {
                case "abs": inst.opcode = .fabs
                case "neg": inst.opcode = .fneg
                case "rcp": inst.opcode = .frcp
                case "sqrt": inst.opcode = .fsqrt
                case "rsqrt": inst.opcode = .frsqrt
                case "sin": inst.opcode = .fsin
                case "cos": inst.opcode = .fcos
                case "ex2": inst.opcode = .fex2
                case "lg2": inst.opcode = .flg2
                case "tanh": inst.opcode = .ftanh
                default: throw unknown()
                }
            } else {
                switch base {
                case "abs": inst.opcode = .abs
                case "neg": inst.opcode = .neg
                case "not": inst.opcode = .not
                case "cnot": inst.opcode = .cnot
                case "popc": inst.opcode = .popc
                case "clz": inst.opcode = .clz
                case "brev": inst.opcode = .brev
                case "bfind":
                    inst.opcode = .bfind
                    inst.flags = m.words.contains("shiftamt") ? 1 : 0
                default: throw unknown()
                }
            }
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], type)
        case "bfe", "bfi":
            try count(base == "bfe" ? 4 : 5)
            inst.opcode = base == "bfe" ? .bfe : .bfi
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], type)
            if base == "bfe" {
                inst.b = try source(ops[2], .u32)
                inst.c = try source(ops[3], .u32)
            } else {
                inst.b = try source(ops[2], type)
                inst.c = try source(ops[3], .u32)
                inst.d2 = try source(ops[4], .u32)
            }
        case "prmt":
            // Only the default (generic byte select) mode.
            try count(4)
            guard type == .b32, m.types.count == 1, parts.count == 2 else { throw unknown() }
            inst.opcode = .prmt
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], .b32)
            inst.b = try source(ops[2], .b32)
            inst.c = try source(ops[3], .b32)
        case "setp":
            guard let cmp = m.compare, m.types.count == 1, ops.count == 3 || ops.count == 4 else { throw unknown() }
            // The packed forms compare two halves into two predicates; not implemented, so refused
            // at load rather than computed as one value.
            guard type != .f16x2, type != .bf16x2 else { throw unknown() }
            inst.opcode = .setp
            inst.mode = cmp.rawValue
            if case .pair(let p, let q) = ops[0] {
                inst.d = try register(p)
                inst.d2 = try register(q)
            } else {
                inst.d = try destination(ops[0])
            }
            inst.a = try source(ops[1], type)
            inst.b = try source(ops[2], type)
            if ops.count == 4 {
                guard m.boolOp != 0 else { throw unknown() }
                inst.flags = m.boolOp
                switch ops[3] {
                case .negated(let p): inst.c = try register(p); inst.flags |= 4
                default: inst.c = try source(ops[3], .pred)
                }
            }
        case "set":
            // set.cmp{.bool}.dtype.stype d, a, b{, {!}c}
            guard let cmp = m.compare, m.types.count == 2, ops.count == 3 || ops.count == 4 else { throw unknown() }
            guard [.u32, .s32, .f32, .f16, .bf16].contains(m.types[0]), m.types[1] != .f16x2, m.types[1] != .bf16x2
            else { throw unknown() }
            inst.opcode = .set
            inst.mode = cmp.rawValue
            inst.type = m.types[0]
            inst.sourceType = m.types[1]
            inst.flags = 0
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], m.types[1])
            inst.b = try source(ops[2], m.types[1])
            if ops.count == 4 {
                guard m.boolOp != 0 else { throw unknown() }
                inst.flags = m.boolOp
                switch ops[3] {
                case .negated(let p): inst.c = try register(p); inst.flags |= 4
                default: inst.c = try source(ops[3], .pred)
                }
            }
        case "copysign":
            try count(3)
            guard m.types.count == 1, type == .f32 || type == .f64 else { throw unknown() }
            inst.opcode = .fcopysign
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], type)
            inst.b = try source(ops[2], type)
        case "selp":
            try count(4)
            inst.opcode = .selp
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], type)
            inst.b = try source(ops[2], type)
            inst.c = try source(ops[3], .pred)
        case "slct":
            // slct.dtype.ctype d, a, b, c: d = c >= 0 ? a : b (ctype is .s32 or .f32).
            try count(4)
            guard m.types.count == 2, m.types[1] == .s32 || m.types[1] == .f32 else { throw unknown() }
            inst.opcode = .slct
            inst.type = m.types[0]
            inst.sourceType = m.types[1]
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], m.types[0])
            inst.b = try source(ops[2], m.types[0])
            inst.c = try source(ops[3], m.types[1])
        case "cvt":
            guard m.types.count == 2 else { throw unknown() }
            inst.opcode = .cvt
            inst.type = m.types[0]
            inst.sourceType = m.types[1]
            if inst.type == .f16x2 || inst.type == .bf16x2 {
                // cvt.rn.f16x2.f32 d, hi, lo: two conversions packed into one register.
                try count(3)
                guard inst.sourceType == .f32 else { throw unknown() }
                inst.d = try destination(ops[0])
                inst.a = try source(ops[1], .f32)
                inst.b = try source(ops[2], .f32)
            } else {
                try count(2)
                inst.d = try destination(ops[0])
                inst.a = try source(ops[1], m.types[1])
            }
        case "cvta":
            try count(2)
            guard let space = m.space else { throw unknown() }
            inst.opcode = m.to ? .cvtaFromGeneric : .cvtaToGeneric
            inst.space = space
            // Generic local addresses are absolute: they include the running call level.
            if space == .local { inst.c = frameShift }
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], type)
        case "ld", "ldu", "st":
            try count(2)
            guard m.types.count == 1 else { throw unknown() }
            inst.opcode = base == "st" ? .st : .ld
            inst.space = m.space ?? .generic
            inst.vectorWidth = UInt8(m.vector)
            let addressOperand = base == "st" ? ops[0] : ops[1]
            let valueOperand = base == "st" ? ops[1] : ops[0]
            let symbolSpace: StateSpace?
            (inst.a, inst.offset, symbolSpace) = try address(addressOperand)
            // Call arguments and results are `.param` variables that live in local memory.
            if inst.space == .param, symbolSpace == .local { inst.space = .local }
            if m.vector > 1 {
                let v = try vector(valueOperand, type, destination: base != "st")
                guard v.count == m.vector else { throw fail("vector operand has \(v.count) elements, expected \(m.vector)") }
                if base == "st" { inst.b = v.start } else { inst.d = v.start }
            } else if base == "st" {
                inst.b = try source(valueOperand, type)
            } else {
                inst.d = try destination(valueOperand)
            }
        case "atom", "red":
            guard let op = m.atomic, m.types.count == 1 else { throw unknown() }
            let isRed = base == "red"
            let expected = (isRed ? 2 : 3) + (op == .cas ? 1 : 0)
            try count(expected)
            inst.opcode = .atom
            inst.mode = op.rawValue
            inst.space = m.space ?? .generic
            var i = 0
            if !isRed { inst.d = try destination(ops[0]); i = 1 } else { inst.d = Special.sink.rawValue }
            (inst.a, inst.offset, _) = try address(ops[i])
            inst.b = try source(ops[i + 1], type)
            if op == .cas { inst.c = try source(ops[i + 2], type) }
        case "bra", "brx":
            guard base == "bra", ops.count == 1, case .symbol(let label, 0) = ops[0] else { throw unknown() }
            guard let target = labels[label] else { throw fail("unknown label '\(label)'", .unknownIdentifier) }
            inst.opcode = .bra
            inst.offset = Int64(target)
        case "ret":
            let link = frames[current]!.linkRegister
            inst.opcode = link < 0 ? .exit : .ret
            inst.a = link
        case "exit":
            inst.opcode = .exit
        case "bar", "barrier":
            try lowerBarrier(parsed, m, &inst)
        case "shfl", "vote", "activemask", "redux", "match":
            try lowerWarpCollective(parsed, m, &inst)
        case "membar", "fence", "nanosleep", "brkpt", "pmevent", "prefetch", "prefetchu":
            // Memory is sequentially consistent here: every store is visible at once.
            inst.opcode = .nop
        case "trap":
            inst.opcode = .trap
        case "call":
            try lowerCall(parsed)
            return
        default:
            throw unknown()
        }
        try emit(inst, parsed)
    }

    /// `bar.sync`/`barrier.sync`/`bar.arrive`/`bar.red`/`bar.warp.sync`.
    private mutating func lowerBarrier(_ parsed: ParsedInstruction, _ m: Modifiers, _ inst: inout Instruction) throws(PTXError) {
        let ops = parsed.operands
        let unknown = PTXError(code: .unknownInstruction, line: parsed.line, message: "unknown instruction '\(parsed.opcode)'")
        if m.words.contains("warp") {
            // __syncwarp: the lanes named in the mask meet.
            guard ops.count == 1 else { throw unknown }
            inst.opcode = .warpSync
            inst.a = try source(ops[0], .b32)
            return
        }
        if m.words.contains("arrive") {
            // A producer signals and goes on. Threads wait at `bar.sync` until every thread of the
            // block is waiting or has exited, so an arrival needs no bookkeeping to be safe.
            guard ops.count == 1 || ops.count == 2 else { throw unknown }
            inst.opcode = .nop
            return
        }
        inst.opcode = .barrier
        if m.words.contains("red") {
            // bar.red.popc.u32 d, id, {count,} {!}p  /  bar.red.and.pred d, id, {count,} {!}p
            guard ops.count == 3 || ops.count == 4 else { throw unknown }
            if m.words.contains("popc") {
                inst.mode = BarrierReduction.popc.rawValue
            } else if m.boolOp == 1 {
                inst.mode = BarrierReduction.and.rawValue
            } else if m.boolOp == 2 {
                inst.mode = BarrierReduction.or.rawValue
            } else {
                throw unknown
            }
            inst.flags = 0
            inst.d = try destination(ops[0])
            switch ops[ops.count - 1] {
            case .negated(let p): inst.a = try register(p); inst.flags = 1
            case let other: inst.a = try source(other, .pred)
            }
            return
        }
        guard ops.count <= 2 else { throw unknown }
    }

    /// `shfl.sync`, `vote(.sync)`, `activemask`, `redux.sync`, `match.any.sync`.
    private mutating func lowerWarpCollective(_ parsed: ParsedInstruction, _ m: Modifiers, _ inst: inout Instruction) throws(PTXError) {
        let ops = parsed.operands
        let parts = parsed.opcode.split(separator: ".")
        let unknown = PTXError(code: .unknownInstruction, line: parsed.line, message: "unknown instruction '\(parsed.opcode)'")
        switch parts[0] {
        case "shfl":
            // shfl.sync.mode.b32 d[|p], a, b, c, membermask (the pre-Volta form has no mask).
            let modes: [Substring: ShuffleMode] = ["up": .up, "down": .down, "bfly": .bfly, "idx": .idx]
            guard let mode = parts.lazy.compactMap({ modes[$0] }).first, m.types == [.b32], ops.count == 4 || ops.count == 5
            else { throw unknown }
            inst.opcode = .shfl
            inst.mode = mode.rawValue
            if case .pair(let d, let p) = ops[0] {
                inst.d = try register(d)
                inst.d2 = try register(p)
            } else {
                inst.d = try destination(ops[0])
            }
            inst.a = try source(ops[1], .b32)
            inst.b = try source(ops[2], .b32)
            inst.c = try source(ops[3], .b32)
        case "vote":
            // vote{.sync}.mode.pred d, {!}a{, membermask}; vote{.sync}.ballot.b32 d, {!}a{, membermask}.
            let modes: [Substring: VoteMode] = ["all": .all, "any": .any, "uni": .uni, "ballot": .ballot]
            guard let mode = parts.lazy.compactMap({ modes[$0] }).first, ops.count == 2 || ops.count == 3 else { throw unknown }
            guard (mode == .ballot) == (m.types == [.b32]) else { throw unknown }
            inst.opcode = .vote
            inst.mode = mode.rawValue
            inst.flags = 0
            inst.d = try destination(ops[0])
            switch ops[1] {
            case .negated(let p): inst.a = try register(p); inst.flags = 1
            case let other: inst.a = try source(other, .pred)
            }
        case "activemask":
            guard ops.count == 1, m.types == [.b32] else { throw unknown }
            inst.opcode = .activemask
            inst.d = try destination(ops[0])
        case "redux":
            // redux.sync.op.type d, a, membermask (add/min/max on u32/s32, and/or/xor on b32).
            guard let op = m.atomic, [.add, .min, .max, .and, .or, .xor].contains(op), m.types.count == 1,
                [.u32, .s32, .b32].contains(m.types[0]), ops.count == 3
            else { throw unknown }
            inst.opcode = .redux
            inst.mode = op.rawValue
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], m.types[0])
        default:
            // match.any.sync.b32/b64 d, a, membermask.
            guard parts.contains("any"), m.types.count == 1, m.types[0] == .b32 || m.types[0] == .b64, ops.count == 3
            else { throw unknown }
            inst.opcode = .matchAny
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], m.types[0])
        }
    }
}
