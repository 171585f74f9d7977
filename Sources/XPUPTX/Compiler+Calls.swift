/// Lowering of `call` to a `.func` of the same module.
///
/// `call{.uni} (r1, ...), f, (a1, ...);` becomes: copy each argument into the callee's parameter
/// slot, `call` (which saves the return address in the callee's link register), then copy each
/// result out of the callee's return slot. Arguments are `.param` variables of the caller (local
/// memory), registers, or immediates; parameters are `.param` slots or `.reg` registers.
extension Compiler {
    mutating func lowerCall(_ parsed: ParsedInstruction) throws(PTXError) {
        var results: [Operand] = []
        var arguments: [Operand] = []
        var calleeName: String?
        for op in parsed.operands {
            switch op {
            case .list(let items):
                if calleeName == nil { results = items } else { arguments = items }
            case .symbol(let name, 0) where calleeName == nil:
                calleeName = name
            case .register:
                throw fail("indirect calls through a register are not supported ('\(parsed.opcode)')", .unsupported)
            default:
                // A prototype label after the arguments names an indirect call's signature.
                throw fail("unsupported call form ('\(parsed.opcode)')", .unsupported)
            }
        }
        if let calleeName, frames[calleeName] == nil, Compiler.providedFunctions.contains(calleeName) {
            try lowerProvidedCall(calleeName, results: results, arguments: arguments, parsed)
            return
        }
        guard let calleeName, let callee = frames[calleeName] else {
            throw fail("call without a known callee ('\(parsed.opcode)')", .unknownIdentifier)
        }
        guard arguments.count == callee.parameters.count, results.count == callee.returns.count else {
            throw fail(
                "call to '\(calleeName)' passes \(arguments.count) arguments and \(results.count) results; it takes "
                    + "\(callee.parameters.count) and \(callee.returns.count)")
        }
        if isRecursive(calleeName, calledFrom: current) {
            try lowerRecursiveCall(to: callee, named: calleeName, results: results, arguments: arguments, parsed)
            return
        }
        for (argument, slot) in zip(arguments, callee.parameters) {
            try move(from: argument, to: slot, parsed)
        }
        var call = Instruction(opcode: .call, type: .b64)
        call.d = callee.linkRegister
        callSites.append((code.count, calleeName))
        try emit(call, parsed)
        for (result, slot) in zip(results, callee.returns) {
            try move(from: slot, to: result, parsed)
        }
    }

    /// A call to a function that may be running: its `.param` slots are written in the next call
    /// level, its registers are saved in that level's save area, and the thread runs the callee in
    /// that level. Values that pass through registers go through transfer registers of their own,
    /// because the caller's registers may be the callee's (a function calling itself).
    private mutating func lowerRecursiveCall(
        to callee: Frame, named calleeName: String, results: [Operand], arguments: [Operand], _ parsed: ParsedInstruction
    ) throws(PTXError) {
        let next = UInt64(levelSize)
        var registerArguments: [(transfer: Int32, parameter: Int32)] = []
        for (argument, slot) in zip(arguments, callee.parameters) {
            switch slot {
            case .local(let offset, let size):
                try move(from: argument, to: .local(offset: offset + next, size: size), parsed)
            case .register(let r):
                let transfer = newRegister()
                try move(from: argument, to: .register(transfer), parsed)
                registerArguments.append((transfer, r))
            }
        }
        var save = Instruction(opcode: .saveFrame, type: .b64)
        save.a = callee.ownRegisters.lowerBound
        save.b = callee.ownRegisters.upperBound
        save.offset = Int64(levelSize + registerSaveOffset)
        try emit(save, parsed)
        for (transfer, parameter) in registerArguments {
            var mov = Instruction(opcode: .mov, type: .b64)
            mov.a = transfer
            mov.d = parameter
            try emit(mov, parsed)
        }
        var enter = Instruction(opcode: .shiftFrame, type: .b64)
        enter.d = frameShift
        enter.offset = Int64(levelSize)
        try emit(enter, parsed)
        var call = Instruction(opcode: .call, type: .b64)
        call.d = callee.linkRegister
        callSites.append((code.count, calleeName))
        try emit(call, parsed)
        var leave = enter
        leave.offset = -Int64(levelSize)
        try emit(leave, parsed)
        // Results: `.param` results of the caller are written now (local memory is not restored);
        // results bound for registers wait in transfer registers until the callee's are restored.
        var registerResults: [(transfer: Int32, result: Operand)] = []
        for (result, slot) in zip(results, callee.returns) {
            switch (slot, result) {
            case (.local(let offset, let size), .symbol):
                try move(from: .local(offset: offset + next, size: size), to: result, parsed)
            case (.local(let offset, let size), _):
                let transfer = newRegister()
                var ld = Instruction(opcode: .ld, type: size >= 8 ? .b64 : size == 4 ? .b32 : size == 2 ? .b16 : .b8)
                ld.space = .local
                ld.a = constant(offset + next)
                ld.d = transfer
                try emit(ld, parsed)
                registerResults.append((transfer, result))
            case (.register(let r), _):
                let transfer = newRegister()
                var mov = Instruction(opcode: .mov, type: .b64)
                mov.a = r
                mov.d = transfer
                try emit(mov, parsed)
                registerResults.append((transfer, result))
            }
        }
        var restore = save
        restore.opcode = .restoreFrame
        try emit(restore, parsed)
        for (transfer, result) in registerResults {
            try move(from: .register(transfer), to: result, parsed)
        }
    }

    /// A call to a function the device runtime provides (`vprintf`, `__assertfail`): one
    /// instruction that reads its arguments where the caller put them (a `.param` variable or a
    /// register) and writes its `int` result (vprintf's) the same way.
    private mutating func lowerProvidedCall(
        _ name: String, results: [Operand], arguments: [Operand], _ parsed: ParsedInstruction
    ) throws(PTXError) {
        let (argumentCount, resultCount) = name == "vprintf" ? (2, 1) : (5, 0)
        guard arguments.count == argumentCount, results.count <= resultCount else {
            throw fail(
                "call to '\(name)' passes \(arguments.count) arguments and \(results.count) results; it takes "
                    + "\(argumentCount) and \(resultCount)")
        }
        var inst = Instruction(opcode: name == "vprintf" ? .printf : .assertFail, type: .b64)
        /// The operand's register, or a constant holding its `.param` variable's local address.
        func place(_ operand: Operand, indirectFlag: UInt8) throws(PTXError) -> Int32 {
            if case .symbol(let name, let offset) = operand, let s = symbol(name), s.space == .local {
                inst.flags |= indirectFlag
                return constant(s.address &+ UInt64(bitPattern: offset))
            }
            return try source(operand, .b64)
        }
        inst.a = try place(arguments[0], indirectFlag: 1)
        inst.b = try place(arguments[1], indirectFlag: 2)
        if inst.opcode == .assertFail {
            // (message, file, line, function, charSize): the character size is always 1.
            inst.c = try place(arguments[2], indirectFlag: 4)
            inst.d = try place(arguments[3], indirectFlag: 8)
        }
        if let result = results.first {
            if case .symbol(let name, let offset) = result, let s = symbol(name), s.space == .local {
                inst.flags |= 4
                inst.d = constant(s.address &+ UInt64(bitPattern: offset))
            } else {
                inst.d = try destination(result)
            }
        }
        try emit(inst, parsed)
    }

    /// Caller operand → callee slot.
    private mutating func move(from operand: Operand, to slot: Slot, _ parsed: ParsedInstruction) throws(PTXError) {
        switch (operand, slot) {
        case (.symbol(let name, let offset), .local(let to, let size)):
            guard let s = symbol(name), s.space == .local else { throw fail("call argument '\(name)' is not a .param variable") }
            try emit(copy(from: s.address &+ UInt64(bitPattern: offset), to: to, size: size), parsed)
        case (.symbol(let name, _), .register(let r)):
            guard let s = symbol(name), s.space == .local else { throw fail("call argument '\(name)' is not a .param variable") }
            var ld = Instruction(opcode: .ld, type: s.address % 8 == 0 ? .b64 : .b32)
            ld.space = .local
            ld.a = constant(s.address)
            ld.d = r
            try emit(ld, parsed)
        case (_, .register(let r)):
            var mov = Instruction(opcode: .mov, type: .b64)
            mov.a = try source(operand, .b64)
            mov.d = r
            try emit(mov, parsed)
        case (_, .local(let to, let size)):
            var st = Instruction(opcode: .st, type: size >= 8 ? .b64 : size == 4 ? .b32 : size == 2 ? .b16 : .b8)
            st.space = .local
            st.a = constant(to)
            st.b = try source(operand, st.type)
            try emit(st, parsed)
        }
    }

    /// Callee slot → caller operand.
    private mutating func move(from slot: Slot, to operand: Operand, _ parsed: ParsedInstruction) throws(PTXError) {
        switch (slot, operand) {
        case (.local(let from, let size), .symbol(let name, let offset)):
            guard let s = symbol(name), s.space == .local else { throw fail("call result '\(name)' is not a .param variable") }
            try emit(copy(from: from, to: s.address &+ UInt64(bitPattern: offset), size: size), parsed)
        case (.register(let r), .symbol(let name, _)):
            guard let s = symbol(name), s.space == .local else { throw fail("call result '\(name)' is not a .param variable") }
            var st = Instruction(opcode: .st, type: s.address % 8 == 0 ? .b64 : .b32)
            st.space = .local
            st.a = constant(s.address)
            st.b = r
            try emit(st, parsed)
        case (.register(let r), _):
            var mov = Instruction(opcode: .mov, type: .b64)
            mov.a = r
            mov.d = try destination(operand)
            try emit(mov, parsed)
        case (.local(let from, let size), _):
            var ld = Instruction(opcode: .ld, type: size >= 8 ? .b64 : size == 4 ? .b32 : size == 2 ? .b16 : .b8)
            ld.space = .local
            ld.a = constant(from)
            ld.d = try destination(operand)
            try emit(ld, parsed)
        }
    }

    private func copy(from: UInt64, to: UInt64, size: Int) -> Instruction {
        var inst = Instruction(opcode: .copyLocal, type: .b8)
        inst.a = Int32(truncatingIfNeeded: from)
        inst.b = Int32(truncatingIfNeeded: to)
        inst.c = Int32(size)
        return inst
    }
}
