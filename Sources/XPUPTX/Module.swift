/// A kernel parameter: where its bytes go in the parameter buffer.
public struct PTXParameter: Sendable, Hashable {
    public var name: String
    public var offset: Int
    public var size: Int
    public var alignment: Int
}

/// A module-scope `.global` or `.const` variable. The device gives it memory at load time,
/// initialized with `initialBytes` (zero-filled up to `size`).
public struct PTXVariable: Sendable, Hashable {
    public var name: String
    public var space: StateSpace
    public var size: Int
    public var alignment: Int
    public var initialBytes: [UInt8]
    public var isExtern: Bool
}

/// An executable `.entry` function.
public final class PTXKernel: Sendable {
    public let name: String
    public let parameters: [PTXParameter]
    /// Bytes of the parameter buffer (the end of the last parameter).
    public let parameterBufferSize: Int
    /// Static `.shared` bytes per block (module- and function-scope shared variables).
    public let staticSharedSize: Int
    /// `.local` bytes per thread.
    public let localSize: Int
    /// Registers declared by the function (what `CU_FUNC_ATTRIBUTE_NUM_REGS` reports).
    public let declaredRegisters: Int
    /// From `.maxntid`/`.reqntid`, else 1024.
    public let maxThreadsPerBlock: Int
    /// Source line of the `.entry`.
    public let line: Int

    let code: [Instruction]
    /// Whether the kernel calls `vprintf` (device-side printf).
    public var prints: Bool { code.contains { $0.opcode == .printf || $0.opcode == .assertFail } }
    let vectorOperands: [Int32]
    let registerFileSize: Int
    let initialRegisters: [UInt64]
    /// Constant registers that receive the address of a module variable (index into `PTXModule.variables`) plus an offset.
    let relocations: [Relocation]
    let usesDynamicShared: Bool
    /// The register holding the offset of the running call level in the thread's local memory
    /// (kernels with recursive calls), or -1.
    let frameShiftRegister: Int32

    struct Relocation: Sendable {
        var register: Int32
        var variable: Int
        var offset: Int64
    }

    init(
        name: String, parameters: [PTXParameter], parameterBufferSize: Int, staticSharedSize: Int, localSize: Int,
        declaredRegisters: Int, maxThreadsPerBlock: Int, line: Int, code: [Instruction], vectorOperands: [Int32],
        initialRegisters: [UInt64], relocations: [Relocation], usesDynamicShared: Bool, frameShiftRegister: Int32 = -1
    ) {
        self.frameShiftRegister = frameShiftRegister
        self.name = name
        self.parameters = parameters
        self.parameterBufferSize = parameterBufferSize
        self.staticSharedSize = staticSharedSize
        self.localSize = localSize
        self.declaredRegisters = declaredRegisters
        self.maxThreadsPerBlock = maxThreadsPerBlock
        self.line = line
        self.code = code
        self.vectorOperands = vectorOperands
        self.registerFileSize = initialRegisters.count
        self.initialRegisters = initialRegisters
        self.relocations = relocations
        self.usesDynamicShared = usesDynamicShared
    }

    /// Number of lowered instructions.
    public var instructionCount: Int { code.count }
}

/// A loaded PTX module: parsed, checked and lowered, ready to run.
public struct PTXModule: Sendable {
    public var version: (major: Int, minor: Int)
    public var target: String
    public var addressSize: Int
    /// The `.entry` functions with bodies, in text order.
    public var kernels: [PTXKernel]
    /// Module-scope `.global` and `.const` variables, in text order.
    public var variables: [PTXVariable]

    /// Parses and lowers PTX text. Throws on the first syntax error or unknown instruction.
    public init(source: String) throws(PTXError) {
        let parsed = try Parser.parse(source)
        version = parsed.version
        target = parsed.target
        addressSize = parsed.addressSize
        guard parsed.version.major > 0 else { throw PTXError(code: .syntax, line: 1, message: "missing .version directive") }
        var variables: [PTXVariable] = []
        var variableIndex: [String: Int] = [:]
        for v in parsed.variables where v.space == .global || v.space == .const {
            guard variableIndex[v.name] == nil else {
                throw PTXError(code: .duplicate, line: v.line, message: "variable '\(v.name)' declared twice")
            }
            var bytes: [UInt8] = []
            for value in v.initializer {
                var bits = value.bits(as: v.type)
                for _ in 0..<v.type.size {
                    bytes.append(UInt8(truncatingIfNeeded: bits))
                    bits >>= 8
                }
            }
            let size = max(v.byteSize, bytes.count)
            variableIndex[v.name] = variables.count
            variables.append(
                PTXVariable(
                    name: v.name, space: v.space, size: size, alignment: v.alignment, initialBytes: bytes, isExtern: v.isExtern))
        }
        self.variables = variables
        var kernels: [PTXKernel] = []
        var functions: [String: ParsedFunction] = [:]
        for function in parsed.functions {
            if let earlier = functions[function.name], earlier.hasBody, function.hasBody {
                throw PTXError(code: .duplicate, line: function.line, message: "function '\(function.name)' defined twice")
            }
            if function.hasBody || functions[function.name] == nil { functions[function.name] = function }
        }
        for function in parsed.functions where function.hasBody {
            // Every body is lowered, called or not, so an unknown instruction fails the load.
            var compiler = Compiler(module: parsed, entry: function, functions: functions, variableIndex: variableIndex)
            let lowered = try compiler.lower()
            if function.isEntry { kernels.append(lowered) }
        }
        self.kernels = kernels
    }

    public func kernel(named name: String) -> PTXKernel? { kernels.first { $0.name == name } }
}
