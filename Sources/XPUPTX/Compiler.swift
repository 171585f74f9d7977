/// Lowers one parsed function into executable `Instruction`s.
struct Compiler {
    /// Per-thread registers at fixed indices, filled in when a thread starts.
    enum Special: Int32, CaseIterable {
        case tidX, tidY, tidZ, ntidX, ntidY, ntidZ, ctaidX, ctaidY, ctaidZ, nctaidX, nctaidY, nctaidZ
        case laneid, warpid, nwarpid, smid, nsmid, gridid, dynamicSmemSize, totalSmemSize
        /// Destination for `_` sinks.
        case sink
    }

    static let specialNames: [String: Special] = [
        "%tid.x": .tidX, "%tid.y": .tidY, "%tid.z": .tidZ,
        "%ntid.x": .ntidX, "%ntid.y": .ntidY, "%ntid.z": .ntidZ,
        "%ctaid.x": .ctaidX, "%ctaid.y": .ctaidY, "%ctaid.z": .ctaidZ,
        "%nctaid.x": .nctaidX, "%nctaid.y": .nctaidY, "%nctaid.z": .nctaidZ,
        "%laneid": .laneid, "%warpid": .warpid, "%nwarpid": .nwarpid, "%smid": .smid, "%nsmid": .nsmid,
        "%gridid": .gridid, "%dynamic_smem_size": .dynamicSmemSize, "%total_smem_size": .totalSmemSize,
    ]

    let module: ParsedModule
    let function: ParsedFunction
    let variableIndex: [String: Int]

    private var registers: [String: Int32] = [:]
    private var initial: [UInt64] = []
    private var constants: [UInt64: Int32] = [:]
    private var relocations: [PTXKernel.Relocation] = []
    private var relocationRegisters: [String: Int32] = [:]
    private var labels: [String: Int] = [:]
    private var code: [Instruction] = []
    private var vectorOperands: [Int32] = []
    /// Addresses of parameters (param space), shared and local variables (offsets in their space).
    private var symbols: [String: (space: StateSpace, address: UInt64)] = [:]
    private var usesDynamicShared = false
    private var line = 0

    init(module: ParsedModule, function: ParsedFunction, variableIndex: [String: Int]) {
        self.module = module
        self.function = function
        self.variableIndex = variableIndex
    }

    private func fail(_ message: String, _ code: PTXError.Code = .syntax) -> PTXError {
        PTXError(code: code, line: line, message: message)
    }

    // MARK: Layout

    mutating func lower() throws(PTXError) -> PTXKernel {
        line = function.line
        initial = Array(repeating: 0, count: Special.allCases.count)
        for (name, _) in function.registers {
            guard registers[name] == nil else { throw fail("register '\(name)' declared twice", .duplicate) }
            registers[name] = Int32(initial.count)
            initial.append(0)
        }

        // Parameters, laid out with their alignment (the CUDA kernel-argument ABI).
        var parameters: [PTXParameter] = []
        var paramEnd = 0
        for p in function.parameters {
            let offset = (paramEnd + p.alignment - 1) / p.alignment * p.alignment
            parameters.append(PTXParameter(name: p.name, offset: offset, size: p.byteSize, alignment: p.alignment))
            symbols[p.name] = (.param, UInt64(offset))
            paramEnd = offset + p.byteSize
        }
        for p in function.returnParameters { symbols[p.name] = (.param, UInt64(paramEnd)); paramEnd += p.byteSize }

        // Shared memory: module-scope then function-scope variables; `extern` arrays start at the end (dynamic).
        var sharedEnd = 0
        var externShared: [String] = []
        var localEnd = 0
        for v in module.variables + function.variables {
            switch v.space {
            case .shared:
                if v.isExtern || v.count == 0 { externShared.append(v.name); continue }
                let offset = (sharedEnd + v.alignment - 1) / v.alignment * v.alignment
                symbols[v.name] = (.shared, UInt64(offset))
                sharedEnd = offset + v.byteSize
            case .local:
                let offset = (localEnd + v.alignment - 1) / v.alignment * v.alignment
                symbols[v.name] = (.local, UInt64(offset))
                localEnd = offset + v.byteSize
            case .param:
                symbols[v.name] = (.param, UInt64(paramEnd))
                paramEnd += v.byteSize
            default:
                if variableIndex[v.name] == nil, v.space == .global || v.space == .const {
                    throw PTXError(code: .unsupported, line: v.line, message: "function-scope \(v.space) variable '\(v.name)'")
                }
            }
        }
        let staticShared = (sharedEnd + 15) / 16 * 16
        for name in externShared { symbols[name] = (.shared, UInt64(staticShared)); usesDynamicShared = true }

        // Labels to instruction indices.
        var pc = 0
        for statement in function.body {
            switch statement {
            case .label(let name, let l):
                guard labels[name] == nil else { throw PTXError(code: .duplicate, line: l, message: "label '\(name)' defined twice") }
                labels[name] = pc
            case .instruction: pc += 1
            }
        }
        for statement in function.body {
            guard case .instruction(let inst) = statement else { continue }
            line = inst.line
            try lower(inst)
        }
        // Falling off the end of the body returns.
        var end = Instruction(opcode: .exit, type: .b32)
        end.line = Int32(line)
        code.append(end)

        return PTXKernel(
            name: function.name, parameters: parameters, parameterBufferSize: parameters.last.map { $0.offset + $0.size } ?? 0,
            staticSharedSize: sharedEnd, localSize: localEnd, declaredRegisters: function.registers.count,
            maxThreadsPerBlock: function.maxThreads.map { $0.0 * $0.1 * $0.2 } ?? 1024, line: function.line, code: code,
            vectorOperands: vectorOperands, initialRegisters: initial, relocations: relocations,
            usesDynamicShared: usesDynamicShared)
    }

    // MARK: Operands

    private mutating func constant(_ bits: UInt64) -> Int32 {
        if let r = constants[bits] { return r }
        let r = Int32(initial.count)
        initial.append(bits)
        constants[bits] = r
        return r
    }

    private func register(_ name: String) throws(PTXError) -> Int32 {
        if name == "_" { return Special.sink.rawValue }
        if let r = registers[name] { return r }
        if let s = Compiler.specialNames[name] { return s.rawValue }
        throw fail("unknown register '\(name)'", .unknownIdentifier)
    }

    /// A register that holds the address of a symbol (plus offset) in its own state space.
    private mutating func symbolRegister(_ name: String, offset: Int64) throws(PTXError) -> Int32 {
        if let s = symbols[name] { return constant(s.address &+ UInt64(bitPattern: offset)) }
        if let v = variableIndex[name] {
            let key = "\(name)+\(offset)"
            if let r = relocationRegisters[key] { return r }
            let r = Int32(initial.count)
            initial.append(0)
            relocations.append(PTXKernel.Relocation(register: r, variable: v, offset: offset))
            relocationRegisters[key] = r
            return r
        }
        if registers[name] != nil { return try register(name) }
        throw fail("unknown symbol '\(name)'", .unknownIdentifier)
    }

    private mutating func source(_ operand: Operand, _ type: ScalarType) throws(PTXError) -> Int32 {
        switch operand {
        case .register(let name):
            if name == "%clock" || name == "%clock64" { throw fail("%clock is only readable with mov", .unsupported) }
            return try register(name)
        case .immediate(let value): return constant(value.bits(as: type))
        case .symbol(let name, let offset): return try symbolRegister(name, offset: offset)
        default: throw fail("unexpected operand")
        }
    }

    private func destination(_ operand: Operand) throws(PTXError) -> Int32 {
        switch operand {
        case .register(let name), .symbol(let name, 0):
            let r = try register(name)
            guard r >= Special.allCases.count || r == Special.sink.rawValue else { throw fail("cannot write '\(name)'") }
            return r
        default: throw fail("expected a destination register")
        }
    }

    private mutating func address(_ operand: Operand) throws(PTXError) -> (base: Int32, offset: Int64) {
        guard case .address(let base, let offset) = operand else { throw fail("expected an address operand") }
        guard let base else { return (constant(0), offset) }
        if base.hasPrefix("%") { return (try register(base), offset) }
        return (try symbolRegister(base, offset: 0), offset)
    }

    private mutating func vector(_ operand: Operand, _ type: ScalarType) throws(PTXError) -> (start: Int32, count: Int) {
        guard case .vector(let names) = operand else {
            // A scalar immediate or register stored as a one-element vector.
            let r = try source(operand, type)
            let start = Int32(vectorOperands.count)
            vectorOperands.append(r)
            return (start, 1)
        }
        let start = Int32(vectorOperands.count)
        for n in names {
            if n == "_" { vectorOperands.append(Special.sink.rawValue); continue }
            vectorOperands.append(try register(n))
        }
        return (start, names.count)
    }

    // MARK: Instructions

    private struct Modifiers {
        var types: [ScalarType] = []
        var space: StateSpace?
        var vector = 1
        var compare: CompareOp?
        var rounding = Rounding.none
        var lo = false, hi = false, wide = false, sat = false
        var atomic: AtomicOp?
        var boolOp: UInt8 = 0
        var to = false
    }

    private static let ignored: Set<Substring> = [
        "ftz", "approx", "full", "uni", "volatile", "relaxed", "acquire", "release", "acq_rel", "sc", "weak", "mmio",
        "gpu", "sys", "cta", "cluster", "nc", "ca", "cg", "cs", "lu", "cv", "wb", "wt", "aligned", "noftz",
        "sync", "arrive", "red", "unified", "shiftamt", "clamp", "wrap", "noinc",
    ]

    private func modifiers(_ parts: ArraySlice<Substring>, opcode: String) throws(PTXError) -> Modifiers {
        var m = Modifiers()
        for p in parts {
            if let t = ScalarType(suffix: p) { m.types.append(t); continue }
            if let s = StateSpace(suffix: p) { m.space = s; continue }
            switch p {
            case "v2": m.vector = 2
            case "v4": m.vector = 4
            case "lo": m.lo = true
            case "hi": m.hi = true
            case "wide": m.wide = true
            case "sat": m.sat = true
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

    private mutating func emit(_ inst: Instruction, _ parsed: ParsedInstruction) throws(PTXError) {
        var inst = inst
        inst.line = Int32(parsed.line)
        if let g = parsed.guardRegister {
            inst.guardRegister = try register(g)
            inst.guardNegated = parsed.guardNegated
        }
        code.append(inst)
    }

    private mutating func lower(_ parsed: ParsedInstruction) throws(PTXError) {
        let parts = parsed.opcode.split(separator: ".", omittingEmptySubsequences: false)
        let base = parts[0]
        let ops = parsed.operands
        // `.lo` is both a multiply half and a comparison; setp reads it as a comparison.
        var m = try modifiers(parts.dropFirst().map { base == "setp" && $0 == "lo" ? "lo_" : $0 }[...], opcode: parsed.opcode)
        if base == "setp", parts.contains("hi") { m.compare = .hi }
        let type = m.types.last ?? .b32

        func count(_ n: Int) throws(PTXError) {
            guard ops.count == n else {
                throw PTXError(code: .syntax, line: parsed.line, message: "'\(parsed.opcode)' takes \(n) operands, found \(ops.count)")
            }
        }
        func unknown() -> PTXError {
            PTXError(code: .unknownInstruction, line: parsed.line, message: "unknown instruction '\(parsed.opcode)'")
        }

        var inst = Instruction(opcode: .nop, type: type)
        if m.sat { inst.flags = 1 }
        inst.mode = m.rounding.rawValue

        switch base {
        case "mov":
            try count(2)
            if case .vector = ops[0] {
                let v = try vector(ops[0], type)
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
            } else if case .register(let name) = ops[1], name == "%clock" || name == "%clock64" {
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
        case "abs", "neg", "not", "cnot", "popc", "clz", "brev", "rcp", "sqrt", "rsqrt", "sin", "cos", "ex2", "lg2", "tanh":
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
        case "setp":
            guard let cmp = m.compare, m.types.count == 1, ops.count == 3 || ops.count == 4 else { throw unknown() }
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
        case "selp":
            try count(4)
            inst.opcode = .selp
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], type)
            inst.b = try source(ops[2], type)
            inst.c = try source(ops[3], .pred)
        case "cvt":
            try count(2)
            guard m.types.count == 2 else { throw unknown() }
            inst.opcode = .cvt
            inst.type = m.types[0]
            inst.sourceType = m.types[1]
            inst.d = try destination(ops[0])
            inst.a = try source(ops[1], m.types[1])
        case "cvta":
            try count(2)
            guard let space = m.space else { throw unknown() }
            inst.opcode = m.to ? .cvtaFromGeneric : .cvtaToGeneric
            inst.space = space
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
            (inst.a, inst.offset) = try address(addressOperand)
            if m.vector > 1 {
                let v = try vector(valueOperand, type)
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
            (inst.a, inst.offset) = try address(ops[i])
            inst.b = try source(ops[i + 1], type)
            if op == .cas { inst.c = try source(ops[i + 2], type) }
        case "bra", "brx":
            guard base == "bra", ops.count == 1, case .symbol(let label, 0) = ops[0] else { throw unknown() }
            guard let target = labels[label] else { throw fail("unknown label '\(label)'", .unknownIdentifier) }
            inst.opcode = .bra
            inst.offset = Int64(target)
        case "ret", "exit":
            inst.opcode = .exit
        case "bar", "barrier":
            if parts.contains("warp") { inst.opcode = .nop; break }
            guard parts.count == 1 || parts.contains("sync") || parts.contains("aligned") else { throw unknown() }
            inst.opcode = .barrier
        case "membar", "fence", "nanosleep", "brkpt", "pmevent", "prefetch", "prefetchu":
            inst.opcode = .nop
        case "trap":
            inst.opcode = .trap
        case "call":
            throw fail("calls to .func are not supported yet ('\(parsed.opcode)')", .unsupported)
        default:
            throw unknown()
        }
        try emit(inst, parsed)
    }
}
