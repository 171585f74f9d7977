/// Lowers one `.entry` and every `.func` it calls into one executable `PTXKernel`.
///
/// Functions are laid out statically: each function gets its own registers in the kernel's register
/// file, its parameters and `.local` variables get fixed slots in per-thread local memory, and a
/// link register holds its return address. A call copies the arguments into the callee's slots,
/// jumps, and copies the results back.
///
/// Recursion: a call to a function that may already be running (the callee can reach the caller)
/// moves the thread to a fresh call level, a copy of the whole local-memory layout further into
/// the thread's local memory (`.local` addresses are relative to the running level; generic
/// addresses of local memory are absolute, so a pointer to a caller's local variable stays valid
/// in the callee), and saves the callee's registers in the new level's save area until the call
/// returns.
struct Compiler {
    /// Per-thread registers at fixed indices, filled in when a thread starts.
    enum Special: Int32, CaseIterable {
        case tidX, tidY, tidZ, ntidX, ntidY, ntidZ, ctaidX, ctaidY, ctaidZ, nctaidX, nctaidY, nctaidZ
        case laneid, warpid, nwarpid, smid, nsmid, gridid, dynamicSmemSize, totalSmemSize
        /// Destination for `_` sinks.
        case sink
        /// The condition-code carry flag (`CC.CF`) that `add.cc`/`addc`, `sub.cc`/`subc` and
        /// `mad.cc`/`madc` write and read; zero at thread start, never named by a program.
        case carry
    }

    static let specialNames: [String: Special] = [
        "%tid.x": .tidX, "%tid.y": .tidY, "%tid.z": .tidZ,
        "%ntid.x": .ntidX, "%ntid.y": .ntidY, "%ntid.z": .ntidZ,
        "%ctaid.x": .ctaidX, "%ctaid.y": .ctaidY, "%ctaid.z": .ctaidZ,
        "%nctaid.x": .nctaidX, "%nctaid.y": .nctaidY, "%nctaid.z": .nctaidZ,
        "%laneid": .laneid, "%warpid": .warpid, "%nwarpid": .nwarpid, "%smid": .smid, "%nsmid": .nsmid,
        "%gridid": .gridid, "%dynamic_smem_size": .dynamicSmemSize, "%total_smem_size": .totalSmemSize,
    ]

    /// Functions of the CUDA device runtime that PTX declares `.extern` and calls: `vprintf` (what
    /// `printf` in a kernel compiles to) and `__assertfail` (what a failed `assert` calls).
    static let providedFunctions: Set<String> = ["vprintf", "__assertfail"]

    /// Local memory a thread may use (the CUDA limit), so a huge `.local` array fails the load.
    static let maximumLocalBytes = 512 * 1024
    /// Kernel parameter bytes (the CUDA limit since 12.1).
    static let maximumParameterBytes = 32764
    /// The local memory of each thread of a kernel with recursive calls: as many call levels as
    /// fit (at least `minimumCallLevels`). A recursive call past the last level faults (an illegal
    /// address, as a stack overflow does on a GPU).
    static let callStackBytes = 64 * 1024
    static let minimumCallLevels = 16

    /// Where a function parameter lives: a slot in local memory (`.param`) or a register (`.reg`).
    enum Slot {
        case local(offset: UInt64, size: Int)
        case register(Int32)
    }

    /// The static layout of one function of the kernel.
    struct Frame {
        var function: ParsedFunction
        var registers: [String: Int32] = [:]
        var symbols: [String: (space: StateSpace, address: UInt64)] = [:]
        var parameters: [Slot] = []
        var returns: [Slot] = []
        /// Holds the return address; unused for the entry.
        var linkRegister: Int32 = -1
        /// Code index of the first instruction, once lowered.
        var start = -1
        /// The registers (link register included) that belong to this function alone: what a
        /// recursive call saves.
        var ownRegisters: Range<Int32> = 0..<0
    }

    let module: ParsedModule
    let entry: ParsedFunction
    let functions: [String: ParsedFunction]
    let variableIndex: [String: Int]

    // Kernel-wide state.
    var initial: [UInt64] = []
    var constants: [UInt64: Int32] = [:]
    var relocations: [PTXKernel.Relocation] = []
    var relocationRegisters: [String: Int32] = [:]
    var code: [Instruction] = []
    var vectorOperands: [Int32] = []
    var frames: [String: Frame] = [:]
    /// Call instructions whose target is patched once every function is laid out.
    var callSites: [(index: Int, callee: String)] = []
    /// The functions with a body that each function calls.
    var callGraph: [String: Set<String>] = [:]
    /// Kernels with recursive calls: the register holding the running call level's offset in the
    /// thread's local memory, the size of a level (the local layout, then the register save
    /// area at `registerSaveOffset`); -1 and 0 otherwise.
    var frameShift: Int32 = -1
    var levelSize = 0
    var registerSaveOffset = 0
    var sharedEnd = 0
    var localEnd = 0
    var externShared: [String] = []
    var usesDynamicShared = false

    // The function being lowered.
    var current = ""
    var labels: [String: Int] = [:]
    var line = 0

    init(module: ParsedModule, entry: ParsedFunction, functions: [String: ParsedFunction], variableIndex: [String: Int]) {
        self.module = module
        self.entry = entry
        self.functions = functions
        self.variableIndex = variableIndex
    }

    func fail(_ message: String, _ code: PTXError.Code = .syntax) -> PTXError {
        PTXError(code: code, line: line, message: message)
    }

    // MARK: Layout

    mutating func lower() throws(PTXError) -> PTXKernel {
        line = entry.line
        initial = Array(repeating: 0, count: Special.allCases.count)
        let order = try callOrder()

        // Kernel parameters, laid out with their alignment (the CUDA kernel-argument ABI).
        var parameters: [PTXParameter] = []
        var paramEnd = 0
        var entryFrame = Frame(function: entry)
        for p in entry.parameters {
            let offset = (paramEnd + p.alignment - 1) / p.alignment * p.alignment
            parameters.append(PTXParameter(name: p.name, offset: offset, size: p.byteSize, alignment: p.alignment))
            entryFrame.symbols[p.name] = (.param, UInt64(offset))
            paramEnd = offset + p.byteSize
        }
        guard paramEnd <= Compiler.maximumParameterBytes else {
            throw fail("parameters of '\(entry.name)' take \(paramEnd) bytes; the limit is \(Compiler.maximumParameterBytes)", .unsupported)
        }
        // Module-scope shared variables come first; every function sees them at the same offsets.
        var moduleSymbols: [String: (space: StateSpace, address: UInt64)] = [:]
        for v in module.variables where v.space == .shared || v.space == .local {
            try place(v, into: &moduleSymbols)
        }
        entryFrame.symbols.merge(moduleSymbols) { a, _ in a }
        frames[entry.name] = try layout(entryFrame)
        for name in order where name != entry.name {
            var frame = Frame(function: functions[name]!)
            frame.symbols = moduleSymbols
            let firstRegister = Int32(initial.count)
            frame.linkRegister = newRegister()
            frame = try layout(frame)
            frame.ownRegisters = firstRegister..<Int32(initial.count)
            frames[name] = frame
        }
        // Call levels, when some call is recursive.
        var savedRegisters = 0
        for (caller, callees) in callGraph {
            for callee in callees where isRecursive(callee, calledFrom: caller) {
                savedRegisters = max(savedRegisters, frames[callee]!.ownRegisters.count)
            }
        }
        if savedRegisters > 0 {
            frameShift = newRegister()
            registerSaveOffset = (localEnd + 15) / 16 * 16
            levelSize = (registerSaveOffset + 8 * savedRegisters + 15) / 16 * 16
        }
        let staticShared = (sharedEnd + 15) / 16 * 16
        for name in externShared {
            for key in frames.keys where frames[key]!.symbols[name]?.space == .shared {
                frames[key]!.symbols[name] = (.shared, UInt64(staticShared))
            }
            usesDynamicShared = true
        }

        for name in order { try lowerBody(of: name) }
        for site in callSites {
            code[site.index].offset = Int64(frames[site.callee]!.start)
        }
        if frameShift >= 0 {
            localEnd = levelSize * max(Compiler.minimumCallLevels, Compiler.callStackBytes / levelSize)
        }
        return PTXKernel(
            name: entry.name, parameters: parameters, parameterBufferSize: parameters.last.map { $0.offset + $0.size } ?? 0,
            staticSharedSize: sharedEnd, localSize: localEnd, declaredRegisters: entry.registers.count,
            maxThreadsPerBlock: entry.maxThreads.map { $0.0 * $0.1 * $0.2 } ?? 1024, line: entry.line, code: code,
            vectorOperands: vectorOperands, initialRegisters: initial, relocations: relocations,
            usesDynamicShared: usesDynamicShared, frameShiftRegister: frameShift)
    }

    /// The entry and every function it reaches, callers before callees (records `callGraph`);
    /// refuses calls to functions without a body.
    private mutating func callOrder() throws(PTXError) -> [String] {
        var order: [String] = []
        var state: [String: Bool] = [:]  // false: on the current path, true: done
        var stack: [(name: String, callees: [(String, Int)], next: Int)] = [(entry.name, callees(of: entry), 0)]
        state[entry.name] = false
        order.append(entry.name)
        while !stack.isEmpty {
            let top = stack.count - 1
            if stack[top].next == stack[top].callees.count {
                state[stack[top].name] = true
                stack.removeLast()
                continue
            }
            let (callee, callLine) = stack[top].callees[stack[top].next]
            stack[top].next += 1
            if functions[callee]?.hasBody == true { callGraph[stack[top].name, default: []].insert(callee) }
            switch state[callee] {
            case .some: continue  // on the current path (recursion) or done: laid out once
            case .none:
                guard let f = functions[callee] else {
                    throw PTXError(code: .unknownIdentifier, line: callLine, message: "call to unknown function '\(callee)'")
                }
                guard f.hasBody else {
                    // Functions the device runtime provides are lowered to instructions of their own.
                    if Compiler.providedFunctions.contains(callee) { continue }
                    throw PTXError(code: .unsupported, line: callLine, message: "call to '\(callee)', which has no body")
                }
                state[callee] = false
                order.append(callee)
                stack.append((callee, callees(of: f), 0))
            }
        }
        return order
    }

    /// Whether `callee` may be running when `caller` calls it: whether it can reach `caller`.
    func isRecursive(_ callee: String, calledFrom caller: String) -> Bool {
        var seen: Set<String> = [callee]
        var pending = [callee]
        while let f = pending.popLast() {
            if f == caller { return true }
            for g in callGraph[f] ?? [] where seen.insert(g).inserted { pending.append(g) }
        }
        return false
    }

    private func callees(of f: ParsedFunction) -> [(String, Int)] {
        var result: [(String, Int)] = []
        for case .instruction(let inst) in f.body where inst.opcode == "call" || inst.opcode.hasPrefix("call.") {
            // The callee is the first operand that is a plain name: `call (ret), f, (args);`. An
            // indirect call (`call %rd, (args), prototype;`) has none: lowering refuses it.
            for op in inst.operands {
                if case .register = op { break }
                if case .symbol(let name, _) = op {
                    result.append((name, inst.line))
                    break
                }
            }
        }
        return result
    }

    mutating func newRegister() -> Int32 {
        initial.append(0)
        return Int32(initial.count - 1)
    }

    /// Gives a `.shared` or `.local` variable its offset in its space.
    private mutating func place(
        _ v: ParsedVariable, into symbols: inout [String: (space: StateSpace, address: UInt64)]
    ) throws(PTXError) {
        switch v.space {
        case .shared:
            if v.isExtern || v.count == 0 {
                externShared.append(v.name)
                symbols[v.name] = (.shared, 0)
                return
            }
            let offset = (sharedEnd + v.alignment - 1) / v.alignment * v.alignment
            symbols[v.name] = (.shared, UInt64(offset))
            sharedEnd = offset + v.byteSize
            guard sharedEnd <= 1 << 30 else { throw PTXError(code: .unsupported, line: v.line, message: "shared memory too large") }
        default:
            symbols[v.name] = (.local, UInt64(try allocateLocal(v.byteSize, alignment: v.alignment, line: v.line)))
        }
    }

    mutating func allocateLocal(_ size: Int, alignment: Int, line: Int) throws(PTXError) -> Int {
        let offset = (localEnd + alignment - 1) / alignment * alignment
        localEnd = offset + size
        guard localEnd <= Compiler.maximumLocalBytes else {
            throw PTXError(code: .unsupported, line: line, message: "more than \(Compiler.maximumLocalBytes) bytes of local memory per thread")
        }
        return offset
    }

    /// Registers, variables and parameter slots of one function.
    private mutating func layout(_ frame: Frame) throws(PTXError) -> Frame {
        var frame = frame
        let f = frame.function
        // Registers may be declared again in nested `{ }` scopes (nvcc's call sequences do): one slot per name.
        for (name, _) in f.registers where frame.registers[name] == nil {
            frame.registers[name] = newRegister()
        }
        if !f.isEntry {
            for p in f.parameters + f.returnParameters {
                let slot: Slot
                if p.space == .reg {
                    let r = frame.registers[p.name] ?? newRegister()
                    frame.registers[p.name] = r
                    slot = .register(r)
                } else {
                    let offset = try allocateLocal(p.byteSize, alignment: p.alignment, line: p.line)
                    frame.symbols[p.name] = (.local, UInt64(offset))
                    slot = .local(offset: UInt64(offset), size: p.byteSize)
                }
                if f.parameters.contains(where: { $0.name == p.name }) { frame.parameters.append(slot) } else { frame.returns.append(slot) }
            }
        }
        // `.param` variables in a body are call arguments and results: they live in local memory.
        // A name declared in several call sequences gets one slot, as large as the largest.
        var paramSizes: [String: (size: Int, alignment: Int, line: Int)] = [:]
        for v in f.variables where v.space == .param {
            let old = paramSizes[v.name] ?? (0, 1, v.line)
            paramSizes[v.name] = (max(old.size, v.byteSize), max(old.alignment, v.alignment), v.line)
        }
        for (name, p) in paramSizes.sorted(by: { $0.key < $1.key }) {
            frame.symbols[name] = (.local, UInt64(try allocateLocal(p.size, alignment: p.alignment, line: p.line)))
        }
        for v in f.variables where v.space != .param {
            switch v.space {
            case .shared, .local: try place(v, into: &frame.symbols)
            default:
                if variableIndex[v.name] == nil {
                    throw PTXError(code: .unsupported, line: v.line, message: "function-scope \(v.space) variable '\(v.name)'")
                }
            }
        }
        return frame
    }

    private mutating func lowerBody(of name: String) throws(PTXError) {
        current = name
        let f = frames[name]!.function
        frames[name]!.start = code.count
        labels = [:]
        var pc = code.count
        var lowered: [ParsedInstruction] = []
        for statement in f.body {
            switch statement {
            case .label(let label, let l):
                guard labels[label] == nil else { throw PTXError(code: .duplicate, line: l, message: "label '\(label)' defined twice") }
                labels[label] = pc
            case .instruction(let inst):
                lowered.append(inst)
                pc += 1
            }
        }
        // Calls expand to several instructions, so label targets are recorded per PTX instruction
        // and remapped once the body is lowered.
        var starts: [Int] = []
        starts.reserveCapacity(lowered.count + 1)
        for inst in lowered {
            line = inst.line
            starts.append(code.count)
            try lower(inst)
        }
        starts.append(code.count)
        let base = frames[name]!.start
        for i in base..<code.count where code[i].opcode == .bra {
            code[i].offset = Int64(starts[Int(code[i].offset) - base])
        }
        // Falling off the end of the body returns.
        var end = Instruction(opcode: f.isEntry ? .exit : .ret, type: .b32)
        end.a = frames[name]!.linkRegister
        end.line = Int32(line)
        code.append(end)
    }

    // MARK: Operands

    mutating func constant(_ bits: UInt64) -> Int32 {
        if let r = constants[bits] { return r }
        let r = newRegister()
        initial[Int(r)] = bits
        constants[bits] = r
        return r
    }

    func register(_ name: String) throws(PTXError) -> Int32 {
        if name == "_" { return Special.sink.rawValue }
        if let r = frames[current]?.registers[name] { return r }
        if let s = Compiler.specialNames[name] { return s.rawValue }
        throw fail("unknown register '\(name)'", .unknownIdentifier)
    }

    func symbol(_ name: String) -> (space: StateSpace, address: UInt64)? { frames[current]?.symbols[name] }

    /// A register that holds the address of a symbol (plus offset) in its own state space.
    mutating func symbolRegister(_ name: String, offset: Int64) throws(PTXError) -> Int32 {
        if let s = symbol(name) { return constant(s.address &+ UInt64(bitPattern: offset)) }
        if let v = variableIndex[name] {
            let key = "\(name)+\(offset)"
            if let r = relocationRegisters[key] { return r }
            let r = newRegister()
            relocations.append(PTXKernel.Relocation(register: r, variable: v, offset: offset))
            relocationRegisters[key] = r
            return r
        }
        if frames[current]?.registers[name] != nil { return try register(name) }
        // The PTX constant for the number of lanes in a warp.
        if name == "WARP_SZ" { return constant(32 &+ UInt64(bitPattern: offset)) }
        throw fail("unknown symbol '\(name)'", .unknownIdentifier)
    }

    mutating func source(_ operand: Operand, _ type: ScalarType) throws(PTXError) -> Int32 {
        switch operand {
        case .register(let name):
            if name == "%clock" || name == "%clock64" { throw fail("%clock is only readable with mov", .unsupported) }
            return try register(name)
        case .immediate(let value): return constant(value.bits(as: type))
        case .symbol(let name, let offset): return try symbolRegister(name, offset: offset)
        default: throw fail("unexpected operand")
        }
    }

    func destination(_ operand: Operand) throws(PTXError) -> Int32 {
        switch operand {
        case .register(let name), .symbol(let name, 0):
            let r = try register(name)
            guard r >= Special.allCases.count || r == Special.sink.rawValue else { throw fail("cannot write '\(name)'") }
            return r
        default: throw fail("expected a destination register")
        }
    }

    /// The base register and offset of `[base+offset]`, and the state space of the base when it
    /// names a variable (so `ld.param` of a call argument reads local memory).
    mutating func address(_ operand: Operand) throws(PTXError) -> (base: Int32, offset: Int64, space: StateSpace?) {
        guard case .address(let base, let offset) = operand else { throw fail("expected an address operand") }
        guard let base else { return (constant(0), offset, nil) }
        if base.hasPrefix("%") { return (try register(base), offset, nil) }
        return (try symbolRegister(base, offset: 0), offset, symbol(base)?.space)
    }

    mutating func vector(_ operand: Operand, _ type: ScalarType, destination: Bool = false) throws(PTXError) -> (start: Int32, count: Int) {
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
            if let first = n.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") {
                guard !destination else { throw fail("a literal cannot be written ('\(n)')") }
                vectorOperands.append(constant(try Parser.number(n, line: line).bits(as: type)))
                continue
            }
            vectorOperands.append(try register(n))
        }
        return (start, names.count)
    }
}
